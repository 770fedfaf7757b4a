// graphkeep's dashboard: a thin view over the REST API. Every figure comes
// from a route any client can call; every button calls one. The token the
// user signs in with stays in this tab's session storage and goes out as a
// bearer header, never in a URL or a cookie.
"use strict";

const TOKEN_KEY = "graphkeep-token";
const REFRESH_MS = 5000;

const session = { role: "", tokens: false };
let pageTimers = [];

// ---- DOM helpers: every text goes in as text, never as markup ----

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  addKids(el, kids);
  return el;
}

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  addKids(el, kids);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") {
      el.textContent = v;
      if (oneToken(el, String(v))) el.classList.add("tok");
    }
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

// oneToken: text that must not break across lines (an id, a size, a time:
// "20261127T150405Z-k3f7qa" would break after its hyphen). In a table cell
// any token (the table scrolls in its own box); elsewhere short ones, so a
// long URL may still break rather than push the page sideways on a phone.
function oneToken(el, text) {
  const t = text.trim();
  if (!t || /\s/.test(t.replace(/\u00a0/g, "x"))) return false;
  return el.tagName === "TD" || t.length <= 40;
}

function append(el, ...kids) {
  addKids(el, kids);
}

function addKids(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
}

function replace(el, ...kids) {
  el.replaceChildren();
  addKids(el, kids);
}

// ---- formatting: sizes in human units, times in the browser's zone ----

function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + NBSP + units[i];
}

// A number and its unit never part at a line's end.
const NBSP = "\u00a0";

function duration(seconds) {
  if (seconds === undefined || seconds === null) return "–";
  const s = Math.max(0, Number(seconds));
  if (s < 1) return (s * 1000).toFixed(0) + NBSP + "ms";
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + NBSP + "s";
  if (s < 3600) return Math.round(s / 60) + NBSP + "min";
  if (s < 172800) return (s / 3600).toFixed(1) + NBSP + "h";
  return (s / 86400).toFixed(1) + NBSP + "days";
}

function ago(seconds) {
  return seconds === undefined || seconds === null ? "never" : duration(seconds) + " ago";
}

