import assert from "node:assert/strict";
import { RPC_ERROR_CODES, RpcError } from "../mod.ts";

Deno.test("RpcError carries its code and is recognised by RpcError.is", () => {
  const e = new RpcError("deadline_exceeded", "too slow");
  assert.equal(e.code, "deadline_exceeded");
  assert.equal(e.name, "RpcError");
  assert.ok(RpcError.is(e, "deadline_exceeded"));
  assert.ok(!RpcError.is(e, "internal"));
  assert.ok(!RpcError.is(new Error("x")));
  assert.equal(new Set(RPC_ERROR_CODES).size, 9);
  // The index is the wire number: new codes are appended, older ones keep their number.
  assert.equal(RPC_ERROR_CODES.indexOf("internal"), 7);
  assert.equal(RPC_ERROR_CODES.indexOf("failed_precondition"), 8);
});
