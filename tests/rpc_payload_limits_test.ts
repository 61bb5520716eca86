import assert from "node:assert/strict";
import { encode } from "@msgpack/msgpack";
import { defaultDevCa, EncodedPayload, RpcClient, RpcError, RpcServer } from "../mod.ts";
import { PayloadLimits } from "../src/rpc/payload_limits.ts";
import { emptyMapFlood, nestedArrayBomb, spawnServer } from "./_support/rpc_helpers.ts";

const rejects = (limits: PayloadLimits, b: Uint8Array, re: RegExp) =>
  assert.throws(
    () => limits.check(b),
    (e) => RpcError.is(e, "invalid_argument") && re.test(e.message),
  );

Deno.test("rpc payload limits: the nested-array bomb and the empty-map flood are rejected before decoding", () => {
  const limits = new PayloadLimits();
  rejects(limits, nestedArrayBomb(), /claim \d+ more values than the \d+ bytes left/);
  rejects(limits, nestedArrayBomb(200).subarray(0, 4), /claim/);
  rejects(limits, emptyMapFlood(1_000_001), /maxPayloadElements \(1000000\)/);
  // Depth: 101 nested one-element arrays.
  const deep = new Uint8Array(102).fill(0x91);
  deep[101] = 0xc0;
  rejects(limits, deep, /maxPayloadDepth \(100\)/);
  limits.check(deep.subarray(1)); // 100 deep is fine
  rejects(limits, new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]), /runs past the end/);
  rejects(limits, new Uint8Array([0xc0, 0xc0]), /1 trailing byte/);
  rejects(limits, new Uint8Array([0xc1]), /not MessagePack/);
  rejects(limits, new Uint8Array([0x92, 0x01]), /claim 2 more values than the 1 bytes left/);
});

Deno.test("rpc payload limits: valid values pass, and the limits are options", () => {
  const limits = new PayloadLimits();
  const values = [
    null,
    true,
    -1,
    2 ** 40,
    1.5,
    "é".repeat(300),
    new Uint8Array(70_000),
    [1, [2, [3, {}]], { a: [], b: { c: "d" } }],
    new Date(0),
    Array.from({ length: 70_000 }, (_, i) => i),
  ];
  for (const v of values) limits.check(encode(v));
  const small = new PayloadLimits({ maxPayloadDepth: 2, maxPayloadElements: 3 });
  small.check(encode([[1], 2]));
  rejects(small, encode([[[1]]]), /maxPayloadDepth \(2\)/);
  rejects(small, encode({ a: 1, b: 2, c: 3, d: 4 }), /maxPayloadElements \(3\)/);
  assert.throws(
    () => new RpcServer({ maxPayloadDepth: 0 }),
    (e) => RpcError.is(e, "invalid_argument") && /maxPayloadDepth/.test(e.message),
  );
  assert.throws(
    () => new PayloadLimits({ maxPayloadElements: NaN }),
    (e) => RpcError.is(e, "invalid_argument") && /maxPayloadElements/.test(e.message),
  );
});

Deno.test("rpc payload limits: a server in another process survives the bomb and the flood as requests", async () => {
  // A heap cap well above what the server needs, far below what the bomb used to take (>1 GB).
  const child = await spawnServer({}, ["--max-old-space-size=384"]);
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: child.port });
  try {
    for (const bytes of [nestedArrayBomb(), emptyMapFlood(16 * 1024 * 1024 - 64)]) {
      await assert.rejects(
        client.call("echo", new EncodedPayload(bytes), { timeoutMs: 15_000 }),
        (e) => RpcError.is(e, "invalid_argument") && /payload rejected/.test(e.message),
      );
      assert.deepEqual(await client.call("echo", { still: "alive" }, { timeoutMs: 5000 }), {
        still: "alive",
      });
    }
    const stats = await client.call<{ invalidPayloads: number }>("stats", null);
    assert.equal(stats.invalidPayloads, 2);
    assert.ok(Math.max(...child.rss) < 384 * 1024 * 1024, `rss ${Math.max(...child.rss)}`);
  } finally {
    await client.close();
    await child.stop();
  }
});

Deno.test("rpc payload limits: a client in another process gets a typed error for the bomb as a response", async () => {
  const child = await spawnServer();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--max-old-space-size=384",
        new URL("./_support/rpc_client_fixture.ts", import.meta.url).pathname,
        String(child.port),
        "evil",
        (await defaultDevCa()).certPem,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `client died: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
    const r = JSON.parse(text);
    assert.equal(r.first.code, "internal");
    assert.match(r.first.message, /response payload rejected/);
    assert.deepEqual(r.echo, { ok: "still alive" });
  } finally {
    await child.stop();
  }
});