function when(iso) {
  if (!iso || iso.startsWith("0001-")) return "never";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function count(n) {
  return n === undefined || n === null ? "–" : Number(n).toLocaleString();
}

function badge(text, tone) {
  return h("span", { class: "badge b-" + tone, text });
}

function statusBadge(status) {
  const tone = { HEALTHY: "ok", DEGRADED: "warn", CRITICAL: "bad", UNREACHABLE: "bad", UNKNOWN: "muted" }[status] || "muted";
  return badge(status || "UNKNOWN", tone);
}

function sourceName(source) {
  return { postgres: "PostgreSQL", "postgres+files": "PostgreSQL and files", files: "files" }[source] || "–";
}

function snapshotBadges(s) {
  const out = [];
  if (s.flagged) out.push(badge("flagged", "bad"));
  if (s.mid_ingestion) out.push(badge("mid-ingestion", "warn"));
  if (s.state === "partial") {
    const kinds = (s.missing || []).map((m) => m.kind.replace("_", " ")).join(", ");
    out.push(h("span", { class: "badge b-warn", title: `the workspace keeps its ${kinds} store elsewhere: not in this snapshot` }, "partial"));
  } else if (s.resumable) {
    const r = (s.consistency && s.consistency.resume) || {};
    const n = Object.values(r.counts || {}).reduce((a, b) => a + b, 0);
    out.push(h("span", { class: "badge b-ok", title: `LightRAG processes ${n} document(s) again when it starts on this snapshot` }, "resumable"));
  } else if (!s.flagged && !s.mid_ingestion) out.push(badge(s.consistency && s.consistency.consistent ? "consistent" : "good", "ok"));
  return out;
}

function table(headers, rows, empty) {
  if (!rows.length) return h("div", { class: "empty", text: empty });
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, headers.map((c) => h("th", { class: c.endsWith("#") ? "num" : "" , text: c.replace(/#$/, "") })))),
      h("tbody", {}, rows)));
}

function errorBox(err) {
  return h("div", { class: "error", role: "alert", text: err.message || String(err) });
}

// ---- the API ----

class APIError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new APIError(0, "unreachable", "The graphkeep server did not answer: is it running?");
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (res.status === 401) {
    showSignIn(token ? "That token was not accepted: sign in again." : "");
    throw new APIError(401, "unauthorized", "Sign in first.");
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new APIError(res.status, e.code || "error", e.message || res.status + " " + res.statusText, data);
  }
  return data;
}

const isAdmin = () => session.role === "admin";
// A backup token adds (backs up, checkpoints, verifies) and never takes away.
const canBackup = () => session.role === "admin" || session.role === "backup";

// ---- jobs: start one, then watch it to its end ----

async function startJob(method, path, body, box, onDone) {
  replace(box, h("p", { class: "muted", text: "Starting…" }));
  let job;
  try {
    job = await api(method, path, body);
  } catch (e) {
    const failed = e.body && e.body.job;
    replace(box, errorBox(e), failed ? jobResult(failed) : null);
    return;
  }
  watchJob(job.id, box, onDone);
}

function watchJob(id, box, onDone) {
  const tick = async () => {
    let job;
    try {
      job = await api("GET", "/jobs/" + encodeURIComponent(id));
    } catch (e) {
      replace(box, errorBox(e));
      return;
    }
    replace(box, jobView(job));
    if (job.state === "queued" || job.state === "running") {
      const t = setTimeout(tick, 500);
      pageTimers.push(() => clearTimeout(t));
    } else if (onDone) {
      onDone(job);
    }
  };
  tick();
}

function jobView(job) {
  const p = job.progress || {};
  const running = job.state === "running" || job.state === "queued";
  const blocked = job.state === "failed" && job.result && job.result.plan;
  const tone = blocked ? "warn" : { succeeded: "ok", failed: "bad", canceled: "warn", running: "muted", queued: "muted" }[job.state] || "muted";
  return h("div", { class: "card job", "data-job": job.id, "data-state": job.state },
    h("div", {}, h("strong", { text: job.kind + " " + (job.target || "") }), " ", badge(blocked ? "blocked" : job.state, tone),
      " ", h("span", { class: "muted", text: job.id })),
    running && p.total_bytes > 0 ? h("progress", { max: p.total_bytes, value: p.bytes }) : null,
    h("div", { class: "muted" },
      p.total_bytes ? `${bytes(p.bytes)} of ${bytes(p.total_bytes)}` : "",
      p.total_files ? ` · ${p.files} of ${p.total_files} files` : "",
      p.bytes_per_second ? ` · ${bytes(p.bytes_per_second)}/s` : "",
      running && p.eta_seconds !== undefined ? ` · ${duration(p.eta_seconds)} left` : ""),
    running && isAdmin() ? h("button", { class: "plain", type: "button", onclick: () => cancelJob(job.id) }, "Cancel") : null,
    job.error ? h("div", { class: "error", role: "alert", text: job.error.message }) : null,
    jobResult(job));
}

async function cancelJob(id) {
  try { await api("DELETE", "/jobs/" + encodeURIComponent(id)); } catch (e) { alert(e.message); }
}

function jobResult(job) {
  const r = job.result;
  if (!r) return null;
  if (job.kind === "backup" && r.graph && r.id) {
    return h("p", { class: "notice" }, "New snapshot ",
      h("a", { href: `#/graphs/${r.graph}/snapshots/${r.id}`, text: r.id }),
      ` of ${r.graph}: ${r.files} files, ${bytes(r.size_bytes)}, stored ${bytes(r.stored_bytes)}`);
  }
  if (r.plan) return planView(r.plan);
  return h("details", {}, h("summary", { text: "Result" }), h("pre", { text: JSON.stringify(r, null, 2) }));
}

function planView(plan) {
  const loss = plan.data_loss || {};
  return h("div", { class: "card plan" },
    h("h3", { text: "Failover plan" }),
    h("dl", { class: "kv" },
      h("dt", { text: "From" }), h("dd", { text: plan.from }),
      h("dt", { text: "To" }), h("dd", { text: `${plan.to} (target ${plan.target})` }),
      h("dt", { text: "Primary reachable" }), h("dd", { text: plan.primary_reachable ? "yes" : "no" }),
      h("dt", { text: "Data that would be lost" }),
      h("dd", { class: "loss", text: loss.lag_snapshots ? `${loss.lag_snapshots} snapshots (${bytes(loss.lag_bytes)}), up to ${duration(loss.rpo_seconds)} of backups since ${when(loss.oldest_missing)}` : "none: the target holds every snapshot" })),
    plan.blockers && plan.blockers.length ? [h("h4", { text: "Blockers" }), h("ul", { class: "blockers" }, plan.blockers.map((b) => h("li", { text: b })))] : null,
    h("h4", { text: "Steps" }),
    h("ol", {}, (plan.steps || []).map((s) => h("li", { text: s }))));
}

// ---- pages ----

const routes = [
  [/^\/$/, overviewPage],
  [/^\/graphs$/, graphsPage],
  [/^\/graphs\/([\w-]+)$/, graphPage],
  [/^\/graphs\/([\w-]+)\/snapshots\/([\w-]+)$/, snapshotPage],
  [/^\/jobs$/, jobsPage],
  [/^\/actions$/, actionsPage],
];

// live runs fill(el) now and every period, for the parts of a page that
// change; forms are built once, outside them, so typing is never lost.
function live(el, fill, period) {
  let stopped = false;
  const run = async () => {
    try {
      await fill(el);
    } catch (e) {
      if (e.status !== 401) replace(el, errorBox(e));
    }
    document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString();
    if (!stopped) {
      const t = setTimeout(run, period || REFRESH_MS);
      pageTimers.push(() => clearTimeout(t));
    }
  };
  pageTimers.push(() => { stopped = true; });
  run();
  return el;
}

async function overviewPage(main) {
  append(main, h("h1", { text: "Overview" }), live(h("div"), async (el) => {
    const [health, jobs] = await Promise.all([api("GET", "/recovery/health"), api("GET", "/jobs")]);
    const running = jobs.filter((j) => j.state === "running" || j.state === "queued");
    const cp = health.checkpoint;
    const attention = (g) => g.stale || g.latest_flagged || g.latest_mid_ingestion || !g.last_good;
    const graphs = [...health.graphs].sort((a, b) => attention(b) - attention(a) || a.graph.localeCompare(b.graph));
    replace(el,
      h("section", { class: "banner s-" + health.status, id: "overall", "aria-live": "polite" },
        h("strong", { text: health.status }),
        health.reasons.length ? h("ul", {}, health.reasons.map((r) => h("li", { text: r }))) : h("div", { text: "Every graph is protected." })),
      h("div", { class: "grid" },
        h("div", { class: "card" }, h("h2", { text: "Primary" }),
          h("dl", { class: "kv" }, h("dt", { text: "Storage" }), h("dd", { text: health.primary.url }),
            h("dt", { text: "Reachable" }), h("dd", {}, health.primary.reachable ? badge("yes", "ok") : badge("no", "bad")),
            health.primary.error ? [h("dt", { text: "Error" }), h("dd", { text: health.primary.error })] : null)),
        h("div", { class: "card", id: "checkpoint" }, h("h2", { text: "Latest checkpoint" }),
          cp ? h("dl", { class: "kv" },
            h("dt", { text: "Id" }), h("dd", { text: cp.id }),
            h("dt", { text: "Age" }), h("dd", { text: ago(cp.age_seconds) }),
            h("dt", { text: "Restorable at" }), h("dd", { text: cp.restorable_at && cp.restorable_at.length ? cp.restorable_at.join(", ") : "not validated anywhere yet" }),
            h("dt", { text: "Validated" }), h("dd", { text: when(cp.validated_at) }))
            : h("p", { class: "muted", text: "No checkpoint yet. Create one under Actions." })),
        h("div", { class: "card" }, h("h2", { text: "Jobs" }),
          running.length ? h("p", {}, h("a", { href: "#/jobs", text: `${running.length} running or queued` })) : h("p", { class: "muted", text: "Nothing running." }))),
      h("h2", { text: "Targets" }),
      // Four narrow columns, and a target's error on a line of its own
      // across them: the table fits a phone without scrolling sideways.
      table(["Target", "Health", "Behind#", "RPO#"], health.targets.map((t) => {
        const known = !(t.lag_snapshots === null || t.lag_snapshots === undefined || t.lag_snapshots < 0);
        const row = h("tr", { "data-target": t.id }, h("td", { text: t.id }), h("td", {}, statusBadge(t.status)),
          known ? [h("td", { class: "num" }, h("span", { class: "tok", text: `${count(t.lag_snapshots)} snap.` }), " ", h("span", { class: "tok", text: bytes(t.lag_bytes) })),
            h("td", { class: "num", text: duration(t.rpo_seconds) })] : h("td", { class: "num muted", colspan: 2, text: "unknown" }));
        return t.error ? [row, h("tr", { class: "detail", "data-target-error": t.id }, h("td", { colspan: 4, class: "muted wrap-anywhere", text: t.error }))] : row;
      }), "No replication targets: the primary is the only copy."),
      h("h2", { text: "Graphs" }),
      table(["Graph", "Last good snapshot", "Schedule", "State"], graphs.map((g) =>
        h("tr", { class: attention(g) ? "attention" : "", "data-graph": g.graph },
          h("td", {}, h("a", { href: "#/graphs/" + g.graph, text: g.graph })),
          h("td", { text: g.last_good ? ago(g.last_good_age_seconds) : "none" }),
          h("td", { text: g.schedule_seconds ? "every " + duration(g.schedule_seconds) : "–" }),
          h("td", {}, g.stale ? badge("stale", "warn") : null, g.latest_flagged ? badge("flagged", "bad") : null,
            g.latest_mid_ingestion ? badge("mid-ingestion", "warn") : null,
            !attention(g) ? badge("protected", "ok") : null))), "No graphs yet: point graphkeep at LightRAG's working directory."));
  }));
}

async function graphsPage(main) {
  append(main, h("h1", { text: "Graphs" }), live(h("div"), async (el) => {
    const [graphs, health, stats] = await Promise.all([api("GET", "/graphs"), api("GET", "/recovery/health"), api("GET", "/backup/stats")]);
    const byName = Object.fromEntries(health.graphs.map((g) => [g.graph, g]));
    const perGraph = Object.fromEntries((stats.repository.graphs || []).map((g) => [g.graph, g]));
    const repo = stats.repository;
    replace(el,
      h("div", { class: "card" }, h("dl", { class: "kv" },
        h("dt", { text: "Graphs' data, every snapshot" }), h("dd", { text: bytes(repo.logical_bytes) }),
        h("dt", { text: "Unique after deduplication" }), h("dd", { text: bytes(repo.unique_bytes) }),
        repo.stored_bytes !== undefined ? [h("dt", { text: "Stored" }), h("dd", { text: bytes(repo.stored_bytes) })] : null,
        h("dt", { text: "Deduplication" }), h("dd", { text: repo.dedup_ratio ? repo.dedup_ratio.toFixed(1) + "×" : "–" }))),
      table(["Graph", "Snapshots#", "Last good", "Schedule", "Size#", "Stored#", "Dedup#", "Added per backup#", "Nodes#", "Edges#", "Docs#"], graphs.map((g) => {
        const hg = byName[g.id] || {};
        const st = perGraph[g.id] || {};
        const l = (g.latest && g.latest.lightrag) || {};
        return h("tr", { class: hg.stale ? "attention" : "", "data-graph": g.id },
          h("td", {}, h("a", { href: "#/graphs/" + g.id, text: g.id })),
          h("td", { class: "num", text: count(g.snapshots) }),
          h("td", {}, hg.last_good ? ago(hg.last_good_age_seconds) : "none", " ", hg.stale ? badge("stale", "warn") : null),
          h("td", { text: hg.schedule_seconds ? "every " + duration(hg.schedule_seconds) : "–" }),
          h("td", { class: "num", text: g.latest ? bytes(g.latest.size_bytes) : "–" }),
          h("td", { class: "num", text: bytes(st.stored_bytes) }),
          h("td", { class: "num", text: st.dedup_ratio ? st.dedup_ratio.toFixed(1) + "×" : "–" }),
          h("td", { class: "num", text: bytes(st.added_bytes_per_snapshot) }),
          h("td", { class: "num", text: count(l.nodes) }), h("td", { class: "num", text: count(l.edges) }), h("td", { class: "num", text: count(l.docs) }));
      }), "No graphs yet."));
  }));
}

const SERIES = [["nodes", "Nodes"], ["edges", "Edges"], ["docs", "Documents"], ["chunks", "Chunks"], ["vector_rows", "Vectors"]];

// countsChart draws each LightRAG count over the snapshots, one small
// chart each (their scales differ by orders of magnitude).
function countsChart(snaps) {
  const points = snaps.filter((s) => s.lightrag);
  if (points.length < 2) return h("p", { class: "muted", text: "The chart needs two snapshots." });
  const W = 320, H = 90, pad = 6;
  const t0 = new Date(points[0].time).getTime();
  const t1 = new Date(points[points.length - 1].time).getTime();
  return h("div", { class: "grid" }, SERIES.map(([key, label], i) => {
    const vals = points.map((s) => s.lightrag[key] || 0);
    const lo = Math.min(...vals), hi = Math.max(...vals);
    const x = (s) => pad + ((new Date(s.time).getTime() - t0) / Math.max(1, t1 - t0)) * (W - 2 * pad);
    const y = (v) => H - pad - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (H - 2 * pad);
    const line = points.map((s, j) => `${x(s).toFixed(1)},${y(vals[j]).toFixed(1)}`).join(" ");
    return h("figure", { class: "card" },
      h("figcaption", {}, h("strong", { text: label }), ` ${count(vals[vals.length - 1])}`, h("span", { class: "muted", text: ` (from ${count(vals[0])})` })),
      svg("svg", { class: "chart c" + i, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${label} over ${points.length} snapshots` },
        svg("polyline", { points: line, fill: "none", stroke: "currentColor", "stroke-width": 2 }),
        points.map((s, j) => svg("circle", { cx: x(s).toFixed(1), cy: y(vals[j]).toFixed(1), r: 2.5, fill: "currentColor" },
          svg("title", {}, `${when(s.time)}: ${count(vals[j])}`)))));
  }));
}

async function graphPage(main, graph) {
  const jobBox = h("div", { id: "job" });
  const list = h("div");
  append(main, h("h1", {}, h("a", { href: "#/graphs", text: "Graphs" }), " / ", graph),
    canBackup() ? h("p", {}, h("button", { class: "primary", type: "button", id: "backup-now",
      onclick: () => startJob("POST", `/backup/graphs/${graph}/snapshots`, undefined, jobBox, () => list.dispatchEvent(new Event("refresh"))) }, "Back up now")) : null,
    jobBox, list);
  const fill = async (el) => {
    const [g, snaps] = await Promise.all([api("GET", "/graphs/" + graph), api("GET", `/backup/graphs/${graph}/snapshots`)]);
    const newest = [...snaps].reverse();
    replace(el,
      h("div", { class: "card" }, h("dl", { class: "kv" },
        h("dt", { text: "Source" }), h("dd", { text: sourceName(g.source) }),
        g.postgres ? [h("dt", { text: "PostgreSQL" }), h("dd", { text: g.postgres })] : null,
        g.dir || !g.postgres ? [h("dt", { text: "Directory" }), h("dd", { text: g.dir || "–" })] : null,
        h("dt", { text: "Snapshots" }), h("dd", { text: count(g.snapshots) }),
        h("dt", { text: "Size (latest)" }), h("dd", { text: g.latest ? bytes(g.latest.size_bytes) : "–" }))),
      h("h2", { text: "LightRAG counts over its snapshots" }), countsChart(snaps),
      h("h2", { text: "Snapshots" }),
      table(["Time", "Snapshot", "Size#", "Files#", "Nodes#", "Edges#", "State"], newest.map((s) => {
        const l = s.lightrag || {};
        return h("tr", { "data-snapshot": s.id },
          h("td", { text: when(s.time) }), h("td", {}, h("a", { href: `#/graphs/${graph}/snapshots/${s.id}`, text: s.id })),
          h("td", { class: "num", text: bytes(s.size_bytes) }), h("td", { class: "num", text: s.tables ? `${count(s.files)} + ${count(s.tables)}\u00a0tables` : count(s.files) }),
          h("td", { class: "num", text: count(l.nodes) }), h("td", { class: "num", text: count(l.edges) }),
          h("td", {}, snapshotBadges(s)));
      }), "No snapshots yet." + (canBackup() ? " Back up now to take the first." : "")));
  };
  list.addEventListener("refresh", () => fill(list).catch((e) => replace(list, errorBox(e))));
  live(list, fill);
}

async function snapshotPage(main, graph, id) {
  const m = await api("GET", `/backup/graphs/${graph}/snapshots/${id}`);
  const s = m.snapshot, t = m.totals, l = s.lightrag || {};
  const c = s.consistency;
  append(main,
    h("h1", {}, h("a", { href: "#/graphs/" + graph, text: graph }), " / ", s.id),
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("dl", { class: "kv" },
        h("dt", { text: "Taken" }), h("dd", { text: when(s.time) }),
        h("dt", { text: "State" }), h("dd", {}, snapshotBadges(s)),
        h("dt", { text: "Files" }), h("dd", { text: count(t.files) }),
        t.tables ? [h("dt", { text: "Tables" }), h("dd", { text: count(t.tables) })] : null,
        h("dt", { text: "Size" }), h("dd", { text: bytes(t.size_bytes) }),
        h("dt", { text: "New data" }), h("dd", { text: `${bytes(t.added_bytes)} (stored ${bytes(t.stored_bytes)})` }),
        h("dt", { text: "Host" }), h("dd", { text: m.host || "–" }),
        h("dt", { text: "Source" }), h("dd", { text: m.postgres ? `PostgreSQL: workspace "${m.postgres.workspace}" of ${m.postgres.database}${s.source === "postgres+files" ? ", and files" : ""}` : "files" }))),
      (m.stores || []).length ? h("div", { class: "card" }, h("dl", { class: "kv" }, m.stores.map((st) => [h("dt", { text: st.kind.replace("_", " ") + " store" }),
        h("dd", {}, st.in ? `${st.in === "postgres" ? "PostgreSQL" : "files"}${st.detail ? ": " + st.detail : ""}` : badge("not in the snapshot", "warn"), st.in ? null : h("div", { class: "muted", text: st.detail }))]))) : null,
      h("div", { class: "card" }, h("dl", { class: "kv" }, SERIES.map(([k, label]) => [h("dt", { text: label }), h("dd", { text: count(l[k]) })])))),
    c ? [h("h2", { text: "Consistency" }),
      h("p", {}, c.consistent ? "LightRAG's stores agreed when it was cut." :
        s.state === "partial" ? `The workspace keeps a store elsewhere, which this snapshot does not hold (see the stores above); the stores it holds agree${c.invariants && c.invariants.every((i) => i.holds) ? "" : " only in part"}.` :
        c.resumable ? "Cut while LightRAG was ingesting, in a state it resumes from: its graph, vector and chunk stores agree, and when it starts on a restore of this snapshot it processes these documents again." :
        `Cut while LightRAG's stores disagreed${c.reason ? ": " + c.reason : ""}.`),
      c.resumable && c.resume ? table(["Document", "Status"], (c.resume.docs || []).map((d) => h("tr", {}, h("td", { text: d.id }), h("td", { text: d.status }))), "No documents named.") : null,
      table(["Invariant", "Left", "Right", "Counts", "Holds"], (c.invariants || []).map((i) =>
        h("tr", {}, h("td", { text: i.name }), h("td", { text: i.left }), h("td", { text: i.right }),
          h("td", { text: `${count(i.left_count)} / ${count(i.right_count)}` }), h("td", {}, i.holds ? badge("yes", "ok") : badge("no", "bad")))), "No invariants recorded.")] : null,
    h("h2", { text: m.postgres ? "Tables and files" : "Files", id: "files" }),
    table(["Path", "Size#", "Chunks#"], (m.files || []).map((f) => {
      const data = f.type === "file" || f.type === "table";
      return h("tr", {}, h("td", { text: f.path + (f.type !== "file" ? ` (${f.type})` : "") }), h("td", { class: "num", text: data ? bytes(f.size) : "" }),
        h("td", { class: "num", text: data ? count(f.chunks) : "" }));
    }), "No files."),
    canBackup() ? snapshotActions(graph, s.id, !!m.postgres) : null);
}

