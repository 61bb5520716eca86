import assert from "node:assert/strict";
import { CORE_WASM_BASE64 } from "../wasm/core_wasm.ts";
import { decodeBase64, encodeBase64 } from "../wasm/base64.ts";
import { CoreInstance, coreModule } from "../wasm/loader.ts";

const root = new URL("../", import.meta.url);

Deno.test("core wasm: the embedded base64 is exactly wasm/core.wasm, and it imports nothing", async () => {
  const file = await Deno.readFile(new URL("wasm/core.wasm", root));
  const embedded = decodeBase64(CORE_WASM_BASE64);
  assert.deepEqual(embedded, file);
  assert.equal(encodeBase64(file), CORE_WASM_BASE64);
  assert.deepEqual(WebAssembly.Module.imports(coreModule()), []);
  const exports = WebAssembly.Module.exports(coreModule()).map((e) => e.name);
  for (const name of ["memory", "det_phi_all", "det_suspects", "bal_select", "bal_finish"]) {
    assert.ok(exports.includes(name), `missing export ${name}`);
  }
});

Deno.test("core wasm: the files the package loads at runtime are in the jsr publish list", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const include: string[] = config.publish.include;
  for (const f of ["wasm/core_wasm.ts", "wasm/loader.ts", "wasm/base64.ts", "wasm/core.wasm"]) {
    assert.ok(include.includes(f) || include.includes("wasm/"), `${f} not published`);
  }
});

Deno.test("core wasm: instances are independent and the allocator reuses freed blocks", () => {
  const a = new CoreInstance();
  const b = new CoreInstance();
  assert.notEqual(a.core.memory, b.core.memory);
  const p = a.alloc(100);
  a.free(p, 100);
  assert.equal(a.alloc(120), p, "same power-of-two class is reused");
  const big = a.alloc(1 << 20);
  assert.ok(a.memoryBytes() >= big + (1 << 20));
  a.f64[big >> 3] = 1.5; // views were refreshed by the growth
  assert.equal(a.f64[big >> 3], 1.5);
});
