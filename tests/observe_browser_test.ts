/**
 * The status page in a real headless browser (Debian's chromium driven by playwright-core): a
 * 3-node cluster (this process's observed node + two worker processes) is listed, and a worker
 * killed with SIGKILL turns `dead` on the page within the failure-detection bound.
 *
 * Set RPCNET_SCREENSHOT=docs/status-page.png to also write desktop and phone screenshots.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { createDevCa, failureDetectionBoundMs, Node, resolveConfig, silentLogger } from "../mod.ts";
import { WorkerProcess, writeCaFile } from "../examples/worker_process.ts";
import { sleep, waitFor } from "./_support/wait.ts";

const CHROMIUM = Deno.env.get("RPCNET_CHROMIUM") ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

Deno.test({
  name:
    "status page: lists every member of a 3-node cluster; a kill -9'd worker turns dead within the detection bound",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (.ci/run does)`);
  }
  const ca = await createDevCa();
  const caFile = await writeCaFile(ca);
  const profileDir = await Deno.makeTempDir({ prefix: "rpcnet-chromium-" });
  const node = await Node.start({
    id: "observer",
    profile: "LOCAL",
    tags: { role: "director", zone: "eu-1" },
    devCa: ca,
    logger: silentLogger,
    http: { port: 0, statusIntervalMs: 250 },
  });
  const workers: WorkerProcess[] = [];
  let traffic = true;
  let load: Promise<void> | undefined;
  const browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 720 },
  });
  try {
    for (const [id, zone] of [["worker-1", "eu-1"], ["worker-2", "eu-2"]]) {
      workers.push(
        await WorkerProcess.spawn({
          id,
          seeds: [node.gossipAddr],
          caFile,
          tags: `role=worker,zone=${zone}`,
          delayMs: 2,
        }),
      );
    }
    await waitFor(() => node.nodes.alive().length === 3, "3 members alive");
    load = Promise.all(Array.from({ length: 4 }, async () => {
      while (traffic) {
        await node.client.callWorker("compute", 7, { filter: "role=worker", idempotent: true })
          .catch(() => {});
        await sleep(5);
      }
    })).then(() => {});

    const page = browser.pages()[0] ?? await browser.newPage();
    await page.goto(`${node.observer!.url}/`);
    for (const id of ["observer", "worker-1", "worker-2"]) {
      await page.waitForSelector(`#members tr[data-id="${id}"][data-state="alive"]`, {
        timeout: 10_000,
      });
    }
    assert.equal(await page.locator("#members tbody tr").count(), 3);
    await page.waitForSelector(`#workers tr[data-worker="worker-1"]`, { timeout: 10_000 });
    assert.match(await page.locator("#conn").innerText(), /live/);

    const shot = Deno.env.get("RPCNET_SCREENSHOT");
    if (shot) {
      // Shown as the README's picture: every member alive and both workers taking traffic.
      for (const id of ["worker-1", "worker-2"]) {
        const cell = `#workers tr[data-worker="${id}"] td:nth-child(2)`;
        await page.waitForFunction(
          `Number(document.querySelector('${cell}')?.textContent ?? 0) > 0`,
          undefined,
          { timeout: 10_000 },
        );
      }
      await page.screenshot({ path: shot, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await sleep(600);
      await page.screenshot({ path: shot.replace(/\.png$/, "-phone.png"), fullPage: true });
      await page.setViewportSize({ width: 1100, height: 720 });
    }

    const bound = failureDetectionBoundMs(resolveConfig({ profile: "LOCAL" }), 3);
    const killedAt = Date.now();
    await workers[1].kill();
    await page.waitForSelector(`#members tr[data-id="worker-2"][data-state="dead"]`, {
      timeout: bound,
    });
    const tookMs = Date.now() - killedAt;
    console.log(`worker-2 shown dead after ${tookMs} ms (bound ${Math.round(bound)} ms)`);
    assert.ok(tookMs <= bound);
    assert.equal(
      await page.locator(`#members tr[data-id="worker-2"] .state`).innerText(),
      "dead",
    );
    assert.equal(
      await page.locator(`#members tr[data-id="worker-1"][data-state="alive"]`).count(),
      1,
    );
  } finally {
    traffic = false;
    await load;
    await browser.close().catch(() => {});
    for (const w of workers) await w.kill();
    await node.stop();
    await Deno.remove(profileDir, { recursive: true }).catch(() => {});
    await Deno.remove(caFile).catch(() => {});
  }
});
