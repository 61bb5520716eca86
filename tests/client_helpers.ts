/** Shared helpers of the client tests: start small LOCAL clusters and wait for conditions. */
import { type Handler, Node, type NodeOptions, type Tags } from "../mod.ts";

/** Polls `cond` every 20 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A handler that answers `{worker, echo}` after `delayMs`. */
export function echoFrom(id: string, delayMs = 0): Handler {
  return async (req) => {
    if (delayMs > 0) await sleep(delayMs);
    return { worker: id, echo: req };
  };
}

/**
 * Starts a LOCAL-profile cluster: node 0 is the seed, the others join it. Each node serves
 * `echo` answering with its id. Waits until every node sees every other one alive.
 */
export async function startCluster(
  specs: { id: string; tags: Tags; delayMs?: number }[],
  common: Partial<NodeOptions> = {},
): Promise<Node[]> {
  const nodes: Node[] = [];
  try {
    for (const s of specs) {
      nodes.push(
        await Node.start({
          profile: "LOCAL",
          ...common,
          id: s.id,
          tags: s.tags,
          seeds: nodes.length ? [nodes[0].gossipAddr] : [],
          handlers: { echo: echoFrom(s.id, s.delayMs), ...common.handlers },
        }),
      );
    }
    await waitFor(
      () => nodes.every((n) => n.nodes.alive().length === nodes.length),
      `${nodes.length} nodes to see each other alive`,
    );
    return nodes;
  } catch (e) {
    await stopAll(nodes);
    throw e;
  }
}

/** Stops every node abruptly (in parallel). */
export async function stopAll(nodes: Node[]): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n.stop()));
}