function snapshotActions(graph, id, postgres) {
  const verifyBox = h("div"), restoreBox = h("div");
  const readData = h("input", { type: "checkbox", id: "read-data" });
  const dryRun = h("input", { type: "checkbox", id: "restore-dry-run" });
  const to = h("input", { type: "text", id: "restore-to", placeholder: graph + (postgres ? "_restored" : "-restored"), autocomplete: "off" });
  const body = () => {
    if (!postgres) return to.value ? { to: to.value } : {};
    const b = { dry_run: dryRun.checked };
    if (to.value) b.to_workspace = to.value;
    return b;
  };
  const toLabel = postgres ?
    "Restore into workspace (empty: the graph's own, replaced in one transaction, its current state kept as an undo snapshot; another name: a clone in the same database)" :
    "Restore to (empty: the graph's own directory, the old one kept as an undo copy; a new directory of the graphs root becomes a graph; to look at a snapshot, restore into the server's restore root)";
  const confirm = h("input", { type: "text", id: "restore-confirm", autocomplete: "off" });
  const restore = h("button", { class: "danger", type: "submit", id: "restore", disabled: true }, "Restore");
  confirm.addEventListener("input", () => { restore.disabled = confirm.value !== graph; });
  return h("section", {},
    h("h2", { text: "Actions" }),
    h("form", { class: "card action", onsubmit: (e) => { e.preventDefault(); startJob("POST", `/backup/graphs/${graph}/snapshots/${id}/verify`, { read_data: readData.checked }, verifyBox); } },
      h("label", { class: "check" }, readData, "read every chunk's data"),
      h("button", { class: "primary", type: "submit", id: "verify" }, "Verify")),
    verifyBox,
    !isAdmin() ? null : h("form", { class: "card action", onsubmit: (e) => { e.preventDefault(); startJob("POST", `/backup/graphs/${graph}/snapshots/${id}/restore`, body(), restoreBox); } },
      h("label", {}, toLabel, to),
      postgres ? h("label", { class: "check" }, dryRun, "dry run: only say per table what would be added, removed and changed") : null,
      h("label", {}, `Type ${graph} to confirm`, confirm),
      restore),
    restoreBox);
}

