/**
 * Every ```ts block of README.md runs as written: each is type-checked against this repository's
 * `mod.ts` (the package name `@rpcnet/cluster` is rewritten to its path), and the blocks marked
 * `// run` are executed. A block whose first line is `// continued` is appended to the program of
 * the block before it. The convention is documented at the end of README.md.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const README = new URL("README.md", ROOT);
const CONFIG = new URL("deno.json", ROOT).pathname;
const ENTRY_POINTS: Record<string, string> = {
  "@rpcnet/cluster": new URL("mod.ts", ROOT).href,
  "@rpcnet/cluster/sim": new URL("src/membership/sim/mod.ts", ROOT).href,
  "@rpcnet/cluster/cli": new URL("src/cli/main.ts", ROOT).href,
};
const RUN_TIMEOUT_MS = 60_000;

/** One program assembled from README blocks. */
export interface ReadmeProgram {
  /** 1-based line of its first block's opening fence. */
  line: number;
  /** Whether its first block is marked `// run`. */
  run: boolean;
  /** Source, the package name rewritten. */
  source: string;
}

/** Splits markdown into programs by the `// run` / `// continued` convention. */
export function readmePrograms(markdown: string): ReadmeProgram[] {
  const lines = markdown.split("\n");
  const programs: ReadmeProgram[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i].match(/^```(\S*)(.*)$/);
    if (!fence) continue;
    let end = i + 1;
    while (end < lines.length && !lines[end].startsWith("```")) end++;
    const lang = fence[1];
    const body = lines.slice(i + 1, end);
    if (lang === "ts" || lang === "typescript") {
      if (fence[2].trim() !== "") {
        throw new Error(`README.md:${i + 1}: a ts block with attributes ("${fence[2].trim()}")`);
      }
      const first = body[0]?.trim() ?? "";
      const source = rewrite(body.join("\n"));
      if (first === "// continued") {
        const prev = programs.at(-1);
        if (!prev) throw new Error(`README.md:${i + 1}: "// continued" with no block before it`);
        prev.source += "\n" + source;
      } else {
        programs.push({ line: i + 1, run: first === "// run", source });
      }
    }
    i = end;
  }
  return programs;
}

function rewrite(source: string): string {
  return source.replace(
    /(from\s+)"(@rpcnet\/cluster(?:\/[a-z]+)?)"/g,
    (_all, from: string, name: string) => {
      const target = ENTRY_POINTS[name];
      if (!target) throw new Error(`unknown entry point ${name}`);
      return `${from}"${target}"`;
    },
  );
}

const programs = readmePrograms(await Deno.readTextFile(README));
const dir = await Deno.makeTempDir({ prefix: "rpcnet-readme-" });
const files = await Promise.all(programs.map(async (p) => {
  const path = `${dir}/readme_line_${p.line}.ts`;
  await Deno.writeTextFile(path, p.source + "\n");
  return path;
}));

async function deno(args: string[], timeoutMs: number): Promise<Deno.CommandOutput> {
  return await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
}

Deno.test("readme: the extractor follows the run / continued convention", () => {
  const md = [
    "```ts",
    "// run",
    'import { Node } from "@rpcnet/cluster";',
    "```",
    "text",
    "```ts",
    "// continued",
    "const x = 1;",
    "```",
    "```sh",
    "echo not ts",
    "```",
    "```ts",
    "const y = 2;",
    "```",
  ].join("\n");
  const got = readmePrograms(md);
  assert.equal(got.length, 2);
  assert.equal(got[0].run, true);
  assert.ok(got[0].source.includes(ENTRY_POINTS["@rpcnet/cluster"]));
  assert.ok(got[0].source.includes("const x = 1;"));
  assert.equal(got[1].run, false);
  assert.equal(got[1].line, 13);
  assert.throws(() => readmePrograms("```ts ignore\nx\n```"), /attributes/);
});

Deno.test("readme: has ts blocks, and some run", () => {
  assert.ok(programs.length >= 6, `only ${programs.length} ts programs in README.md`);
  assert.ok(programs.filter((p) => p.run).length >= 3);
});

Deno.test("readme: every ts block type-checks", async () => {
  const out = await deno(["check", "--quiet", "--config", CONFIG, ...files], 300_000);
  assert.ok(
    out.success,
    `deno check of README blocks failed (files in ${dir}):\n` +
      new TextDecoder().decode(out.stderr),
  );
});

for (const [i, p] of programs.entries()) {
  if (!p.run) continue;
  Deno.test(`readme: the block at README.md:${p.line} runs`, async () => {
    const out = await deno(["run", "-A", "--config", CONFIG, files[i]], RUN_TIMEOUT_MS);
    assert.ok(
      out.success,
      `README.md:${p.line} exited ${out.code}:\n${new TextDecoder().decode(out.stdout)}\n` +
        new TextDecoder().decode(out.stderr),
    );
  });
}

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});
