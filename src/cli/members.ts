/**
 * `rpcnet members`: the members one node knows, as a table like `serf members`, or JSON.
 *
 * @module
 */

import { ADMIN_METHODS, type AdminMembers } from "../client/admin.ts";
import {
  colours,
  colourState,
  connect,
  CONNECT_FLAGS,
  CONNECT_HELP,
  connectSettings,
  formatAge,
  formatTags,
  type Io,
  parseFilterFlag,
  parseFlags,
  str,
  table,
  toJson,
} from "./common.ts";
import { bool } from "./common.ts";

/** Help of `rpcnet members`. */
export const MEMBERS_HELP = `usage: rpcnet members [--filter EXPR] [--json] [--addr HOST:PORT]

Lists the members of the cluster as the node at --addr sees them, without joining the gossip.

Options:
  --filter EXPR      only members whose tags match, e.g. role=worker or "zone in (eu-1,eu-2)"
  --json             print a JSON array of members: id, state, incarnation, phi, tags, rpcAddr,
                     gossipAddr, sinceChangeMs, local
  -h, --help         this help

${CONNECT_HELP}`;

/** Runs `rpcnet members`; returns the exit code. */
export async function membersCommand(args: string[], io: Io): Promise<number> {
  const p = parseFlags(args, {
    ...CONNECT_FLAGS,
    filter: { type: "string" },
    json: { type: "boolean" },
  }, 0);
  if (p.values.help) {
    io.out(MEMBERS_HELP + "\n");
    return 0;
  }
  const filter = str(p, "filter");
  if (filter !== undefined) parseFilterFlag("--filter", filter);
  const settings = await connectSettings(p, io);
  const client = await connect(settings);
  try {
    const reply = await client.call<AdminMembers>(
      ADMIN_METHODS.members,
      filter === undefined ? null : { filter },
      { timeoutMs: 5000 },
    );
    if (bool(p, "json")) {
      io.out(toJson(reply.members) + "\n");
      return 0;
    }
    const c = colours(io);
    const rows = [["Node", "Gossip", "RPC", "Status", "Inc", "Phi", "Since", "Tags"].map(c.bold)];
    for (const m of reply.members) {
      rows.push([
        m.local ? `${m.id}*` : m.id,
        m.gossipAddr,
        m.rpcAddr || "-",
        colourState(c, m.state === "dead" ? "failed" : m.state),
        String(m.incarnation),
        m.phi.toFixed(1),
        formatAge(m.sinceChangeMs),
        formatTags(m.tags),
      ]);
    }
    io.out(table(rows));
    return 0;
  } finally {
    await client.close();
  }
}
