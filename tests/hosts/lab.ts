/**
 * A lab of network namespaces joined by a bridge, one "host" each, for the multi-host suite.
 * Everything it creates carries the `rnh` prefix (namespaces `rnh1…`, bridge `rnhbr0`, veths
 * `rnhv1…`, nft table `inet rnh`), so cleanup can remove leftovers of a killed run without touching
 * anything else. Traffic stays on the bridge: the hosts are 10.231.0.1–.N, the driver (this
 * process, in the root namespace) is 10.231.0.254 and never joins the gossip.
 *
 * Faults: `partition` drops packets between two groups both ways with nft; `loss` drops a random
 * share of the packets each host receives from the other hosts (nft `numgen random`); `heal`
 * removes both.
 *
 * @module
 */

export const PREFIX = "rnh";
export const BRIDGE = `${PREFIX}br0`;
export const SUBNET = "10.231.0";
export const DRIVER_ADDR = `${SUBNET}.254`;

/** The address of host `i` (1-based). */
export function hostAddr(i: number): string {
  return `${SUBNET}.${i}`;
}

/** The namespace of host `i`. */
export function hostNs(i: number): string {
  return `${PREFIX}${i}`;
}

async function run(
  cmd: string,
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await child.output();
  return {
    code: o.code,
    out: new TextDecoder().decode(o.stdout),
    err: new TextDecoder().decode(o.stderr),
  };
}

async function must(cmd: string, args: string[], stdin?: string): Promise<string> {
  const r = await run(cmd, args, stdin);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.err.trim()}`);
  return r.out;
}

/** Why the suite cannot run here (not root, no `ip` or `nft`), or undefined when it can. */
export async function labUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "not root (network namespaces need root: run as root or in CI)";
  for (const tool of ["ip", "nft"]) {
    try {
      const r = await run(tool, ["-V"]);
      if (r.code !== 0) return `\`${tool}\` does not run`;
    } catch {
      return `\`${tool}\` is not installed (Debian: apt-get install iproute2 nftables)`;
    }
  }
  return undefined;
}

/** Removes every namespace, bridge and veth with the lab's prefix, killing processes inside. */
export async function cleanupLab(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  const names = list.out.split("\n").map((l) => l.split(" ")[0]).filter((n) =>
    new RegExp(`^${PREFIX}\\d+$`).test(n)
  );
  for (const ns of names) {
    const pids = (await run("ip", ["netns", "pids", ns])).out.split("\n").map(Number).filter((p) =>
      p > 0
    );
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await run("ip", ["netns", "del", ns]);
  }
  const links = await run("ip", ["-o", "link", "show"]);
  for (const m of links.out.matchAll(new RegExp(`^\\d+: (${PREFIX}[a-z0-9]+)[@:]`, "gm"))) {
    await run("ip", ["link", "del", m[1]]);
  }
}

/** Creates `n` hosts on a bridge (after removing leftovers) with an empty nft table each. */
export async function createLab(n: number): Promise<void> {
  await cleanupLab();
  await must("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  await must("ip", ["addr", "add", `${DRIVER_ADDR}/24`, "dev", BRIDGE]);
  await must("ip", ["link", "set", BRIDGE, "up"]);
  for (let i = 1; i <= n; i++) {
    const ns = hostNs(i);
    const veth = `${PREFIX}v${i}`;
    await must("ip", ["netns", "add", ns]);
    await must("ip", ["link", "add", veth, "type", "veth", "peer", "name", `${veth}p`]);
    await must("ip", ["link", "set", `${veth}p`, "netns", ns]);
    await must("ip", ["link", "set", veth, "master", BRIDGE]);
    await must("ip", ["link", "set", veth, "up"]);
    await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
    await must("ip", ["-n", ns, "link", "set", `${veth}p`, "name", "eth0"]);
    await must("ip", ["-n", ns, "addr", "add", `${hostAddr(i)}/24`, "dev", "eth0"]);
    await must("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    await nft(i, emptyTable());
  }
}

function emptyTable(): string {
  return `table inet ${PREFIX} {
  chain input { type filter hook input priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
`;
}

async function nft(i: number, script: string): Promise<void> {
  await must("ip", ["netns", "exec", hostNs(i), "nft", "-f", "-"], script);
}

async function resetTable(i: number, rules: { input: string[]; output: string[] }): Promise<void> {
  // Delete and recreate in one transaction, so no packet sees a half-written rule set.
  const script = `table inet ${PREFIX}
delete table inet ${PREFIX}
table inet ${PREFIX} {
  chain input {
    type filter hook input priority 0; policy accept;
${rules.input.map((r) => `    ${r}`).join("\n")}
  }
  chain output {
    type filter hook output priority 0; policy accept;
${rules.output.map((r) => `    ${r}`).join("\n")}
  }
}
`;
  await nft(i, script);
}

/** Drops every packet between the hosts of `a` and those of `b`, both ways, on every host. */
export async function partition(a: number[], b: number[]): Promise<void> {
  const set = (g: number[]) => `{ ${g.map(hostAddr).join(", ")} }`;
  for (const [mine, other] of [[a, b], [b, a]]) {
    for (const i of mine) {
      await resetTable(i, {
        input: [`ip saddr ${set(other)} counter drop`],
        output: [`ip daddr ${set(other)} counter drop`],
      });
    }
  }
}

/**
 * Drops `percent` % of the packets each of hosts `1..n` receives from the other hosts, at random
 * (the driver's control traffic is spared).
 */
export async function loss(n: number, percent: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await resetTable(i, {
      input: [`ip saddr != ${DRIVER_ADDR} numgen random mod 100 < ${percent} counter drop`],
      output: [],
    });
  }
}

/** Removes every fault rule on hosts `1..n`. */
export async function heal(n: number): Promise<void> {
  for (let i = 1; i <= n; i++) await resetTable(i, { input: [], output: [] });
}

/** The counters of host `i`'s nft rules (packets dropped), for the report. */
export async function droppedPackets(i: number): Promise<number> {
  const out =
    (await run("ip", ["netns", "exec", hostNs(i), "nft", "list", "table", "inet", PREFIX]))
      .out;
  let sum = 0;
  for (const m of out.matchAll(/packets (\d+)/g)) sum += Number(m[1]);
  return sum;
}
