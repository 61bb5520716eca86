/**
 * The live status page: one self-contained HTML document (no external scripts, styles or
 * fonts) that subscribes to `/status/events` (server-sent events; `EventSource` reconnects on
 * its own) and renders the member table and per-worker traffic. Rates (calls/s, mean latency,
 * errors/s) are computed in the page from the difference of two snapshots. Narrow screens get
 * one card per row instead of a wide table.
 *
 * @module
 */

/** The HTML of the status page. */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rpcnet status</title>
<style>
  :root { color-scheme: light dark; --alive:#1a7f37; --suspect:#b35900; --dead:#cf222e; --left:#6e7781;
    --bg:#fff; --fg:#1f2328; --mute:#656d76; --line:#d0d7de; --card:#f6f8fa; }
  @media (prefers-color-scheme: dark) { :root { --bg:#0d1117; --fg:#e6edf3; --mute:#8d96a0; --line:#30363d; --card:#161b22;
    --alive:#3fb950; --suspect:#d29922; --dead:#f85149; --left:#8d96a0; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
  header { padding: 12px 16px; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: baseline; }
  header h1 { font-size: 17px; margin: 0; }
  .mute { color: var(--mute); }
  main { padding: 8px 16px 24px; max-width: 1200px; }
  h2 { font-size: 15px; margin: 18px 0 6px; }
  .summary { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 10px; }
  .pill { border: 1px solid var(--line); border-radius: 999px; padding: 2px 10px; background: var(--card); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--mute); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code { font: 12px/1.3 ui-monospace, SFMono-Regular, Menlo, monospace; }
  .state { display: inline-block; min-width: 64px; text-align: center; padding: 1px 8px; border-radius: 999px; color: #fff; font-weight: 600; font-size: 12px; }
  .state.alive { background: var(--alive); } .state.suspect { background: var(--suspect); }
  .state.dead { background: var(--dead); } .state.left { background: var(--left); }
  .tag { display: inline-block; margin: 1px 4px 1px 0; padding: 0 6px; border-radius: 4px; background: var(--card); border: 1px solid var(--line); }
  #conn { font-weight: 600; } #conn.live { color: var(--alive); } #conn.lost { color: var(--dead); }
  @media (max-width: 640px) {
    thead { display: none; }
    table, tbody, tr, td { display: block; width: 100%; }
    tr { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; padding: 4px 8px; background: var(--card); }
    td { border: 0; padding: 3px 0; display: flex; justify-content: space-between; gap: 12px; text-align: right; }
    td.num { text-align: right; }
    td::before { content: attr(data-label); color: var(--mute); font-size: 12px; text-align: left; flex: none; }
  }
</style>
</head>
<body>
<header>
  <h1>rpcnet</h1>
  <span>node <code id="self">…</code></span>
  <span id="ready" class="mute"></span>
  <span id="conn" class="mute">connecting…</span>
</header>
<main>
  <div class="summary" id="summary"></div>
  <h2>Members</h2>
  <table id="members"><thead><tr>
    <th>Id</th><th>State</th><th>Phi</th><th>Tags</th><th>RPC address</th><th>Gossip address</th><th>Inc.</th><th>Since</th>
  </tr></thead><tbody></tbody></table>
  <h2>Worker traffic <span class="mute">(this node's client)</span></h2>
  <table id="workers"><thead><tr>
    <th>Worker</th><th>Calls/s</th><th>Mean latency</th><th>Errors/s</th><th>In flight</th><th>Calls</th><th>Failures</th>
  </tr></thead><tbody></tbody></table>
  <h2>Served methods</h2>
  <table id="methods"><thead><tr>
    <th>Method</th><th>Calls/s</th><th>Mean latency</th><th>Errors</th><th>In flight</th><th>Calls</th>
  </tr></thead><tbody></tbody></table>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let prev = null;
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function cell(label, content, cls) {
  const td = el("td", { "data-label": label });
  if (cls) td.className = cls;
  if (content instanceof Node) td.append(content); else td.textContent = content;
  return td;
}
function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
}
function fill(id, rows) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const tr = el("tr"); tr.append(cell("", "none yet", "mute")); body.append(tr);
  }
}
function rate(now, before, key, dt) {
  if (!before || dt <= 0) return 0;
  return Math.max(0, (now[key] - before[key]) / dt);
}
function render(s) {
  $("self").textContent = s.id;
  $("ready").textContent = s.ready ? "ready" : "not ready";
  $("ready").style.color = s.ready ? "var(--alive)" : "var(--dead)";
  const counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of s.members) counts[m.state]++;
  $("summary").replaceChildren(
    ...Object.entries(counts).map(([k, v]) => { const p = el("span", { class: "pill" }); p.append(el("span", { class: "state " + k }, k), " " + v); return p; }),
    el("span", { class: "pill" }, "health score " + s.healthScore),
    el("span", { class: "pill" }, "connections " + s.server.connections),
  );
  fill("members", s.members.map((m) => {
    const tr = el("tr", { "data-id": m.id, "data-state": m.state });
    const tags = el("span");
    for (const [k, v] of Object.entries(m.tags)) tags.append(el("span", { class: "tag" }, k + "=" + v));
    tr.append(
      cell("Id", el("code", {}, m.id + (m.id === s.id ? " (this node)" : ""))),
      cell("State", el("span", { class: "state " + m.state }, m.state)),
      cell("Phi", m.phi ? m.phi.toFixed(2) : "–", "num"),
      cell("Tags", tags),
      cell("RPC address", el("code", {}, m.rpcAddr || "–")),
      cell("Gossip address", el("code", {}, m.gossipAddr)),
      cell("Inc.", String(m.incarnation), "num"),
      cell("Since", ago(s.time - m.stateChangedAt)),
    );
    return tr;
  }));
  const dt = prev ? (s.time - prev.time) / 1000 : 0;
  const pw = new Map((prev ? prev.workers : []).map((w) => [w.id, w]));
  fill("workers", s.workers.map((w) => {
    const b = pw.get(w.id);
    const dCalls = b ? w.calls - b.calls : 0;
    const lat = dCalls > 0 ? (w.totalMs - b.totalMs) / dCalls : (w.calls ? w.totalMs / w.calls : 0);
    const tr = el("tr", { "data-worker": w.id });
    tr.append(
      cell("Worker", el("code", {}, w.id)),
      cell("Calls/s", rate(w, b, "calls", dt).toFixed(1), "num"),
      cell("Mean latency", lat.toFixed(2) + " ms", "num"),
      cell("Errors/s", rate(w, b, "failures", dt).toFixed(1), "num"),
      cell("In flight", String(w.active), "num"),
      cell("Calls", String(w.calls), "num"),
      cell("Failures", String(w.failures), "num"),
    );
    return tr;
  }));
  const pm = new Map((prev ? prev.methods : []).map((m) => [m.method, m]));
  fill("methods", s.methods.map((m) => {
    const b = pm.get(m.method);
    const dCalls = b ? m.calls - b.calls : 0;
    const lat = dCalls > 0 ? 1000 * (m.seconds - b.seconds) / dCalls : (m.calls ? 1000 * m.seconds / m.calls : 0);
    const tr = el("tr");
    tr.append(
      cell("Method", el("code", {}, m.method)),
      cell("Calls/s", rate(m, b, "calls", dt).toFixed(1), "num"),
      cell("Mean latency", lat.toFixed(2) + " ms", "num"),
      cell("Errors", String(m.errors), "num"),
      cell("In flight", String(m.inFlight), "num"),
      cell("Calls", String(m.calls), "num"),
    );
    return tr;
  }));
  prev = s;
}
function connect() {
  const es = new EventSource("status/events");
  es.onmessage = (e) => { $("conn").textContent = "live"; $("conn").className = "live"; render(JSON.parse(e.data)); };
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "lost"; };
}
connect();
</script>
</body>
</html>
`;