async function jobsPage(main) {
  append(main, h("h1", { text: "Jobs" }), live(h("div"), async (el) => {
    const jobs = await api("GET", "/jobs");
    const running = jobs.filter((j) => j.state === "running" || j.state === "queued");
    const done = jobs.filter((j) => !(j.state === "running" || j.state === "queued"));
    replace(el,
      h("h2", { text: "Running" }),
      running.length ? running.map(jobView) : h("div", { class: "empty", text: "Nothing running." }),
      h("h2", { text: "Finished" }),
      table(["Job", "Started", "Took", "State", "Outcome"], done.map((j) =>
        h("tr", { "data-job": j.id }, h("td", {}, h("strong", { text: `${j.kind} ${j.target || ""}` }), h("div", { class: "muted", text: j.id })),
          h("td", { text: when(j.started || j.created) }),
          h("td", { text: j.started && j.finished ? duration((new Date(j.finished) - new Date(j.started)) / 1000) : "–" }),
          h("td", {}, badge(j.state, j.state === "succeeded" ? "ok" : j.state === "failed" ? "bad" : "warn")),
          h("td", { text: j.error ? j.error.message : outcome(j) }))), "No finished jobs since this server started."));
  }, 1000));
}

// outcome says what a finished job did, in a line.
function outcome(j) {
  const r = j.result || {};
  const plural = (n, one, many) => `${count(n)} ${n === 1 ? one : (many || one + "s")}`;
  switch (j.kind) {
    case "backup":
      if (r.id) return `snapshot ${r.id}: ${r.tables ? plural(r.tables, "table") + (r.files ? " and " + plural(r.files, "file") : "") : plural(r.files, "file")}, ${bytes(r.size_bytes)}, ${bytes(r.stored_bytes)} stored`;
      break;
    case "restore":
      if (r.postgres && r.postgres.dry_run) return `dry run into ${r.dest}: ` + (r.postgres.diff || []).filter((d) => d.added || d.removed || d.changed)
        .map((d) => `${d.table} +${count(d.added)} −${count(d.removed)} ~${count(d.changed)}`).join(", ") + "; nothing was changed";
      if (r.postgres) return `restored ${r.snapshot.graph}/${r.snapshot.id} into ${r.dest} in one transaction: ${plural(r.postgres.rows, "row")} written` +
        (r.undo_snapshot ? `; the state it replaced is kept as snapshot ${r.undo_graph}/${r.undo_snapshot}` : "");
      if (r.snapshot) return `restored ${r.snapshot.graph}/${r.snapshot.id} into ${r.dest}: ${plural(r.files, "file")}, ${bytes(r.bytes)}` +
        (r.new_graph ? `; it is now graph ${r.new_graph}` : "") + (r.previous ? `; the old directory is kept at ${r.previous}` : "");
      break;
    case "verify":
      if (r.chunks !== undefined) return `${plural(r.snapshots, "snapshot")}, ${plural(r.chunks, "chunk")} checked` +
        (r.read_data ? `, ${bytes(r.bytes_read)} read` : "") +
        ((r.damaged || []).length ? `: ${plural(r.damaged.length, "chunk")} damaged` : ": all intact") +
        ((r.unsafe || []).length ? `, ${plural(r.unsafe.length, "unsafe entry", "unsafe entries")}` : "");
      break;
    case "cleanup": {
      const parts = [];
      if (r.forget) parts.push(`${plural(r.forget.removed, "snapshot")} forgotten`);
      if (r.prune) parts.push(`${plural(r.prune.deleted_chunks, "chunk")} deleted, ${plural(r.prune.compacted_packs || 0, "pack")} compacted`);
      if (parts.length) return parts.join("; ") + (r.forget && r.forget.dry_run ? " (dry run)" : "");
      break;
    }
    case "replicate":
      if (Array.isArray(r)) return r.length ? r.map((t) => `${t.target}: ${plural(t.snapshots_copied, "snapshot")}, ${bytes(t.bytes_copied)} copied`).join("; ") : "no targets";
      break;
    case "checkpoint":
      if (r.id) return `checkpoint ${r.id} of ${plural((r.snapshots || []).length, "graph")}`;
      break;
    case "validate":
      if (r.locations) {
        const at = r.locations.filter((l) => l.state === "restorable").map((l) => l.location);
        return at.length ? `restorable at ${at.join(", ")}` : "restorable nowhere";
      }
      break;
    case "failover":
      if (r.plan && r.switch) return `failed over: the primary is now ${r.plan.to}`;
      if (r.plan) return r.possible ? `plan: possible, ${r.plan.steps.length} steps` : `plan: not possible now (${plural(r.plan.blockers.length, "blocker")})`;
      if (r.already_done) return "already done before";
      break;
  }
  return j.state === "succeeded" ? "succeeded" : j.state;
}

