// The console's pages: a hash router (#/segments, #/segments/KEY?destination=D,
// #/mappings, #/destinations, #/runs, #/runs/ID?destination=D, #/lookup) over
// the admin API. Each page renders into <main>, moves focus to its heading
// and cancels its refresh timers when the user leaves it.
import * as api from "./api.js";
import { h, errorBox, badge, table, facts, fmtTime, fmtAge, fmtDurationNS, num, busy } from "./dom.js";
import { membersChart } from "./chart.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const logoutButton = document.getElementById("logout");
const who = document.getElementById("who");
const announce = document.getElementById("announce");

// The token's role, as the API tells it: "admin", "writer" or "reader"
// ("" while unknown: write buttons are then shown and a 403 is reported).
let role = "";
// What the current page left running; stop() cancels it on navigation.
let timers = [];
let generation = 0; // bumped per render: late answers of a left page are dropped

const canWrite = () => role !== "reader";

function stopTimers() {
  for (const t of timers) clearTimeout(t);
  timers = [];
}

// later runs fn after ms unless the page was left meanwhile.
function later(ms, fn) {
  const g = generation;
  timers.push(setTimeout(() => { if (g === generation) fn(); }, ms));
}

function say(text) {
  announce.textContent = "";
  announce.textContent = text;
}

// page replaces <main>'s content with a titled page and focuses its
// heading, so keyboard and screen-reader users start at the new content.
function page(title, ...children) {
  document.title = `${title} · cohortsync console`;
  const h1 = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(h1, ...children);
  h1.focus();
  return h1;
}

// section is a region whose content is filled in when its call returns.
function section(title, level = "h2") {
  const body = h("div", {}, h("p", { class: "hint", role: "status" }, `Loading ${title.toLowerCase()}…`));
  const el = h("section", { "aria-label": title }, h(level, {}, title), body);
  return { el, body, fill: (...nodes) => body.replaceChildren(...nodes), fail: err => body.replaceChildren(errorBox(err)) };
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/segments";
  const [path, q] = raw.split("?");
  return { path, params: new URLSearchParams(q || "") };
}

function link(text, path, params) {
  return h("a", { href: `#${path}${api.query(params || {})}` }, text);
}

const segmentLink = (key, destination) => link(key, `/segments/${api.enc(key)}`, { destination });
const runLink = (id, destination) => link(id, `/runs/${api.enc(id)}`, { destination });

// ---- fields: the API's JSON follows the Go types (runstore.Record,
// segments.Segment, catalog encodings); these read them in one place.

const sum = r => r.summary || {};
const runStarted = r => sum(r).started || r.started || "";
const runMembers = r => sum(r).members ?? r.members;
const excludedTotal = r => Object.values(sum(r).excluded || {}).reduce((a, b) => a + b, 0);

function runStatus(r) {
  const s = r.status || "";
  if (s === "running" || (!s && r.progress && !sum(r).outcome)) return "running";
  if (s) return s;
  const o = sum(r).outcome || "";
  if (o === "failed") return "failed";
  if (r.applied && !r.applied.startsWith("0001")) return "applied";
  if (r.published && !r.published.startsWith("0001")) return "published, not applied";
  return o || "unknown";
}

function statusBadge(st) {
  if (st === "running") return badge("info", "running");
  if (/^failed|refused/.test(st)) return badge("bad", st);
  if (/set aside|not applied|exclusions/.test(st)) return badge("warn", st);
  if (/^applied|done/.test(st)) return badge("ok", st);
  return badge("info", st);
}

const sourceNames = { csv: "CSV", amplitude: "Amplitude", push: "Push", list: "List" };

function sourceMark(kind, detail) {
  const k = kind || "list";
  return h("span", { class: "badge info", title: detail || null }, sourceNames[k] || k);
}

