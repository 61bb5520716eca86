/**
 * Helpers for the RPC attack tests: hostile payloads, a server in a child process that reports
 * its resident memory, and raw QUIC connections that speak the frame layout directly.
 *
 * @module
 */
import { defaultDevCa, RPC_ALPN } from "../../mod.ts";

/** `dc 3e 80` × 43,690 then `c0`: nested array16 headers claiming 16,000 elements each. */
export function nestedArrayBomb(levels = 43_690): Uint8Array {
  const b = new Uint8Array(levels * 3 + 1);
  for (let i = 0; i < levels; i++) b.set([0xdc, 0x3e, 0x80], i * 3);
  b[levels * 3] = 0xc0;
  return b;
}

/** An array32 header claiming `count` elements followed by `count` bytes of `0x80` (empty maps). */
export function emptyMapFlood(count = 16 * 1024 * 1024): Uint8Array {
  const b = new Uint8Array(5 + count).fill(0x80);
  b.set([0xdd, count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff]);
  return b;
}

/** A frame: `[u32 length][u8 type][u8 flags][u32 id][body]`. */
export function frame(
  type: number,
  flags: number,
  id: number,
  body: Uint8Array = new Uint8Array(),
): Uint8Array {
  const f = new Uint8Array(10 + body.length);
  const v = new DataView(f.buffer);
  v.setUint32(0, 6 + body.length);
  f[4] = type;
  f[5] = flags;
  v.setUint32(6, id);
  f.set(body, 10);
  return f;
}

/** `parts` one after the other in one array. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A `REQUEST` body for `method` with a raw MessagePack payload (no deadline, no metadata). */
export function requestBody(method: string, payload: Uint8Array): Uint8Array {
  const m = new TextEncoder().encode(method);
  const b = new Uint8Array(1 + m.length + payload.length);
  b[0] = m.length;
  b.set(m, 1);
  b.set(payload, 1 + m.length);
  return b;
}

/** A server in a child process (tests/_support/rpc_server_fixture.ts) and what it reported. */
export interface ChildServer {
  /** The server's UDP port. */
  port: number;
  /** The child's resident memory reports so far, bytes. */
  rss: number[];
  /** Resolves with the exit status when the child ends. */
  status: Promise<Deno.CommandStatus>;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /** Stops the child (SIGKILL after 3 s). */
  stop(): Promise<void>;
}

/** Starts tests/_support/rpc_server_fixture.ts with `options`; `v8Flags` e.g. a heap cap. */
export async function spawnServer(
  options: Record<string, unknown> = {},
  v8Flags: string[] = [],
): Promise<ChildServer> {
  const args = ["run", "-A"];
  if (v8Flags.length) args.push(`--v8-flags=${v8Flags.join(",")}`);
  // The child's certificate comes from this process's development CA, so clients here trust it.
  const withCa = { devCa: await defaultDevCa(), ...options };
  args.push(new URL("./rpc_server_fixture.ts", import.meta.url).pathname, JSON.stringify(withCa));
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .spawn();
  const rss: number[] = [];
  let err = "";
  (async () => {
    const dec = new TextDecoder();
    for await (const c of child.stderr) err += dec.decode(c, { stream: true });
  })();
  const port = await new Promise<number>((resolve, reject) => {
    (async () => {
      let buf = "";
      const dec = new TextDecoder();
      let found = false;
      for await (const c of child.stdout) {
        buf += dec.decode(c, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const m = JSON.parse(line);
            if (typeof m.port === "number" && !found) {
              found = true;
              resolve(m.port);
            } else if (typeof m.rss === "number") rss.push(m.rss);
          } catch { /* not ours */ }
        }
      }
      if (!found) reject(new Error(`server child exited before listening: ${err}`));
    })();
  });
  const status = child.status;
  return {
    port,
    rss,
    status,
    stderr: () => err,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 3000);
      await status;
      clearTimeout(t);
    },
  };
}

/** A raw QUIC connection to a server at `port` on loopback, speaking the frame layout. */
export async function rawConnect(port: number): Promise<Deno.QuicConn> {
  const ca = await defaultDevCa();
  return await Deno.connectQuic({
    hostname: "127.0.0.1",
    port,
    alpnProtocols: [RPC_ALPN],
    caCerts: [ca.certPem],
    serverName: "localhost",
  });
}
