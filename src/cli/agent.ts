/**
 * `rpcnet agent`: runs a cluster node from flags, environment and/or a JSON config file; logs
 * one JSON line per membership event on stdout; leaves gracefully on SIGTERM or SIGINT.
 *
 * @module
 */

import { Node, type NodeOptions } from "../client/node.ts";
import type { ClusterEvent } from "../membership/types.ts";
import { toAdminEvent } from "../client/admin.ts";
import { type Io, parseFlags } from "./common.ts";
import { AGENT_FLAGS, nodeAddresses, resolveAgentConfig } from "./agent_config.ts";
import { type LoadedHandler, loadHandlers } from "./handlers_module.ts";
import { httpAddress } from "./agent_config.ts";
import { createLogger, type LogFields, type Logger, type LogSink } from "../logger.ts";
import { readCaCert, readCertAndKey, readKeyringFile, readSigningCa } from "./tls_files.ts";

/** Help of `rpcnet agent`. */
export const AGENT_HELP = `usage: rpcnet agent [options]

Runs a cluster node: an RPC server and gossip membership. Prints one JSON line when it has
started and one per membership event; SIGTERM or SIGINT makes it leave the cluster gracefully.

Options (flag > environment > config file > default):
  --config FILE        JSON config file; keys are the camelCase flag names, e.g.
                       {"id":"w1","seeds":["127.0.0.1:7946"],"tags":{"role":"worker"}}   RPCNET_CONFIG
  --id ID              node id (default: a random UUID)                                  RPCNET_ID
  --bind HOST[:PORT]   address the sockets bind to, PORT = gossip port
                       (default 127.0.0.1:7946; 0 picks a free port)                      RPCNET_BIND
  --advertise HOST[:PORT]  address other nodes reach this one at (default: --bind);
                       today it must equal the bind address                          RPCNET_ADVERTISE
  --rpc-port PORT      RPC port (default 7373; 0 picks a free port)                RPCNET_RPC_PORT
  --seed HOST:PORT     gossip address of a node to join (repeatable; a,b in env)     RPCNET_SEEDS
  --tag KEY=VALUE      a tag of this node (repeatable; k=v,k=v in env)                RPCNET_TAGS
  --profile P          LAN | WAN | LOCAL timing profile (default LAN)              RPCNET_PROFILE
  --label L            cluster label: nodes with another label ignore this one       RPCNET_LABEL
  --secret S           cluster secret every RPC connection must prove               RPCNET_SECRET
  --keyring-file FILE  gossip encryption keys, one base64 key per line, first primary
                       (make keys with 'rpcnet keygen')                       RPCNET_KEYRING_FILE
  --ca FILE            CA certificate (PEM or JSON) from 'rpcnet ca create'; the node trusts
                       it and, without --cert, issues itself a certificate with its key  RPCNET_CA
  --ca-key FILE        the CA's key (default: FILE-key.pem next to --ca)             RPCNET_CA_KEY
  --cert FILE, --key FILE  this node's certificate and key from 'rpcnet ca issue'
                                                                         RPCNET_CERT, RPCNET_KEY
  --handlers MODULE    a module whose exports become handlers: a function is unary, an
                       async generator function streams responses, and
                       {kind: "unary"|"serverStream"|"clientStream"|"bidiStream", handler}
                       picks the kind; a default-exported object maps method names
                       (dots allowed) to handlers; the module may read its node id from
                       RPCNET_NODE_ID                                            RPCNET_HANDLERS
  --http [HOST:]PORT   serve /metrics (Prometheus), /healthz, /readyz and the live status
                       page on this HTTP port (HOST defaults to the --bind host)     RPCNET_HTTP
  -h, --help           this help

Without --ca the node's certificate comes from a throwaway CA that no other process trusts:
give every node and tool the same --ca for a cluster of several processes.

Log lines (stdout, one JSON object each): {"ts","level","event":"started"|"joined"|"left"|
"failed"|"suspect"|"recovered"|"updated"|"partition"|"healed"|"leaving"|"stopped", …}; the
node's own warnings and errors come out on the same stream as {"ts","level","msg", …}.`;

/**
 * The agent's log: one JSON object per line on stdout, through the package logger so the node's
 * own records (join failures, handler errors, dropped packets) share the stream and format.
 * Agent events carry `event` (the record's `msg` is then left out, it says the same); node
 * records carry `msg`.
 */
function agentLoggers(io: Io): { events: Logger; node: Logger } {
  const sink: LogSink = (r) => {
    const head: Record<string, unknown> = { ts: new Date(r.time).toISOString(), level: r.level };
    if (r.fields.event === undefined) head.msg = r.msg;
    io.out(JSON.stringify({ ...head, ...r.fields }) + "\n");
  };
  // The node logs warnings and errors; membership changes are the agent's own event lines.
  return { events: createLogger(sink, "info"), node: createLogger(sink, "warn") };
}