function freshness(s) {
  if (s.freshness && typeof s.freshness === "object") {
    const f = s.freshness;
    const age = f.age_seconds ?? (f.age_ns ? f.age_ns / 1e9 : undefined);
    return f.stale ? badge("warn", `stale${age !== undefined ? `, synced ${fmtAge(age)} ago` : ""}`) :
      badge("ok", `fresh, synced ${fmtAge(age)} ago`);
  }
  const synced = s.synchronized_on;
  if (!synced || synced.startsWith("0001")) return badge("warn", "stale: never synchronized");
  const age = s.age_ns !== undefined ? s.age_ns / 1e9 : (Date.now() - new Date(synced)) / 1000;
  const stale = s.stale ?? age >= 120;
  return stale ? badge("warn", `stale, synced ${fmtAge(age)} ago`) : badge("ok", `fresh, synced ${fmtAge(age)} ago`);
}

// ---- pages

function loginPage(err) {
  nav.hidden = true;
  logoutButton.hidden = true;
  who.hidden = true;
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-hint", spellcheck: "false" });
  const errors = h("div", {});
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h("form", { class: "stack", "aria-labelledby": "login-title" },
    h("div", {}, h("label", { for: "token" }, "API token"), input,
      h("p", { class: "hint", id: "token-hint" },
        "A token made with `cohortsync tokens create`. It is kept in this tab only (sessionStorage) until you log out or close the tab.")),
    errors, h("div", {}, submit));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const t = input.value.trim();
    errors.replaceChildren();
    if (!t) {
      input.setAttribute("aria-invalid", "true");
      errors.replaceChildren(errorBox({ message: "enter a token", field: "token" }));
      input.focus();
      return;
    }
    api.setToken(t);
    try {
      await busy(submit, identify);
      input.value = "";
      render(); // the page the user asked for, or the segments

    } catch (e) {
      api.clearToken();
      input.setAttribute("aria-invalid", "true");
      errors.replaceChildren(errorBox(e.status === 401 ? { status: 401, message: `${e.message || "token not accepted"}`, field: "token" } : e));
      input.focus();
    }
  });
  document.title = "Log in · cohortsync console";
  main.replaceChildren(h("h1", { id: "login-title", tabindex: "-1" }, "Log in"), err ? errorBox(err) : "", form);
  input.focus();
}

// identify checks the token and learns its role.
async function identify() {
  const me = await api.get("/whoami");
  role = (me && (me.role || (me.token && me.token.role))) || "";
  const name = (me && (me.name || (me.token && me.token.name))) || "";
  who.textContent = role ? `Signed in${name ? ` as ${name}` : ""} (${role})` : "Signed in";
  who.hidden = false;
  nav.hidden = false;
  logoutButton.hidden = false;
}

async function segmentsPage() {
  page("Segments");
  const s = section("All segments", "h2");
  main.append(s.el);
  try {
    const body = await api.get("/segments");
    const rows = api.items(body, "segments");
    const problems = (body && (body.errors || body.problems)) || [];
    s.fill(
      problems.length ? h("div", { class: "error", role: "alert" }, "Some destinations could not be read: ",
        h("ul", {}, problems.map(p => h("li", {}, typeof p === "string" ? p : `${p.destination || ""}: ${p.message || p.error || JSON.stringify(p)}`)))) : "",
      table("Segments, with their source and freshness", [
        { head: "Segment", cell: r => segmentLink(r.key, r.destination) },
        { head: "Destination", cell: r => r.destination },
        { head: "Environment", cell: r => r.environment || "" },
        { head: "Source", cell: r => sourceMark(r.source, r.source_detail) },
        { head: "Mapping", cell: r => r.mapping || "—" },
        { head: "Members", num: true, cell: r => num(r.members) },
        { head: "Freshness", cell: r => freshness(r) },
      ], rows, "no segment yet"));
  } catch (e) { s.fail(e); }
}