async function actionsPage(main) {
  append(main, h("h1", { text: "Actions" }));
  if (!canBackup()) {
    append(main, h("div", { class: "notice", id: "read-only", text: "This token can read everything and change nothing: actions need a backup or admin token." }));
    return;
  }
  const [graphs, targets, checkpoints] = await Promise.all([api("GET", "/graphs"), api("GET", "/replication/targets"), api("GET", "/recovery/checkpoints")]);
  const options = (items, label) => items.map((it) => h("option", { value: it, text: label ? label(it) : it }));
  const cps = ["latest", ...checkpoints.map((c) => c.id).reverse()];

  const backupBox = h("div"), cpBox = h("div"), validateBox = h("div"), planBox = h("div"), runBox = h("div");
  const graphSel = h("select", { id: "backup-graph" }, options(graphs.map((g) => g.id)));
  const note = h("input", { type: "text", id: "checkpoint-note", placeholder: "nightly" });
  const cpSel = h("select", { id: "validate-checkpoint" }, options(cps));
  const cpRead = h("input", { type: "checkbox" });
  const foCp = h("select", { id: "failover-checkpoint" }, options(cps));
  const foTarget = h("select", { id: "failover-target" }, options(targets.map((t) => t.id)));
  const foRestore = h("input", { type: "checkbox", id: "failover-restore" });
  const foForce = h("input", { type: "checkbox", id: "failover-force" });
  const foConfirm = h("input", { type: "text", id: "failover-confirm", autocomplete: "off" });
  const foRun = h("button", { class: "danger", type: "button", id: "failover-run", disabled: true }, "Fail over");
  const confirmLabel = h("span", { text: "Type the target's id to confirm" });
  const loss = h("p", { id: "failover-loss", class: "muted", text: "Plan a failover first: running one needs its plan." });
  // The run needs a plan for the same checkpoint and target, and the
  // target's id typed: the plan says what data the run would lose.
  let planned = "";
  const choice = () => foCp.value + "/" + foTarget.value;
  const sync = () => { foRun.disabled = !foTarget.value || planned !== choice() || foConfirm.value !== foTarget.value; };
  foConfirm.addEventListener("input", sync);
  for (const el of [foTarget, foCp]) el.addEventListener("change", () => { planned = ""; replace(loss, "Plan a failover first: running one needs its plan."); sync(); });
  const onPlan = (job) => {
    const plan = job.result && job.result.plan;
    if (!plan) return;
    const l = plan.data_loss || {};
    planned = choice();
    replace(loss, h("strong", { text: l.lag_snapshots ? `Failing over to ${plan.target} loses ${l.lag_snapshots} snapshots (${bytes(l.lag_bytes)}), up to ${duration(l.rpo_seconds)} of backups.` : `Failing over to ${plan.target} loses no snapshot.` }),
      plan.blockers && plan.blockers.length ? " It has blockers: it runs only with “go ahead despite blockers”." : "");
    sync();
  };
  const failoverBody = (dry) => ({ target: foTarget.value, restore: foRestore.checked, dry_run: dry, force: foForce.checked });
  foRun.addEventListener("click", () => startJob("POST", `/recovery/checkpoints/${foCp.value}/failover`, failoverBody(false), runBox));

  append(main,
    h("h2", { text: "Back up now" }),
    graphs.length ? h("form", { class: "card action", onsubmit: (e) => { e.preventDefault(); startJob("POST", `/backup/graphs/${graphSel.value}/snapshots`, undefined, backupBox); } },
      h("label", {}, "Graph", graphSel), h("button", { class: "primary", type: "submit", id: "backup-submit" }, "Back up")) : h("div", { class: "empty", text: "No graphs to back up." }),
    backupBox,
    h("h2", { text: "Checkpoint" }),
    h("form", { class: "card action", onsubmit: (e) => { e.preventDefault(); startJob("POST", "/recovery/checkpoints", note.value ? { note: note.value } : {}, cpBox); } },
      h("label", {}, "Note", note), h("button", { class: "primary", type: "submit", id: "checkpoint-create" }, "Create checkpoint")),
    cpBox,
    h("form", { class: "card action", onsubmit: (e) => { e.preventDefault(); startJob("POST", `/recovery/checkpoints/${cpSel.value}/validate`, { read_data: cpRead.checked }, validateBox); } },
      h("label", {}, "Checkpoint", cpSel), h("label", { class: "check" }, cpRead, "read data"),
      h("button", { class: "primary", type: "submit", id: "checkpoint-validate" }, "Validate")),
    validateBox,
    h("h2", { text: "Failover" }),
    !isAdmin() ? h("div", { class: "notice", id: "failover-admin-only", text: "Failing over needs an admin token." }) :
    targets.length ? [
      h("form", { class: "card action", onsubmit: (e) => { e.preventDefault(); startJob("POST", `/recovery/checkpoints/${foCp.value}/failover`, failoverBody(true), planBox, onPlan); } },
        h("label", {}, "Checkpoint", foCp), h("label", {}, "Target to promote", foTarget),
        h("label", { class: "check" }, foRestore, "restore the graphs from it"),
        h("button", { class: "primary", type: "submit", id: "failover-plan" }, "Plan (dry run)")),
      planBox,
      h("div", { class: "card action" },
        h("p", { text: "Running the failover makes the target the primary." }), loss,
        h("label", { class: "check" }, foForce, "go ahead despite blockers (loses the data the plan names)"),
        h("label", {}, confirmLabel, foConfirm), foRun),
      runBox] : h("div", { class: "empty", text: "No replication targets: add one to be able to fail over." }));
}

