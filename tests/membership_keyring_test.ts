import assert from "node:assert/strict";
import { Keyring, RpcError } from "../mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const label = enc.encode("cluster-a");
const key = (fill: number, len = 32) => new Uint8Array(len).fill(fill);

Deno.test("keyring: seal/open round trip with AES-256 and AES-128", async () => {
  for (const len of [16, 32]) {
    const ring = new Keyring([key(1, len)]);
    const plain = enc.encode(`hello gossip ${len}`);
    const sealed = await ring.seal(plain, label);
    assert.equal(sealed.length, plain.length + Keyring.overhead);
    assert.notDeepEqual(
      sealed.subarray(13, 13 + plain.length),
      plain,
      "ciphertext is not plaintext",
    );
    const opened = await ring.open(sealed, label);
    assert.ok(opened);
    assert.equal(dec.decode(opened), `hello gossip ${len}`);
    // Fresh nonce every time: sealing twice gives different bytes.
    assert.notDeepEqual(await ring.seal(plain, label), sealed);
  }
});

Deno.test("keyring: a different key cannot open", async () => {
  const a = new Keyring([key(1)]);
  const b = new Keyring([key(2)]);
  const sealed = await a.seal(enc.encode("secret"), label);
  assert.equal(await b.open(sealed, label), undefined);
});

Deno.test("keyring: a different cluster label cannot open", async () => {
  const ring = new Keyring([key(1)]);
  const sealed = await ring.seal(enc.encode("secret"), "cluster-a");
  assert.equal(await ring.open(sealed, "cluster-b"), undefined);
  assert.ok(await ring.open(sealed, "cluster-a"));
});

Deno.test("keyring: any tampered byte, truncation or garbage is rejected without throwing", async () => {
  const ring = new Keyring([key(7)]);
  const sealed = await ring.seal(enc.encode("payload that matters"), label);
  for (let i = 0; i < sealed.length; i++) {
    const bad = new Uint8Array(sealed);
    bad[i] ^= 0x01;
    assert.equal(await ring.open(bad, label), undefined, `byte ${i} flipped`);
  }
  assert.equal(await ring.open(sealed.subarray(0, sealed.length - 1), label), undefined);
  assert.equal(await ring.open(new Uint8Array(0), label), undefined);
  assert.equal(await ring.open(crypto.getRandomValues(new Uint8Array(200)), label), undefined);
  // deno-lint-ignore no-explicit-any
  assert.equal(await ring.open("not bytes" as any, label), undefined);
});

Deno.test("keyring: rotation install → use → remove old keeps traffic flowing", async () => {
  const oldKey = key(1);
  const newKey = key(2, 16);
  const a = new Keyring([oldKey]);
  const b = new Keyring([oldKey]);
  const msg = enc.encode("during rotation");

  // Step 1: everyone installs the new key; still sealing with the old one.
  a.install(newKey);
  b.install(newKey);
  assert.ok(await b.open(await a.seal(msg, label), label));

  // Step 2: a switches first; b (not yet switched) still opens a's packets and vice versa.
  a.use(newKey);
  assert.deepEqual(a.primaryKey, newKey);
  assert.ok(await b.open(await a.seal(msg, label), label));
  assert.ok(await a.open(await b.seal(msg, label), label));
  b.use(newKey);

  // Step 3: the old key goes away; old-key packets no longer open.
  const oldOnly = new Keyring([oldKey]);
  const oldPacket = await oldOnly.seal(msg, label);
  assert.ok(await a.open(oldPacket, label));
  a.remove(oldKey);
  assert.equal(await a.open(oldPacket, label), undefined);
  assert.equal(a.keys.length, 1);
  assert.ok(await a.open(await b.seal(msg, label), label));
});

Deno.test("keyring: bad keys and removing the primary are refused with invalid_argument", () => {
  assert.throws(() => new Keyring([]), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => new Keyring([new Uint8Array(24)]), (e) => RpcError.is(e, "invalid_argument"));
  const ring = new Keyring([key(1), key(2)]);
  assert.throws(() => ring.remove(key(1)), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => ring.use(key(3)), (e) => RpcError.is(e, "invalid_argument"));
  assert.throws(() => ring.install(new Uint8Array(5)), (e) => RpcError.is(e, "invalid_argument"));
  ring.remove(key(2));
  assert.equal(ring.keys.length, 1);
  // Installing the same key twice keeps one copy; the caller's buffer can be reused safely.
  const buf = key(9);
  ring.install(buf);
  ring.install(buf);
  assert.equal(ring.keys.length, 2);
  buf.fill(0);
  assert.deepEqual(ring.keys[1], key(9));
});
