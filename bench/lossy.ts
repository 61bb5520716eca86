/**
 * Bench section "lossy": which transport small calls should ride when the network drops
 * packets. A caller `Node` and 3 worker `Node`s run on 4 hosts (network namespaces on a bridge,
 * `tests/hosts/lab.ts`), and each host drops a random share of the packets it receives from the
 * others (nft `numgen random`): 0, 1 and 5 %. At each loss rate the `ClusterClient` calls the
 * workers over QUIC lanes (the default) and over TCP lanes, rounds interleaved: calls/s at 64 in
 * flight, p50 and p99 at 1 in flight.
 *
 * Needs root, `ip` and `nft` (Debian: iproute2, nftables); without them the section reports why
 * and measures nothing. Everything it creates carries the lab's `rnh` prefix and is removed at
 * the end, also on failure.
 *
 * ```sh
 * deno task bench lossy
 * ```
 *
 * @module
 */
import {
  cleanupLab,
  createLab,
  droppedPackets,
  hostAddr,
  hostNs,
  labUnavailable,
  loss,
} from "../tests/hosts/lab.ts";
import { benchCredentials, interleave, type System, type WorkerReady } from "./fanout.ts";
import { Proc } from "./proc.ts";
import { type BenchRow, type BenchSection, median } from "./table.ts";

const ROUND_MS = Number(Deno.env.get("LOSSY_BENCH_MS") ?? 1000);
const ROUNDS = Number(Deno.env.get("LOSSY_BENCH_ROUNDS") ?? 5);
const LOSS_PERCENT = [0, 1, 5];
const here = (p: string) => new URL(p, import.meta.url).pathname;

/** `deno run` of a bench script inside lab host `i`'s namespace. */
function inHost<R>(
  i: number,
  script: string,
  args: string[],
  label: string,
  env?: Record<string, string>,
): Promise<Proc<R>> {
  return Proc.deno<R>(script, args, label, env, ["ip", "netns", "exec", hostNs(i)]);
}

/** Runs the section. */
export async function run(): Promise<BenchSection> {
  const title = "lossy: QUIC lanes against TCP lanes, caller and 3 workers on 4 hosts, random loss";
  const why = await labUnavailable();
  if (why) {
    return { title, rows: [{ name: "lossy network comparison", value: NaN, unit: "", note: why }] };
  }
  const rows: BenchRow[] = [];
  const procs: Proc<unknown>[] = [];
  try {
    await createLab(4);
    const { caFile, tlsEnv } = await benchCredentials();
    // Workers on hosts 2–4 (accepting TCP lanes), the first the others' seed.
    const workers: Proc<WorkerReady>[] = [];
    for (const i of [2, 3, 4]) {
      const seed = workers.length ? ["--seed", workers[0].ready.gossipAddr] : [];
      const w = await inHost<WorkerReady>(
        i,
        here("./fanout_worker.ts"),
        ["--id", `w${i}`, "--ca", caFile, "--tcp-lanes", "--bind", hostAddr(i), ...seed],
        `worker w${i}`,
      );
      workers.push(w);
      procs.push(w);
    }
    const workerPids = workers.map((w) => w.pid);
    const caller = async (name: string, tcp: boolean): Promise<System> => {
      const c = await inHost<Record<string, unknown>>(
        1,
        here("./fanout_driver.ts"),
        ["cluster", "--seed", workers[0].ready.gossipAddr, "--ca", caFile, "--workers", "3"]
          .concat(["--bind", hostAddr(1)], tcp ? ["--tcp-lanes"] : []),
        `${name} driver`,
        tlsEnv,
      );
      procs.push(c);
      return { name, caller: c, workerPids };
    };
    const systems = [await caller("quic", false), await caller("tcp", true)];
    const loads = [{ run: "echo" as const, inFlight: 64 }, { run: "echo" as const, inFlight: 1 }];
    for (const percent of LOSS_PERCENT) {
      await loss(4, percent);
      const dropped0 = await dropped();
      const m = await interleave(systems, loads, ROUNDS, ROUND_MS, 1);
      const droppedNow = (await dropped()) - dropped0;
      const at = (name: string, k: number) => m.get(`${name}@${k}`) ?? [];
      const errors = (name: string) =>
        [...at(name, 64), ...at(name, 1)].reduce((a, r) => a + r.errors, 0);
      for (const s of systems) {
        const label = s.name === "quic" ? "QUIC lanes (default)" : "TCP lanes";
        rows.push({
          name: `${percent} % loss, ${label}: 64 B echo, 64 in flight`,
          value: median(at(s.name, 64).map((r) => r.rate)),
          unit: "req/s",
          note: `errors ${errors(s.name)}`,
        });
        const r1 = at(s.name, 1);
        rows.push({
          name: `${percent} % loss, ${label}: 1 in flight, p50`,
          value: median(r1.map((r) => r.p50us)),
          unit: "µs",
          note: `p99 ${median(r1.map((r) => r.p99us)).toFixed(0)} µs; ` +
            `${median(r1.map((r) => r.rate)).toFixed(0)} req/s`,
        });
      }
      const per = at("tcp", 64).map((x, i) => x.rate / at("quic", 64)[i]?.rate);
      const p99 = at("tcp", 1).map((x, i) => x.p99us / at("quic", 1)[i]?.p99us);
      rows.push({
        name: `${percent} % loss: TCP lanes / QUIC lanes`,
        value: median(per),
        unit: "x",
        note: `64 in flight, per-round ${per.map((x) => x.toFixed(2)).join(", ")}; ` +
          `1 in flight p99 TCP / QUIC ${median(p99).toFixed(2)}; packets dropped ${droppedNow}`,
      });
    }
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    await cleanupLab();
  }
  return { title, rows };
}

async function dropped(): Promise<number> {
  let sum = 0;
  for (let i = 1; i <= 4; i++) sum += await droppedPackets(i);
  return sum;
}