// ---- sign-in and routing ----

function showSignIn(message) {
  stopPage();
  const main = document.getElementById("main");
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true, "aria-label": "Token" });
  replace(main, h("form", { class: "card signin", id: "signin", onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    if (location.hash && location.hash !== "#/") location.hash = "#/";
    await start();
  } },
  h("h1", { text: "Sign in" }),
  message ? h("div", { class: "error", role: "alert", text: message }) : null,
  h("p", { class: "muted", text: "Paste an admin or read token. It is kept in this tab only and sent to this server alone." }),
  h("label", {}, "Token", input),
  h("p", {}, h("button", { class: "primary", type: "submit", id: "signin-submit" }, "Sign in"))));
  document.getElementById("signout").hidden = true;
  document.getElementById("nav").hidden = true; // nothing to go to before signing in
  document.getElementById("who").textContent = "";
  input.focus();
}

function stopPage() {
  for (const stop of pageTimers) stop();
  pageTimers = [];
}

async function render() {
  stopPage();
  const path = location.hash.replace(/^#/, "") || "/";
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll("#nav a")) {
    const href = a.getAttribute("href").slice(1);
    a.classList.toggle("here", href === "/" ? path === "/" : path.startsWith(href));
  }
  replace(main);
  for (const [re, page] of routes) {
    const m = path.match(re);
    if (m) {
      try {
        await page(main, ...m.slice(1));
      } catch (e) {
        if (e.status !== 401) append(main, errorBox(e));
      }
      main.focus({ preventScroll: true });
      return;
    }
  }
  append(main, h("h1", { text: "Not found" }), h("p", {}, "No such page. ", h("a", { href: "#/", text: "Back to the overview" })));
}

async function start() {
  let s;
  try {
    s = await api("GET", "/session");
  } catch (e) {
    if (e.status !== 401) replace(document.getElementById("main"), errorBox(e));
    return;
  }
  if (s.tokens && !s.role) {
    showSignIn(sessionStorage.getItem(TOKEN_KEY) ? "That token was not accepted: check it and sign in again." : "");
    return;
  }
  session.role = s.role;
  session.tokens = s.tokens;
  document.getElementById("who").textContent = s.tokens ? `Signed in (${s.role})` : "Loopback, no sign-in";
  document.getElementById("signout").hidden = !s.tokens;
  document.getElementById("nav").hidden = false;
  await render();
}

document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  session.role = "";
  showSignIn("");
});
window.addEventListener("hashchange", () => { if (session.role) render(); });
start();