async function segmentPage(key, params) {
  const destination = params.get("destination") || "";
  page(`Segment ${key}`);
  const info = section("Details");
  const chart = section("Members over time");
  const members = section("Members");
  const runs = section("Runs");
  main.append(info.el, chart.el, members.el, runs.el);
  const q = api.query({ destination });
  const k = api.enc(key);
  api.get(`/segments/${k}${q}`).then(body => {
    const list = api.items(body, "segments");
    const segs = list.length ? list : [body.segment || body];
    info.fill(...segs.map(seg => h("div", {},
      facts([
        ["Destination", seg.destination],
        ["Environment", seg.environment],
        ["Source", h("span", {}, sourceMark(seg.source, seg.source_detail), seg.source_detail ? ` ${seg.source_detail}` : "")],
        ["Mapping", seg.mapping],
        ["Generation", seg.generation !== undefined ? String(seg.generation) + (seg.current === false ? " (not the mapping's current one)" : "") : undefined],
        ["Context kind", seg.context_kind],
        ["Members", num(seg.members)],
        ["Freshness", freshness(seg)],
        ["Last applied", seg.last_applied ? fmtTime(seg.last_applied) : undefined],
        ["Last run", seg.last_run ? runLink(seg.last_run, seg.destination) : undefined],
      ]))));
  }).catch(info.fail);

  membersSection(members, key, destination);

  try {
    const body = await api.get(`/runs${api.query({ segment: key, destination, limit: 100 })}`);
    const rows = api.items(body, "runs");
    chart.fill(membersChart(rows.filter(r => runStatus(r) !== "running" && sum(r).outcome !== "failed")
      .map(r => ({ time: runStarted(r), members: runMembers(r), id: r.id }))));
    runs.fill(runsTable(rows, "Runs of this segment"));
  } catch (e) { chart.fail(e); runs.fail(e); }
}

