/**
 * `simulate()`: runs N real `ClusterMembership` instances over a `SimNetwork` in `VirtualClock`
 * time and measures what issue 4 asks for — join convergence, failure
 * detection, false positives under loss and under paused nodes (Lifeguard on/off), gossip
 * bandwidth and heap per member. Each scenario is one function driving a {@linkcode SimHarness};
 * the report's shape and text live in `report.ts`.
 *
 * @module
 */
import { RpcError } from "../../errors.ts";
import { SimHarness, type SimOptions } from "./harness.ts";
import { distribution, SIM_SCENARIOS, type SimReport, type SimScenario } from "./report.ts";

/**
 * Runs one simulation. Long runs: 1000 nodes take seconds to minutes of wall time; progress goes
 * to `onProgress`.
 *
 * @example
 * ```ts
 * import { simulate } from "@rpcnet/cluster/sim";
 * const r = await simulate({ nodes: 200, scenario: "crash", profile: "LAN" });
 * console.log(r.crash?.deadEverywhereMs);
 * ```
 *
 * @throws {RpcError} `invalid_argument` for bad options.
 */
export async function simulate(options: SimOptions = {}): Promise<SimReport> {
  const n = options.nodes ?? 100;
  const scenario = options.scenario ?? "join";
  const profile = options.profile ?? "LAN";
  const loss = options.loss ?? 0;
  if (!Number.isInteger(n) || n < 2 || n > 100_000) {
    throw new RpcError("invalid_argument", `nodes must be an integer 2..100000, got ${n}`);
  }
  if (!SIM_SCENARIOS.includes(scenario)) {
    throw new RpcError(
      "invalid_argument",
      `scenario must be one of ${SIM_SCENARIOS.join(", ")}, got ${scenario}`,
    );
  }
  if (!["LAN", "WAN", "LOCAL"].includes(profile)) {
    throw new RpcError("invalid_argument", `profile must be LAN, WAN or LOCAL, got ${profile}`);
  }
  if (!(loss >= 0 && loss < 1)) {
    throw new RpcError("invalid_argument", `loss must be within [0, 1), got ${loss}`);
  }
  const bootstrap = options.bootstrap ?? "gossip";
  if (bootstrap !== "gossip" && bootstrap !== "preloaded") {
    throw new RpcError(
      "invalid_argument",
      `bootstrap must be gossip or preloaded, got ${bootstrap}`,
    );
  }
  if (bootstrap === "preloaded" && options.createMember !== undefined) {
    throw new RpcError(
      "invalid_argument",
      'bootstrap "preloaded" needs the default member factory (no createMember)',
    );
  }
  if (scenario === "paused") {
    const on = await runOnce({ ...options, lifeguard: true });
    const off = await runOnce({ ...options, lifeguard: false });
    return {
      ...on,
      pausedWithoutLifeguard: off.falsePositives,
      wallSeconds: on.wallSeconds + off.wallSeconds,
    };
  }
  return await runOnce(options);
}

/** What a scenario adds to the report, measured after the harness opened its window. */
type Scenario = (h: SimHarness) => Promise<Partial<SimReport>>;

/** One fresh node joins the converged cluster; time until each node sees it. */
async function measureJoin(h: SimHarness): Promise<Partial<SimReport>> {
  await h.advanceReporting(5000, "warm-up");
  const fresh = h.addNode(h.n);
  await fresh.member.start();
  h.watch(fresh.id);
  h.join(fresh, h.seedAddrs);
  const { seenAt, start } = h.watched;
  await h.clock.runUntilCondition(() => seenAt.size >= h.n, 60_000, 50);
  const times = [...seenAt.values()].map((t) => t - start);
  h.progress(`join reached ${seenAt.size}/${h.n}`);
  return { joinReach: { ...distribution(times), reached: seenAt.size } };
}

/** One non-seed member crashes; time until the first suspicion, first failure, and everywhere. */
async function measureCrash(h: SimHarness): Promise<Partial<SimReport>> {
  const { clock, nodes, n, seedCount } = h;
  await clock.advance(5000);
  const victim = nodes[seedCount + h.rng.int(n - seedCount)] ?? nodes[n - 1];
  h.watch(victim.id);
  victim.crashed = true;
  h.net.crash(victim.addr);
  const liveCount = n - 1;
  const { seenAt } = h.watched;
  const done = await clock.runUntilCondition(
    () => seenAt.size >= liveCount,
    Math.max(60_000, h.durationMs),
    50,
  );
  const watched = h.watched;
  h.progress(`crash detected by ${seenAt.size}/${liveCount}`);
  return {
    crash: {
      id: victim.id,
      firstSuspicionMs: watched.firstSuspicion,
      firstFailedMs: watched.firstFailed,
      deadEverywhereMs: done ? Math.max(...seenAt.values()) - watched.start : NaN,
      reportedBy: seenAt.size,
    },
  };
}

/** Nothing happens for `durationMs`: every failure or suspicion is a false positive. */
async function measureFalsePositives(h: SimHarness): Promise<Partial<SimReport>> {
  const { clock } = h;
  const end = clock.now() + h.durationMs;
  while (clock.now() < end) {
    await clock.runUntil(Math.min(end, clock.now() + 10_000));
    h.progress("measuring");
  }
  return {};
}

/** Keeps `pauseFraction` of the nodes paused, each pause `pauseMs`, staggered. */
async function measurePauses(h: SimHarness): Promise<Partial<SimReport>> {
  const { clock, net, nodes, n } = h;
  const fraction = h.options.pauseFraction ?? 0.05;
  const pauseMs = h.options.pauseMs ?? 2000;
  const tick = 100;
  const perTick = (fraction * n * tick) / pauseMs;
  let carry = 0;
  let injected = 0;
  const end = clock.now() + h.durationMs;
  while (clock.now() < end) {
    carry += perTick;
    while (carry >= 1) {
      carry -= 1;
      const victim = nodes[h.rng.int(n)];
      if (!net.isPaused(victim.addr)) {
        net.pause(victim.addr, pauseMs);
        h.paused(victim, clock.now() + pauseMs);
        injected++;
      }
    }
    await clock.advance(tick);
    if (clock.now() % 10_000 < tick) h.progress("measuring");
  }
  return { pausesInjected: injected };
}

const SCENARIOS: Record<SimScenario, Scenario> = {
  join: measureJoin,
  crash: measureCrash,
  "false-positives": measureFalsePositives,
  paused: measurePauses,
};

/** Forms the cluster, runs the scenario in the steady-state window, and reports. */
async function runOnce(options: SimOptions): Promise<SimReport> {
  const h = new SimHarness(options);
  await h.bootstrap();
  await h.openWindow();
  return await h.finish(await SCENARIOS[h.scenario](h));
}
