/**
 * `rpcnet monitor`: membership events live, one line each (or JSON lines), through the
 * `$cluster.events` stream of one node.
 *
 * @module
 */

import { ADMIN_METHODS, type AdminEvent } from "../client/admin.ts";
import { RpcError } from "../errors.ts";
import {
  bool,
  type Colours,
  colours,
  connect,
  CONNECT_FLAGS,
  CONNECT_HELP,
  connectSettings,
  formatTags,
  type Io,
  parseFlags,
  toJson,
} from "./common.ts";

/** Help of `rpcnet monitor`. */
export const MONITOR_HELP = `usage: rpcnet monitor [--json] [--addr HOST:PORT]

Prints membership events as the node at --addr sees them, one line each, until interrupted:
joined, left, failed, suspect, recovered, updated (tags), partition, healed.

Options:
  --json             one JSON object per event: {"type","at","member":{…}} (partition and
                     healed carry member id lists)
  -h, --help         this help

${CONNECT_HELP}`;

/** One event as a line of text. */
export function formatEvent(e: AdminEvent, c: Colours): string {
  const time = new Date(e.at).toISOString();
  switch (e.type) {
    case "subscribed":
      return `${time} subscribed to ${e.self}`;
    case "partition":
      return `${time} ${c.red("partition")} reachable=${e.reachable.join(",")} unreachable=${
        e.unreachable.join(",")
      }`;
    case "healed":
      return `${time} ${c.green("healed")} members=${e.members.join(",")}`;
    default: {
      const colour = e.type === "joined" || e.type === "recovered"
        ? c.green
        : e.type === "failed"
        ? c.red
        : e.type === "suspect"
        ? c.yellow
        : (s: string) => s;
      const extra = e.type === "suspect"
        ? ` phi=${e.phi.toFixed(1)}`
        : e.type === "updated"
        ? ` was=${formatTags(e.previousTags) || "-"}`
        : "";
      return `${time} ${colour(e.type.padEnd(9))} ${e.member.id} gossip=${e.member.gossipAddr} ` +
        `rpc=${e.member.rpcAddr || "-"} inc=${e.member.incarnation} tags=${
          formatTags(e.member.tags) || "-"
        }${extra}`;
    }
  }
}

/** Runs `rpcnet monitor` until interrupted (or `signal` aborts); returns the exit code. */
export async function monitorCommand(
  args: string[],
  io: Io,
  signal?: AbortSignal,
): Promise<number> {
  const p = parseFlags(args, { ...CONNECT_FLAGS, json: { type: "boolean" } }, 0);
  if (p.values.help) {
    io.out(MONITOR_HELP + "\n");
    return 0;
  }
  const json = bool(p, "json");
  const settings = await connectSettings(p, io);
  const client = await connect(settings);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  signal?.addEventListener("abort", onSignal, { once: true });
  try {
    Deno.addSignalListener("SIGINT", onSignal);
  } catch { /* no signals here */ }
  const c = colours(io);
  try {
    for await (
      const e of client.serverStream<AdminEvent>(ADMIN_METHODS.events, null, { signal: ac.signal })
    ) {
      if (e.type === "subscribed") {
        io.err(`monitoring ${e.self} at ${settings.addr} (Ctrl-C to stop)\n`);
        continue;
      }
      io.out((json ? toJson(e) : formatEvent(e, c)) + "\n");
    }
    io.err(`rpcnet monitor: ${settings.addr} ended the event stream (node stopped)\n`);
    return 1;
  } catch (e) {
    if (ac.signal.aborted && RpcError.is(e, "cancelled")) return 0;
    throw e;
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSignal);
    } catch { /* no signals here */ }
    signal?.removeEventListener("abort", onSignal);
    await client.close();
  }
}