// membersSection lists a segment's members a page at a time, searchable;
// the pager keeps the cursors it went through to go back.
function membersSection(sec, key, destination) {
  const search = h("input", { id: "member-search", name: "q", type: "search", autocomplete: "off" });
  const form = h("form", { class: "inline", role: "search", "aria-label": "Members" },
    h("div", {}, h("label", { for: "member-search" }, "Search members (key starts with)"), search),
    h("button", { type: "submit" }, "Search"));
  const out = h("div", { "aria-live": "polite" });
  sec.fill(form, out);
  let cursors = [""]; // cursors of the pages seen; the last is the current page's
  const load = async () => {
    const cursor = cursors[cursors.length - 1];
    out.replaceChildren(h("p", { class: "hint" }, "Loading members…"));
    try {
      const body = await api.get(`/segments/${api.enc(key)}/members${api.query({ destination, q: search.value.trim(), cursor, limit: 50 })}`);
      const rows = api.items(body, "members", "keys").map(m => (typeof m === "string" ? { key: m } : m));
      const next = api.nextCursor(body);
      const prev = h("button", { type: "button", class: "secondary", disabled: cursors.length < 2,
        onclick: () => { cursors.pop(); load(); } }, "Previous page");
      const nextB = h("button", { type: "button", class: "secondary", disabled: !next,
        onclick: () => { cursors.push(next); load(); } }, "Next page");
      out.replaceChildren(
        table(`Members, page ${cursors.length}`, [{ head: "Context key", cell: r => r.key || r.context_key || "" }], rows,
          search.value.trim() ? "no member matches" : "no member"),
        body && body.total !== undefined ? h("p", { class: "hint" }, `${num(body.total)} members in all.`) : "",
        h("nav", { class: "pager", "aria-label": "Member pages" }, prev, nextB));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  form.addEventListener("submit", ev => { ev.preventDefault(); cursors = [""]; load(); });
  load();
}

function downloadButton(r) {
  const dest = r.destination || "";
  const name = `exclusions-${r.id}${dest ? `-${dest}` : ""}.csv`;
  const out = h("span", {});
  const b = h("button", { type: "button", class: "secondary",
    "aria-label": `Download the exclusions CSV of run ${r.id}${dest ? ` into ${dest}` : ""}` }, "Exclusions CSV");
  b.addEventListener("click", async () => {
    out.replaceChildren();
    try {
      await busy(b, () => api.download(`/runs/${api.enc(r.id)}/exclusions${api.query({ destination: dest })}`, name));
      say(`Downloaded ${name}`);
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  return h("span", { class: "actions" }, b, out);
}

function runsTable(rows, caption) {
  return table(caption, [
    { head: "Run", cell: r => runLink(r.id, r.destination) },
    { head: "Mapping", cell: r => r.mapping || "" },
    { head: "Destination", cell: r => r.destination || "" },
    { head: "Trigger", cell: r => r.trigger || "" },
    { head: "Started", cell: r => fmtTime(runStarted(r)) },
    { head: "Status", cell: r => statusBadge(runStatus(r)) },
    { head: "Members", num: true, cell: r => num(runMembers(r)) },
    { head: "Added", num: true, cell: r => num(sum(r).added) },
    { head: "Removed", num: true, cell: r => num(sum(r).removed) },
    { head: "Excluded", num: true, cell: r => num(excludedTotal(r)) },
    { head: "Exclusions", cell: r => downloadButton(r) },
  ], rows, "no run yet");
}

async function runsPage(params) {
  page("Runs");
  const fields = ["mapping", "segment", "destination"].map(n => {
    const input = h("input", { id: `f-${n}`, name: n, value: params.get(n) || "", autocomplete: "off" });
    return { n, input, el: h("div", {}, h("label", { for: `f-${n}` }, n[0].toUpperCase() + n.slice(1)), input) };
  });
  const form = h("form", { class: "inline", "aria-label": "Filter runs" }, fields.map(f => f.el), h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    location.hash = `#/runs${api.query(Object.fromEntries(fields.map(f => [f.n, f.input.value.trim()])))}`;
  });
  const s = section("Recent runs");
  main.append(form, s.el);
  const filter = Object.fromEntries(fields.map(f => [f.n, params.get(f.n) || ""]));
  try {
    const body = await api.get(`/runs${api.query({ ...filter, limit: 100 })}`);
    s.fill(runsTable(api.items(body, "runs"), "Runs, newest first"));
  } catch (e) {
    s.fail(e);
    if (e.field) {
      const f = fields.find(x => x.n === e.field);
      if (f) f.input.setAttribute("aria-invalid", "true");
    }
  }
}

function progressView(r) {
  const p = r.progress || {};
  const total = Number(p.total || 0), done = Number(p.done || 0);
  const label = `${p.phase || "running"}: ${num(done)}${total ? ` of ${num(total)}` : ""}` +
    (total ? ` (${Math.floor((100 * done) / total)}%)` : "") + (p.updated ? `, updated ${fmtTime(p.updated)}` : "");
  const bar = h("progress", { id: "run-progress", max: total || null, value: total ? done : null,
    "aria-describedby": "run-progress-text" }, label);
  return h("div", { class: "progress" },
    h("label", { for: "run-progress" }, "Progress"), bar, h("p", { id: "run-progress-text" }, label));
}

async function runPage(id, params) {
  const destination = params.get("destination") || "";
  page(`Run ${id}`);
  const s = section("Summary");
  const chart = section("Members over time");
  main.append(s.el, chart.el);
  let charted = false;
  const load = async () => {
    let r;
    try {
      const body = await api.get(`/runs/${api.enc(id)}${api.query({ destination })}`);
      const list = api.items(body, "runs");
      r = list.length ? list.find(x => !destination || x.destination === destination) || list[0] : body.run || body;
    } catch (e) { s.fail(e); return; }
    const st = runStatus(r);
    const x = sum(r);
    const excluded = Object.entries(x.excluded || {});
    s.fill(
      st === "running" ? progressView(r) : "",
      facts([
        ["Status", statusBadge(st)],
        ["Mapping", r.mapping],
        ["Segment", x.segment ? segmentLink(x.segment, r.destination) : undefined],
        ["Destination", r.destination],
        ["Trigger", r.trigger],
        ["Started", fmtTime(runStarted(r))],
        ["Duration", fmtDurationNS(x.duration_ns)],
        ["Published", r.published ? fmtTime(r.published) : undefined],
        ["Applied", r.applied ? fmtTime(r.applied) : undefined],
        ["Error", x.error],
      ]),
      table("Counts", [
        { head: "Count", cell: c => c[0] },
        { head: "Value", num: true, cell: c => num(c[1]) },
      ], [["Rows read", x.rows], ["Members", x.members], ["Added", x.added], ["Removed", x.removed],
        ["Unchanged", x.unchanged], ["Duplicates", x.duplicates], ["Excluded", excludedTotal(r)], ["Events", x.events]]
        .filter(c => c[1] !== undefined)),
      excluded.length ? table("Exclusions by reason", [
        { head: "Reason", cell: c => c[0] }, { head: "Rows", num: true, cell: c => num(c[1]) }], excluded) : "",
      st !== "running" ? downloadButton({ ...r, destination: r.destination || destination }) : "");
    if (st === "running") {
      later(1000, load); // the run's progress is recorded about once a second
      if (!charted) chart.fill(h("p", { class: "hint" }, "The chart is drawn when the run has finished."));
      return;
    }
    say(`Run ${id}: ${st}`);
    if (x.segment && !charted) {
      charted = true;
      try {
        const body = await api.get(`/runs${api.query({ segment: x.segment, destination: r.destination || destination, limit: 100 })}`);
        const rows = api.items(body, "runs").filter(q => runStatus(q) !== "running" && sum(q).outcome !== "failed");
        chart.fill(membersChart(rows.map(q => ({ time: runStarted(q), members: runMembers(q), id: q.id })), r.id,
          `Members of ${x.segment} over time`));
      } catch (e) { chart.fail(e); }
    }
  };
  await load();
}

async function mappingsPage() {
  page("Mappings");
  const notice = h("div", { "aria-live": "polite" });
  const s = section("All mappings");
  main.append(notice, s.el);
  if (canWrite()) main.append(createMappingForm());
  const action = (m, verb, label) => {
    const b = h("button", { type: "button", class: verb === "sync" ? null : "secondary",
      "aria-label": `${label} ${m.name}` }, label);
    b.addEventListener("click", async () => {
      notice.replaceChildren();
      try {
        const res = await busy(b, () => api.post(`/mappings/${api.enc(m.name)}/${verb}`));
        const runs = api.items(res, "runs");
        const ids = runs.length ? runs : res && (res.run || res.id) ? [res.run || res] : [];
        notice.replaceChildren(h("p", { class: "notice", role: "status" },
          verb === "sync" ? `Sync of ${m.name} started.` : `${m.name} ${verb === "pause" ? "paused" : "resumed"}.`,
          ...ids.map(x => [" ", runLink(typeof x === "string" ? x : x.id, typeof x === "string" ? "" : x.destination)]),
          verb === "sync" ? [" ", link("See its runs", "/runs", { mapping: m.name })] : ""));
        if (verb !== "sync") await loadList();
      } catch (e) { notice.replaceChildren(errorBox(e)); }
    });
    return b;
  };
  const loadList = async () => {
    try {
      const body = await api.get("/mappings");
      const rows = api.items(body, "mappings");
      s.fill(table("Mappings", [
        { head: "Mapping", cell: m => m.name },
        { head: "Segment", cell: m => m.segment },
        { head: "Source", cell: m => h("span", {}, sourceMark(m.source_kind || (m.source && m.source.kind)), " ",
          m.source_location || (m.source && m.source.location) || "") },
        { head: "Destinations", cell: m => (m.destinations || []).join(", ") },
        { head: "Schedule", cell: m => m.schedule || "" },
        { head: "State", cell: m => (m.enabled === false || m.paused) ? badge("warn", "paused") : badge("ok", "active") },
        { head: "Actions", cell: m => canWrite() ? h("span", { class: "actions" },
          action(m, "sync", "Sync now"),
          (m.enabled === false || m.paused) ? action(m, "resume", "Resume") : action(m, "pause", "Pause"),
          link("Runs", "/runs", { mapping: m.name })) : link("Runs", "/runs", { mapping: m.name }) },
      ], rows, "no mapping yet"));
    } catch (e) { s.fail(e); }
  };
  await loadList();
}

// createMappingForm makes a CSV mapping (path or http(s) URL) into
// destinations that exist; the API validates and names the wrong field.
function createMappingForm() {
  const field = (id, label, attrs = {}, hint = "") => {
    const input = h("input", { id: `m-${id}`, name: id, autocomplete: "off", "aria-describedby": hint ? `m-${id}-hint` : null, ...attrs });
    return { id, input, el: h("div", {}, h("label", { for: `m-${id}` }, label), input, hint ? h("p", { class: "hint", id: `m-${id}-hint` }, hint) : "") };
  };
  const fields = [
    field("name", "Name", { required: true }),
    field("segment", "Segment key", { required: true }),
    field("source_location", "CSV path or URL", { required: true }, "A cohort CSV export: a path on the server or an http(s) URL."),
    field("destinations", "Destinations", { required: true }, "Destination names, separated by commas."),
    field("schedule", "Schedule", { value: "daily" }, "hourly, daily, a cron expression, or once."),
  ];
  const errors = h("div", {});
  const submit = h("button", { type: "submit" }, "Create mapping");
  const form = h("form", { class: "stack", "aria-labelledby": "create-mapping" }, fields.map(f => f.el), errors, h("div", {}, submit));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    errors.replaceChildren();
    for (const f of fields) f.input.removeAttribute("aria-invalid");
    const v = Object.fromEntries(fields.map(f => [f.id, f.input.value.trim()]));
    const body = { name: v.name, segment: v.segment, source_kind: "csv", source_location: v.source_location,
      destinations: v.destinations.split(",").map(x => x.trim()).filter(Boolean), schedule: v.schedule || "daily" };
    try {
      await busy(submit, () => api.post("/mappings", body));
      say(`Mapping ${v.name} created`);
      render();
    } catch (e) {
      errors.replaceChildren(errorBox(e));
      const f = fields.find(x => e.field && (e.field === x.id || e.field.endsWith(`.${x.id}`) || e.field.startsWith(x.id)));
      if (f) { f.input.setAttribute("aria-invalid", "true"); f.input.focus(); }
    }
  });
  return h("section", { "aria-labelledby": "create-mapping" }, h("h2", { id: "create-mapping" }, "Create a CSV mapping"), form);
}

async function destinationsPage() {
  page("Destinations");
  const s = section("All destinations");
  main.append(s.el);
  let rows;
  try {
    rows = api.items(await api.get("/destinations"), "destinations");
  } catch (e) { s.fail(e); return; }
  const status = new Map(rows.map(d => [d.name, h("span", { "aria-live": "polite" }, badge("info", "testing…"))]));
  const test = async d => {
    const cell = status.get(d.name);
    cell.replaceChildren(badge("info", "testing…"));
    try {
      const res = await api.post(`/destinations/${api.enc(d.name)}/test`);
      const ok = !res || res.connected === true || res.status === "connected" || res.ok === true;
      const msg = (res && (res.error || res.message)) || "";
      cell.replaceChildren(ok ? badge("ok", "connected") : badge("bad", `not connected${msg ? `: ${msg}` : ""}`));
    } catch (e) {
      cell.replaceChildren(e.status === 403 ? badge("info", `not tested: ${e.message}`) : badge("bad", `not connected: ${e.message}`));
    }
  };
  s.fill(table("Destinations and their connection status", [
    { head: "Destination", cell: d => d.name },
    { head: "Environment", cell: d => d.environment || "" },
    { head: "Redis", cell: d => d.redis_url || (d.redis_cluster_addrs || []).join(", ") || (d.redis && (d.redis.url || "")) || "" },
    { head: "Prefix", cell: d => d.custom_prefix || d.client_side_id || d.prefix || d.prefix_mode || "" },
    { head: "Connection", cell: d => status.get(d.name) },
    { head: "Actions", cell: d => h("button", { type: "button", class: "secondary", "aria-label": `Test the connection of ${d.name}`,
      onclick: ev => busy(ev.currentTarget, () => test(d)) }, "Test connection") },
  ], rows, "no destination yet"));
  await Promise.all(rows.map(test));
}

async function lookupPage(params) {
  page("Membership lookup");
  const key = h("input", { id: "l-key", name: "key", required: true, autocomplete: "off", value: params.get("key") || "" });
  const kind = h("input", { id: "l-kind", name: "kind", autocomplete: "off", value: params.get("kind") || "user" });
  const segment = h("input", { id: "l-segment", name: "segment", autocomplete: "off", value: params.get("segment") || "",
    "aria-describedby": "l-segment-hint" });
  const form = h("form", { class: "inline", "aria-label": "Look up a context" },
    h("div", {}, h("label", { for: "l-key" }, "Context key"), key),
    h("div", {}, h("label", { for: "l-kind" }, "Context kind"), kind),
    h("div", {}, h("label", { for: "l-segment" }, "Segment (optional)"), segment,
      h("p", { class: "hint", id: "l-segment-hint" }, "Empty: every segment the context is in.")),
    h("button", { type: "submit" }, "Look up"));
  const out = h("div", { "aria-live": "polite" });
  main.append(form, out);
  const inputs = { key, kind, context_kind: kind, segment };
  const run = async () => {
    for (const i of [key, kind, segment]) i.removeAttribute("aria-invalid");
    out.replaceChildren(h("p", { class: "hint" }, "Looking up…"));
    try {
      const body = await api.get(`/lookup${api.query({ key: key.value.trim(), kind: kind.value.trim(), segment: segment.value.trim() })}`);
      const rows = api.items(body, "memberships", "segments");
      out.replaceChildren(table(`Segments of ${key.value.trim()}`, [
        { head: "Segment", cell: m => segmentLink(m.segment || m.key, m.destination) },
        { head: "Destination", cell: m => m.destination || "" },
        { head: "Member", cell: m => (m.member ?? m.in ?? true) ? badge("ok", "yes") : badge("info", "no") },
        { head: "Since run", cell: m => m.since_run || m.run ? runLink(m.since_run || m.run, m.destination) : "—" },
        { head: "Since", cell: m => m.since ? fmtTime(m.since) : "" },
      ], rows, "the context is in no segment"));
    } catch (e) {
      out.replaceChildren(errorBox(e));
      const i = inputs[e.field];
      if (i) { i.setAttribute("aria-invalid", "true"); i.focus(); }
    }
  };
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    history.replaceState(null, "", `#/lookup${api.query({ key: key.value.trim(), kind: kind.value.trim(), segment: segment.value.trim() })}`);
    run();
  });
  if (key.value) run();
}

