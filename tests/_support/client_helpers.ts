/** Shared helpers of the client tests: start small LOCAL clusters of echoing nodes. */
import { type Handler, Node, type NodeOptions, type Tags } from "../../mod.ts";
import { sleep, waitFor } from "./wait.ts";

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
