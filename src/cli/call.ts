/**
 * `rpcnet call`: one call, to the node at `--addr`, or with `--filter` to a worker picked the
 * way a `ClusterClient` picks one (a `WorkerRegistry` over the members the node at `--addr`
 * reports, random strategy) without joining the gossip; the response is printed as JSON.
 *
 * @module
 */

import { ADMIN_METHODS, type AdminMembers } from "../client/admin.ts";
import type { ClusterEvent, Member, MembershipView } from "../membership/types.ts";
import { WorkerRegistry } from "../registry/worker_registry.ts";
import type { CallOptions } from "../rpc/types.ts";
import {
  bool,
  connect,
  CONNECT_FLAGS,
  CONNECT_HELP,
  connectSettings,
  type Io,
  parseDuration,
  parseFilterFlag,
  parseFlags,
  parsePairs,
  str,
  strs,
  toJson,
  UsageError,
} from "./common.ts";

/** Help of `rpcnet call`. */
export const CALL_HELP = `usage: rpcnet call METHOD [JSON] [options]

Makes one call and prints the response as JSON. JSON is the request (default null; '-' reads
it from stdin).

Without --filter the node at --addr serves the call. With --filter the node at --addr only
lists the members: the call goes to one alive member whose tags match, picked at random as a
ClusterClient would (suspect members are tried only when no alive one matches).

Options:
  --filter EXPR      call a worker whose tags match, e.g. role=worker
  --stream           server-streaming call: print each response as one JSON line
  --timeout D        deadline, e.g. 500ms, 5s, 1m (default 10s)
  --meta KEY=VALUE   metadata for the handler (repeatable)
  -h, --help         this help

Exit status: 0 on a response, 1 when the call fails (the error code and message go to
stderr), 2 for usage errors.

${CONNECT_HELP}`;

/** The members a node reported, as a read-only MembershipView for a WorkerRegistry. */
class SnapshotMembership implements MembershipView {
  // Not a member id: the caller itself is never selected.
  readonly localId = "\u0000rpcnet-cli";
  readonly #members: Member[];

  constructor(members: Member[]) {
    this.#members = members;
  }
  members(): Member[] {
    return this.#members;
  }
  get(id: string): Member | undefined {
    return this.#members.find((m) => m.id === id);
  }
  subscribe(): AsyncIterableIterator<ClusterEvent> {
    return (async function* () {})();
  }
  addEventListener(): void {}
  removeEventListener(): void {}
}

async function readRequest(text: string | undefined): Promise<unknown> {
  if (text === undefined) return null;
  const src = text === "-" ? await new Response(Deno.stdin.readable).text() : text;
  try {
    return JSON.parse(src);
  } catch (e) {
    throw new UsageError(`the JSON request is not valid JSON: ${(e as Error).message}`);
  }
}

/** Runs `rpcnet call`; returns the exit code. */
export async function callCommand(args: string[], io: Io): Promise<number> {
  const p = parseFlags(args, {
    ...CONNECT_FLAGS,
    filter: { type: "string" },
    stream: { type: "boolean" },
    timeout: { type: "string" },
    meta: { type: "string", multiple: true },
  }, 2);
  if (p.values.help) {
    io.out(CALL_HELP + "\n");
    return 0;
  }
  const [method, json] = p.positionals;
  if (method === undefined) throw new UsageError("METHOD is missing (rpcnet call METHOD [JSON])");
  const filterText = str(p, "filter");
  if (filterText !== undefined) parseFilterFlag("--filter", filterText);
  const timeoutText = str(p, "timeout");
  const timeoutMs = timeoutText === undefined ? 10_000 : parseDuration("--timeout", timeoutText);
  const meta = parsePairs("--meta", strs(p, "meta"));
  const request = await readRequest(json);
  const settings = await connectSettings(p, io);
  const options: CallOptions = { timeoutMs, meta };

  let target = await connect(settings);
  if (filterText !== undefined) {
    const reply = await target.call<AdminMembers>(ADMIN_METHODS.members, null, { timeoutMs });
    await target.close();
    const now = Date.now();
    const view = new SnapshotMembership(reply.members.map((m) => ({
      id: m.id,
      gossipAddr: m.gossipAddr,
      rpcAddr: m.rpcAddr,
      incarnation: m.incarnation,
      state: m.state,
      tags: m.tags,
      phi: m.phi,
      stateChangedAt: now - m.sinceChangeMs,
    })));
    const registry = new WorkerRegistry(view, { strategy: "random", excludeSuspect: true });
    try {
      const worker = registry.trySelectWorker(filterText) ??
        new WorkerRegistry(view, { strategy: "random" }).selectWorker(filterText);
      target = await connect(settings, worker.addr);
    } finally {
      registry.close();
    }
  }
  try {
    if (bool(p, "stream")) {
      for await (const v of target.serverStream(method, request, options)) {
        io.out(toJson(v) + "\n");
      }
    } else {
      io.out(toJson(await target.call(method, request, options), 2) + "\n");
    }
    return 0;
  } finally {
    await target.close();
  }
}