const routes = [
  [/^\/segments$/, (m, p) => segmentsPage(p)],
  [/^\/segments\/([^/]+)$/, (m, p) => segmentPage(decodeURIComponent(m[1]), p)],
  [/^\/mappings$/, () => mappingsPage()],
  [/^\/destinations$/, () => destinationsPage()],
  [/^\/runs$/, (m, p) => runsPage(p)],
  [/^\/runs\/([^/]+)$/, (m, p) => runPage(decodeURIComponent(m[1]), p)],
  [/^\/lookup$/, (m, p) => lookupPage(p)],
];

async function render() {
  stopTimers();
  generation++;
  if (location.hash && !location.hash.startsWith("#/")) return; // the skip link's #main
  if (!api.token()) { loginPage(); return; }
  if (nav.hidden) {
    try { await identify(); } catch (e) {
      api.clearToken();
      loginPage(e.status === 401 ? { status: 401, message: "your token is no longer accepted; log in again" } : e);
      return;
    }
  }
  const { path, params } = parseHash();
  for (const a of nav.querySelectorAll("a")) {
    if (path.startsWith(a.getAttribute("href").slice(1))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const [re, fn] of routes) {
    const m = path.match(re);
    if (m) {
      try { await fn(m, params); } catch (e) {
        if (e.status === 401) { api.clearToken(); nav.hidden = true; loginPage(e); return; }
        main.append(errorBox(e));
      }
      return;
    }
  }
  page("Not found", h("p", {}, "No page here. ", link("Segments", "/segments")));
}

logoutButton.addEventListener("click", () => {
  api.clearToken();
  role = "";
  stopTimers();
  generation++;
  loginPage();
  say("Logged out");
});
window.addEventListener("hashchange", render);
render();
