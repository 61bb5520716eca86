/**
 * A/B of two trees' callers in one run: 3 worker `Node` processes (this tree) and a
 * `ClusterClient` caller from each tree (`bench/fanout_driver.ts` of this tree and of `--other`,
 * e.g. a `git worktree` of another commit), 64 B echo at 64 in flight, rounds interleaved (order
 * reversed every other round), so that both see the same machine. Prints the per-round calls/s
 * ratios (other / this), then medians: calls/s, caller CPU per call, p50 and p99 of each
 * (`--in-flight N` for another number of calls in flight than 64). For
 * caller-side changes of a few per cent, which separate runs on this noisy machine cannot resolve;
 * run it with `--other` set to this tree as well (A/A) to see the noise. With `--workers-too`
 * each caller calls 3 workers of its own tree instead (two clusters, one idle while the other
 * runs), for changes on both sides of a call (the codec, the frame layer).
 *
 * ```sh
 * git worktree add /tmp/before <commit>
 * deno run -A bench/fanout_ab.ts --other /tmp/before --rounds 15
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { benchCredentials, interleave, startWorkers, type System } from "./fanout.ts";
import { Proc } from "./proc.ts";
import { median } from "./table.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    other: { type: "string" },
    rounds: { type: "string", default: "15" },
    "round-ms": { type: "string", default: "500" },
    quic: { type: "boolean", default: false },
    "workers-too": { type: "boolean", default: false },
    "in-flight": { type: "string", default: "64" },
  },
});
const inFlight = Number(args["in-flight"]);
if (!args.other) throw new Error("--other <tree> is required (a checkout of this repository)");
const { caFile, tlsEnv } = await benchCredentials();
const procs: Proc<unknown>[] = [];
try {
  const other = new URL(args.other.endsWith("/") ? args.other : args.other + "/", "file:///");
  const ours = await startWorkers(["w1", "w2", "w3"], caFile, undefined, ["--tcp-lanes"]);
  procs.push(...ours);
  const theirs = args["workers-too"]
    ? await startWorkers(["x1", "x2", "x3"], caFile, undefined, ["--tcp-lanes"], other)
    : ours;
  if (theirs !== ours) procs.push(...theirs);
  const caller = async (name: string, tree: URL): Promise<System> => {
    const workers = tree === other ? theirs : ours;
    const seed = workers[0].ready.gossipAddr;
    const c = await Proc.start<Record<string, unknown>>(
      Deno.execPath(),
      [
        "run",
        "-A",
        "--quiet",
        "--config",
        new URL("deno.json", tree).pathname,
        new URL("bench/fanout_driver.ts", tree).pathname,
        ...["cluster", "--seed", seed, "--ca", caFile, "--workers", "3"],
        ...(args.quic ? [] : ["--tcp-lanes"]),
      ],
      `${name} caller`,
      tlsEnv,
    );
    procs.push(c);
    return { name, caller: c, workerPids: workers.map((w) => w.pid) };
  };
  const systems = [
    await caller("this", new URL("../", import.meta.url)),
    await caller("other", other),
  ];
  const m = await interleave(
    systems,
    [{ run: "echo", inFlight }],
    Number(args.rounds),
    Number(args["round-ms"]),
  );
  const a = m.get(`this@${inFlight}`)!, b = m.get(`other@${inFlight}`)!;
  const per = b.map((r, i) => r.rate / a[i].rate);
  console.log("per-round calls/s, other / this:", per.map((x) => x.toFixed(3)).join(" "));
  const med = (rs: typeof a, f: (r: (typeof a)[number]) => number) => median(rs.map(f));
  console.log(JSON.stringify({
    ratio: median(per),
    thisRate: med(a, (r) => r.rate),
    otherRate: med(b, (r) => r.rate),
    thisCallerUs: med(a, (r) => r.callerCpuPerCall),
    otherCallerUs: med(b, (r) => r.callerCpuPerCall),
    thisP50us: med(a, (r) => r.p50us),
    otherP50us: med(b, (r) => r.p50us),
    thisP99us: med(a, (r) => r.p99us),
    otherP99us: med(b, (r) => r.p99us),
  }));
} finally {
  await Promise.all(procs.map((p) => p.kill()));
}
