/**
 * The `rpcnet` command: run a node, see the cluster, call a method, watch it live.
 *
 * ```sh
 * deno run -A jsr:@rpcnet/cluster/cli --help     # published
 * deno task rpcnet -- --help                      # in the repository
 * ```
 *
 * Commands: `agent`, `members`, `monitor`, `call`, `top`, `keygen`, `ca`, `sim`; each takes
 * `--help`. Exit status: 0 success, 1 failure (an unreachable node, a refused secret, a failed
 * call), 2 usage error (the message names the flag).
 *
 * @example Look at a cluster through one node (the README's three-process cluster)
 * ```sh
 * deno task rpcnet -- members --addr 127.0.0.1:7373 --ca rpcnet-ca.pem
 * deno task rpcnet -- members --filter role=worker --json --ca rpcnet-ca.pem
 * deno task rpcnet -- monitor --addr 127.0.0.1:7373 --ca rpcnet-ca.pem   # until Ctrl-C
 * ```
 *
 * @module
 */

import { RpcError } from "../errors.ts";
import { agentCommand } from "./agent.ts";
import { caCommand } from "./ca.ts";
import { callCommand } from "./call.ts";
import { type Io, processIo, UsageError } from "./common.ts";

export type { Io } from "./common.ts";
import { keygenCommand } from "./keygen.ts";
import { membersCommand } from "./members.ts";
import { monitorCommand } from "./monitor.ts";
import { simCommand } from "./sim.ts";
import { topCommand } from "./top.ts";

/** Help of `rpcnet` itself. */
export const MAIN_HELP =
  `usage: rpcnet COMMAND [options]        (rpcnet COMMAND --help for its options)

Run a node:
  agent      run a cluster node from flags, RPCNET_* environment and/or a JSON config file
See the cluster (through any one node, without joining it):
  members    list the members, like 'serf members'
  monitor    print membership events as they happen
  call       call a method on a node, or on a worker picked by tag filter
  top        live view: members, state, phi, calls/s, latency, errors per node
Set up:
  keygen     make a gossip encryption key for a keyring file
  ca         create a cluster CA, issue node certificates (PEM files)
  sim        run the membership simulator

Exit status: 0 success, 1 failure, 2 usage error.`;

const COMMANDS: Record<string, (args: string[], io: Io) => number | Promise<number>> = {
  agent: agentCommand,
  members: membersCommand,
  monitor: monitorCommand,
  call: callCommand,
  top: topCommand,
  keygen: keygenCommand,
  ca: caCommand,
  sim: simCommand,
};

/**
 * Runs `rpcnet` with `args` (without the program name); never throws.
 *
 * @param args the command line, e.g. `["members", "--json"]`
 * @param io where output goes (default: the process's stdout/stderr and environment)
 * @returns the exit status: 0 success, 1 failure, 2 usage error
 *
 * @example Run a command from a program, its output captured
 * ```ts
 * import { main } from "@rpcnet/cluster/cli";
 *
 * const out: string[] = [];
 * const code = await main(["members", "--json", "--addr", "127.0.0.1:7373"], {
 *   out: (text) => out.push(text),
 *   err: (text) => console.error(text),
 *   isTerminal: false,
 *   env: (name) => Deno.env.get(name),
 * });
 * if (code === 0) console.log(JSON.parse(out.join("")));
 * ```
 */
export async function main(args: string[], io: Io = processIo()): Promise<number> {
  // `deno task rpcnet -- …` passes the separator through.
  const rest = args[0] === "--" ? args.slice(1) : args;
  const [name, ...commandArgs] = rest;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(MAIN_HELP + "\n");
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.err(`rpcnet: unknown command '${name}'\n\n${MAIN_HELP}\n`);
    return 2;
  }
  try {
    return await command(commandArgs, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`rpcnet ${name}: ${e.message}\n(see 'rpcnet ${name} --help')\n`);
      return 2;
    }
    if (e instanceof RpcError) {
      io.err(`rpcnet ${name}: ${e.code}: ${e.message}\n`);
      return 1;
    }
    io.err(`rpcnet ${name}: ${(e as Error)?.stack ?? e}\n`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