function logLine(log: Logger, fields: Record<string, unknown> & { event: string }): void {
  // Agent lines carry tags, seeds and handler lists: JSON values, not only flat ones.
  log.info(fields.event, fields as unknown as LogFields);
}

/** Flattens an event for the log: `{event, id, state, …}`. */
function eventFields(
  e: ClusterEvent,
  localId: string,
): Record<string, unknown> & { event: string } {
  const a = toAdminEvent(e, localId, Date.now()) as Record<string, unknown>;
  const { type, at: _at, member, ...rest } = a;
  if (member === undefined) return { event: type as string, ...rest };
  const m = member as Record<string, unknown>;
  return {
    event: type as string,
    id: m.id,
    state: m.state,
    incarnation: m.incarnation,
    rpcAddr: m.rpcAddr,
    gossipAddr: m.gossipAddr,
    tags: m.tags,
    ...rest,
  };
}

/**
 * Runs the agent until SIGTERM/SIGINT (or `signal` aborts).
 *
 * @returns the exit code
 */
export async function agentCommand(
  args: string[],
  io: Io,
  signal?: AbortSignal,
): Promise<number> {
  const p = parseFlags(args, AGENT_FLAGS, 0);
  if (p.values.help) {
    io.out(AGENT_HELP + "\n");
    return 0;
  }
  const cfg = await resolveAgentConfig(p, io);
  const addrs = nodeAddresses(cfg);
  const http = httpAddress(cfg);
  const log = agentLoggers(io);
  // The id is chosen here so the handlers module can read it (RPCNET_NODE_ID) at import.
  const id = cfg.id ?? crypto.randomUUID();
  const options: NodeOptions = {
    id,
    ...addrs,
    seeds: cfg.seeds,
    tags: cfg.tags,
    profile: cfg.profile,
    label: cfg.label,
    secret: cfg.secret,
    logger: log.node,
  };
  if (http) options.http = { hostname: http.hostname, port: http.port };
  if (cfg.keyringFile !== undefined) {
    options.keyring = await readKeyringFile(cfg.keyringFile, "--keyring-file");
  }
  if (cfg.cert !== undefined && cfg.key !== undefined) {
    // Production mode: this node's own certificate; trust the CA for calls to the others.
    options.tls = await readCertAndKey(cfg.cert, cfg.key);
    options.caCerts = [await readCaCert(cfg.ca!, "--ca")];
  } else if (cfg.ca !== undefined) {
    const ca = await readSigningCa(cfg.ca, cfg.caKey, "--ca", "--ca-key");
    options.devCa = ca; // Node issues its certificate for the advertised and bound addresses
  } else {
    io.err(
      "rpcnet agent: no --ca: this node's certificate comes from a throwaway CA that other " +
        "processes cannot verify (create one with 'rpcnet ca create')\n",
    );
  }

  Deno.env.set("RPCNET_NODE_ID", id);
  const handlers = cfg.handlers === undefined ? [] : await loadHandlers(cfg.handlers);
  // Every kind goes to Node.start, so no handler appears after the node is visible.
  const byKind: Record<LoadedHandler["kind"], Record<string, never>> = {
    unary: {},
    serverStream: {},
    clientStream: {},
    bidiStream: {},
  };
  for (const h of handlers) byKind[h.kind][h.method] = h.fn as never;
  options.handlers = byKind.unary;
  options.serverStreams = byKind.serverStream;
  options.clientStreams = byKind.clientStream;
  options.bidiStreams = byKind.bidiStream;

  const node = await Node.start(options);
  const events = node.membership.subscribe();
  logLine(log.events, {
    event: "started",
    id: node.id,
    rpcAddr: node.rpcAddr,
    gossipAddr: node.gossipAddr,
    ...(node.observer ? { http: node.observer.url } : {}),
    tags: cfg.tags,
    seeds: cfg.seeds,
    handlers: handlers.map((h) => h.method),
    members: node.membership.members().filter((m) => m.state === "alive").length,
  });

  let stopping = false;
  const stop = new Promise<string>((resolve) => {
    const onSignal = (name: string) => () => {
      if (stopping) {
        // A second signal: stop at once (no leave message).
        io.err("rpcnet agent: second signal, stopping without leaving\n");
        void node.stop().finally(() => Deno.exit(1));
        return;
      }
      stopping = true;
      resolve(name);
    };
    for (const s of ["SIGTERM", "SIGINT"] as const) {
      try {
        Deno.addSignalListener(s, onSignal(s));
      } catch { /* signal not supported on this platform */ }
    }
    signal?.addEventListener("abort", onSignal("abort"), { once: true });
  });
  const logging = (async () => {
    for await (const e of events) logLine(log.events, eventFields(e, node.id));
  })();
  const why = await stop;
  logLine(log.events, { event: "leaving", id: node.id, signal: why });
  await node.leave();
  await events.return?.();
  await logging;
  logLine(log.events, { event: "stopped", id: node.id });
  return 0;
}
