import assert from "node:assert/strict";
import { DeadlineQueue } from "../src/rpc/deadlines.ts";
import { RpcClient, RpcError, RpcServer } from "../mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `f` with `setTimeout` counted; returns how many timers it armed. */
function timersArmed(f: () => void): number {
  const real = globalThis.setTimeout;
  let armed = 0;
  globalThis.setTimeout = ((g: () => void, ms?: number) => {
    armed++;
    return real(g, ms);
  }) as typeof setTimeout;
  try {
    f();
  } finally {
    globalThis.setTimeout = real;
  }
  return armed;
}

Deno.test("DeadlineQueue: expires in deadline order across timeouts, not before the deadline", async () => {
  const q = new DeadlineQueue();
  const fired: [string, number][] = [];
  const t0 = performance.now();
  const at = (name: string) => () => fired.push([name, performance.now() - t0]);
  q.add(60, at("60a"));
  q.add(20, at("20a"));
  q.add(40, at("40a"));
  q.add(20, at("20b"));
  await sleep(120);
  assert.deepEqual(fired.map(([n]) => n), ["20a", "20b", "40a", "60a"]);
  const due: Record<string, number> = { "20a": 20, "20b": 20, "40a": 40, "60a": 60 };
  for (const [name, ms] of fired) assert.ok(ms >= due[name] - 1, `${name} fired at ${ms} ms`);
  assert.equal(q.size, 0);
});

Deno.test("DeadlineQueue: a cancelled deadline never fires", async () => {
  const q = new DeadlineQueue();
  let fired = 0;
  const ds = Array.from({ length: 1000 }, () => q.add(30, () => fired++));
  for (const d of ds) q.cancel(d);
  q.cancel(ds[0]); // twice is harmless
  assert.equal(q.size, 0);
  await sleep(50);
  assert.equal(fired, 0);
});

Deno.test("DeadlineQueue: calls one at a time share one timer instead of arming one each", () => {
  const q = new DeadlineQueue();
  const armed = timersArmed(() => {
    for (let i = 0; i < 1000; i++) q.cancel(q.add(30_000, () => {}));
    // A shorter timeout needs an earlier expiry: armed again, once.
    for (let i = 0; i < 1000; i++) q.cancel(q.add(5_000, () => {}));
  });
  assert.equal(armed, 2);
  assert.equal(q.size, 0);
});

Deno.test("DeadlineQueue: releaseIdle clears an idle timer and leaves a live deadline alone", async () => {
  const q = new DeadlineQueue();
  let fired = 0;
  const armed = timersArmed(() => {
    q.cancel(q.add(30_000, () => fired++));
    q.releaseIdle(); // idle: cleared, so the next call arms a timer again
    q.add(30, () => fired++);
    q.releaseIdle(); // a deadline is live: nothing happens
  });
  assert.equal(armed, 2);
  await sleep(80);
  assert.equal(fired, 1, "the live deadline still fired");
  assert.equal(q.size, 0);
});

// The queue's timer outlives the calls, unref'd while no deadline is live: a process whose calls
// are done exits at once, and one with a deadline still live waits for it.
Deno.test("DeadlineQueue: an idle timer does not keep the process alive, a live deadline does", async () => {
  const queue = new URL("../src/rpc/deadlines.ts", import.meta.url).href;
  const run = async (code: string) => {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { DeadlineQueue } from "${queue}"; const q = new DeadlineQueue();\n${code}`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0);
    return { ms: performance.now() - t0, out: new TextDecoder().decode(out.stdout).trim() };
  };
  const idle = await run(
    `for (let i = 0; i < 3; i++) q.cancel(q.add(60_000, () => console.log("fired")));`,
  );
  assert.equal(idle.out, "");
  assert.ok(idle.ms < 20_000, `exited after ${idle.ms.toFixed(0)} ms, held by the idle timer`);
  // Idle first (the timer unref'd), then a live deadline refs it again: the process waits for it.
  const live = await run(
    `q.cancel(q.add(300, () => {})); q.add(300, () => console.log("fired"));`,
  );
  assert.equal(live.out, "fired");
});

Deno.test("DeadlineQueue: one stuck call among a million finished ones keeps memory bounded", async () => {
  const q = new DeadlineQueue();
  let fired = 0;
  const stuck = q.add(40, () => fired++);
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < 1_000_000; i++) q.cancel(q.add(40, () => fired++));
  const grown = Deno.memoryUsage().heapUsed - before;
  // Without compaction a million entries stay behind the stuck one (~100 MB).
  assert.ok(grown < 32 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MiB`);
  assert.equal(q.size, 1);
  await sleep(80);
  assert.equal(fired, 1, "the stuck call still expires");
  q.cancel(stuck);
});

Deno.test("DeadlineQueue: more distinct timeouts than lists fall back to their own timers", async () => {
  const q = new DeadlineQueue();
  const fired: number[] = [];
  for (let ms = 10; ms < 10 + 100; ms++) q.add(ms, () => fired.push(ms));
  const cancelled = q.add(500, () => fired.push(500));
  q.cancel(cancelled);
  await sleep(200);
  assert.equal(fired.length, 100);
  assert.deepEqual(fired, [...fired].sort((a, b) => a - b));
});

Deno.test("DeadlineQueue: an expiry handler may add and cancel deadlines", async () => {
  const q = new DeadlineQueue();
  const log: string[] = [];
  const later = q.add(200, () => log.push("later"));
  q.add(10, () => {
    log.push("first");
    q.cancel(later);
    q.add(10, () => log.push("chained"));
  });
  await sleep(80);
  assert.deepEqual(log, ["first", "chained"]);
  assert.equal(q.size, 0);
});

Deno.test("RPC deadlines on the shared queue: client and server both enforce them over QUIC", async () => {
  let aborted: unknown;
  const server = new RpcServer().register("slow", async (_req, ctx) => {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      ctx.signal.addEventListener("abort", () => {
        aborted = ctx.signal.reason;
        clearTimeout(t);
        resolve();
      });
    });
    return "late";
  }).register("fast", () => "ok");
  await server.start();
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const t0 = performance.now();
    await assert.rejects(
      client.call("slow", null, { timeoutMs: 150 }),
      (e) => RpcError.is(e, "deadline_exceeded"),
    );
    const took = performance.now() - t0;
    assert.ok(took >= 149 && took < 1500, `failed after ${took.toFixed(0)} ms`);
    // Many quick calls with a deadline leave nothing armed behind them.
    for (let i = 0; i < 200; i++) {
      assert.equal(await client.call("fast", null, { timeoutMs: 30_000 }), "ok");
    }
    await sleep(100);
    assert.ok(RpcError.is(aborted, "deadline_exceeded"), `server saw ${aborted}`);
  } finally {
    await client.close();
    await server.close();
  }
});
