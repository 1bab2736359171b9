// The console's pages: a hash router (#/segments, #/segments/DEST/KEY,
// #/mappings, #/destinations, #/runs, #/runs/ID?destination=D, #/lookup)
// over the admin API, whose contract is control/api/openapi.json. Each page
// renders into <main>, moves focus to its heading and cancels its refresh
// timers when the user leaves it.
import * as api from "./api.js";
import { h, errorBox, badge, table, facts, fmtTime, fmtAge, fmtDurationNS, num, busy } from "./dom.js";
import { membersChart } from "./chart.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const logoutButton = document.getElementById("logout");
const who = document.getElementById("who");
const announce = document.getElementById("announce");

// The token's role, as GET /whoami tells it: "admin", "writer" or
// "reader". A reader sees no write button; any other refusal is shown as
// the API's 403.
let role = "";
// What the current page left running; stop() cancels it on navigation.
let timers = [];
let generation = 0; // bumped per render: the timers of a left page do nothing

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

const segmentLink = (key, destination) => link(key, `/segments/${api.enc(destination)}/${api.enc(key)}`);
const runLink = (id, destination) => link(id, `/runs/${api.enc(id)}`, { destination });

// ---- fields of the API's JSON (Run, Segment, Mapping), read in one place.

const sum = r => r.summary || {};
const runStarted = r => sum(r).started || "";
const runMembers = r => sum(r).members;
const excludedTotal = r => Object.values(sum(r).excluded || {}).reduce((a, b) => a + b, 0);

// runState is the API's state (running, succeeded, published, applied,
// set_aside, failed, refused; interrupted for a running record its process
// stopped rewriting); runWords its status in words.
const runState = r => (r.status === "interrupted" ? "interrupted" : r.state || "unknown");
const runWords = r => r.status || runState(r);
const finished = r => !["running", "interrupted", "failed", "refused"].includes(runState(r));

function statusBadge(r) {
  const st = runState(r), words = runWords(r);
  let kind = "info";
  if (st === "failed" || st === "refused" || st === "interrupted") kind = "bad";
  else if (st === "set_aside" || st === "published" || /exclusions/.test(words)) kind = "warn";
  else if (st === "applied" || st === "succeeded") kind = "ok";
  const b = badge(kind, words);
  b.dataset.state = st;
  return b;
}

const sourceNames = { csv: "CSV", amplitude: "Amplitude", push: "Push", list: "List" };

// mappingSource reads a mapping's source object ({csv} | {amplitude_cohort,
// amplitude_project} | {push, integration, cohort}) as a kind and a detail.
function mappingSource(m) {
  const src = m.source || {};
  if (src.csv) return ["csv", src.csv];
  if (src.amplitude_cohort) return ["amplitude", `cohort ${src.amplitude_cohort}${src.amplitude_project ? ` of ${src.amplitude_project}` : ""}`];
  if (src.push) return ["push", src.integration ? `${src.integration}/${src.cohort || ""}` : ""];
  return ["", ""];
}

// runsOf is the mapping whose runs built a segment: its owner's, or the
// list segment's edits ("list:<segment>").
const runsOf = seg => seg.mapping || `list:${seg.key}`;

function sourceMark(kind, detail) {
  const k = kind || "list";
  return h("span", { class: "badge info", title: detail || null }, sourceNames[k] || k);
}

// freshness tells whether SDKs would find the segment's destination fresh:
// the API's stale flag and the age of its synchronized_on.
function freshness(s) {
  const synced = s.synchronized_on;
  if (!synced || synced.startsWith("0001")) return badge("warn", "stale: never synchronized");
  const age = s.sync_age_ns !== undefined ? s.sync_age_ns / 1e9 : (Date.now() - new Date(synced)) / 1000;
  return s.stale ? badge("warn", `stale, synced ${fmtAge(age)} ago`) : badge("ok", `fresh, synced ${fmtAge(age)} ago`);
}

// pager is a page of a cursor-paged list: load(cursor) fetches one page
// and returns {nodes, next}; Previous and Next walk the cursors seen.
function pager(label, load) {
  const out = h("div", {});
  let cursors = [""];
  const show = async () => {
    out.replaceChildren(h("p", { class: "hint", role: "status" }, "Loading…"));
    try {
      const { nodes, next } = await load(cursors[cursors.length - 1], cursors.length);
      const controls = cursors.length > 1 || next ? h("nav", { class: "pager", "aria-label": `${label} pages` },
        h("button", { type: "button", class: "secondary", disabled: cursors.length < 2,
          onclick: () => { cursors.pop(); show(); } }, "Previous page"),
        h("span", {}, `Page ${cursors.length}`),
        h("button", { type: "button", class: "secondary", disabled: !next,
          onclick: () => { cursors.push(next); show(); } }, "Next page")) : "";
      out.replaceChildren(...[nodes].flat(), controls);
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  return { el: out, reload: () => { cursors = [""]; return show(); } };
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
        "A token made with ", h("code", {}, "cohortsync tokens create"),
        ". It is kept in this tab only, until you log out or close the tab.")),
    errors, h("div", {}, submit));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const t = input.value.trim();
    errors.replaceChildren();
    input.removeAttribute("aria-invalid");
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
      render(); // the page asked for, else the segments
    } catch (e) {
      api.clearToken();
      input.setAttribute("aria-invalid", "true");
      errors.replaceChildren(errorBox(e));
      input.focus();
    }
  });
  document.title = "Log in · cohortsync console";
  main.replaceChildren(h("h1", { id: "login-title", tabindex: "-1" }, "Log in"), err ? errorBox(err) : "", form);
  input.focus();
}

// identify checks the token and learns its name and role.
async function identify() {
  const me = await api.get("/whoami");
  role = me.role || "";
  who.textContent = `Signed in as ${me.name || me.id} (${role})`;
  who.hidden = false;
  nav.hidden = false;
  logoutButton.hidden = false;
}

async function segmentsPage() {
  page("Segments");
  const list = pager("Segments", async cursor => {
    const body = await api.get(`/segments${api.query({ cursor, limit: 100 })}`);
    return {
      next: body.next_cursor,
      nodes: table("Segments, with their source and freshness", [
        { head: "Segment", cell: r => segmentLink(r.key, r.destination) },
        { head: "Destination", cell: r => r.destination },
        { head: "Environment", cell: r => r.environment },
        { head: "Generation", num: true, cell: r => String(r.generation) + (r.current ? "" : " (old)") },
        { head: "Source", cell: r => sourceMark(r.source, r.source_detail) },
        { head: "Mapping", cell: r => r.mapping || "—" },
        { head: "Members", num: true, cell: r => num(r.members) },
        { head: "Freshness", cell: r => freshness(r) },
      ], body.items || [], "no segment yet"),
    };
  });
  main.append(list.el);
  await list.reload();
}

async function segmentPage(destination, key) {
  page(`Segment ${key} in ${destination}`);
  const info = section("Details");
  const chart = section("Members over time");
  const members = section("Members");
  const runs = section("Runs");
  main.append(info.el, chart.el, members.el, runs.el);
  let seg;
  try {
    const body = await api.get(`/destinations/${api.enc(destination)}/segments/${api.enc(key)}`);
    const gens = body.generations || [];
    seg = gens.find(g => g.current) || gens[gens.length - 1];
    info.fill(...gens.map(g => h("div", {},
      gens.length > 1 ? h("h3", {}, `Generation ${g.generation}${g.current ? " (current)" : ""}`) : "",
      facts([
        ["Destination", g.destination],
        ["Environment", g.environment],
        ["Source", h("span", {}, sourceMark(g.source, g.source_detail), g.source_detail ? ` ${g.source_detail}` : "")],
        ["Mapping", g.mapping ? link(g.mapping, "/runs", { mapping: g.mapping, destination }) : "none (a list segment)"],
        ["Generation", String(g.generation)],
        ["Context kind", g.context_kind],
        ["Members", num(g.members)],
        ["Freshness", freshness(g)],
        ["Last applied", g.last_applied ? fmtTime(g.last_applied) : undefined],
        ["Last run", g.last_run ? runLink(g.last_run, g.destination) : undefined],
        ["Editable", g.synced ? "no: a mapping owns it" : "yes: a list segment"],
        ["Applying", h("span", { "data-generation": g.generation, class: "applying" }, "…")],
      ]))));
    applyingStatus(destination, key);
  } catch (e) {
    info.fail(e);
    chart.fill();
    members.fill();
    runs.fill();
    return;
  }
  membersSection(members, destination, key, seg ? seg.generation : undefined);
  const mapping = runsOf(seg || { key });
  try {
    const body = await api.get(`/runs${api.query({ mapping, destination, limit: 200 })}`);
    const rows = (body.items || []).filter(r => !sum(r).segment || sum(r).segment === key);
    chart.fill(membersChart(rows.filter(finished).map(r => ({ time: runStarted(r), members: runMembers(r), id: r.id })),
      "", `Members of ${key} over time`));
    runs.fill(runsTable(rows, `Runs of ${mapping} into ${destination}, newest first`));
  } catch (e) { chart.fail(e); runs.fail(e); }
}

// applyingStatus fills the segment's "Applying" facts from the API's
// status: events published and not yet applied, and the runs waiting.
async function applyingStatus(destination, key) {
  const cells = [...main.querySelectorAll(".applying")];
  try {
    const st = await api.get(`/status${api.query({ destination })}`);
    const d = (st.destinations || []).find(x => x.name === destination) || {};
    for (const cell of cells) {
      const seg = (d.segments || []).find(x => x.key === key && String(x.generation) === cell.dataset.generation);
      cell.replaceChildren(!seg ? "unknown" : seg.seq_lag > 0 || seg.pending_runs > 0 ?
        badge("warn", `${plural(seg.seq_lag, "%d event", "%d events")} and ${plural(seg.pending_runs, "%d run", "%d runs")} waiting for the consumer`) :
        badge("ok", "up to date"));
    }
  } catch (e) {
    for (const cell of cells) cell.replaceChildren(`unknown (${e.message})`);
  }
}

// membersSection lists a segment's members a page at a time, searchable
// by key prefix.
function membersSection(sec, destination, key, generation) {
  const search = h("input", { id: "member-search", name: "prefix", type: "search", autocomplete: "off" });
  const form = h("form", { class: "inline", role: "search", "aria-label": "Members" },
    h("div", {}, h("label", { for: "member-search" }, "Search members (key starts with)"), search),
    h("button", { type: "submit" }, "Search"));
  const list = pager("Members", async (cursor, n) => {
    const prefix = search.value.trim();
    const body = await api.get(`/destinations/${api.enc(destination)}/segments/${api.enc(key)}/members` +
      api.query({ prefix, cursor, generation, limit: 50 }));
    return {
      next: body.next_cursor,
      nodes: table(`Members${prefix ? ` starting with ${prefix}` : ""}, page ${n}`,
        [{ head: "Context key", cell: k => k }], body.items || [],
        body.next_cursor ? "none on this page; see the next one" : prefix ? "no member matches" : "no member"),
    };
  });
  form.addEventListener("submit", ev => { ev.preventDefault(); list.reload(); });
  sec.fill(form, list.el);
  list.reload();
}

function downloadButton(r) {
  const dest = r.destination || "";
  const name = `exclusions-${r.id}-${dest}.csv`;
  const out = h("span", {});
  const b = h("button", { type: "button", class: "secondary", "data-run": r.id,
    "aria-label": `Download the exclusions CSV of run ${r.id} into ${dest}` }, "Exclusions CSV");
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
    { head: "Mapping", cell: r => r.mapping },
    { head: "Destination", cell: r => r.destination },
    { head: "Trigger", cell: r => r.trigger },
    { head: "Started", cell: r => fmtTime(runStarted(r)) },
    { head: "Status", cell: r => runState(r) === "running" ? progressView(r, false) : statusBadge(r) },
    { head: "Members", num: true, cell: r => num(runMembers(r)) },
    { head: "Added", num: true, cell: r => num(sum(r).added) },
    { head: "Removed", num: true, cell: r => num(sum(r).removed) },
    { head: "Excluded", num: true, cell: r => num(excludedTotal(r)) },
    { head: "Exclusions", cell: r => runState(r) === "running" ? "" : downloadButton(r) },
  ], rows, "no run yet");
}

const runStates = ["", "running", "succeeded", "published", "applied", "set_aside", "failed", "refused"];

// runsPage lists runs with the API's filters, refreshed while it is shown:
// every 2 s while a listed run is running or while it waits for a run
// started since "since" (a sync just asked for), else every 5 s.
async function runsPage(params) {
  page("Runs");
  const text = (n, label) => {
    const input = h("input", { id: `f-${n}`, name: n, value: params.get(n) || "", autocomplete: "off" });
    return { n, input, el: h("div", {}, h("label", { for: `f-${n}` }, label), input) };
  };
  const state = h("select", { id: "f-status", name: "status" },
    runStates.map(s => h("option", { value: s, selected: (params.get("status") || "") === s }, s ? s.replace("_", " ") : "any")));
  const fields = [text("mapping", "Mapping"), text("destination", "Destination"), text("trigger", "Trigger"),
    { n: "status", input: state, el: h("div", {}, h("label", { for: "f-status" }, "State"), state) }];
  const form = h("form", { class: "inline", "aria-label": "Filter runs" }, fields.map(f => f.el), h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    location.hash = `#/runs${api.query(Object.fromEntries(fields.map(f => [f.n, f.input.value.trim()])))}`;
  });
  const since = params.get("since") || "";
  const waiting = since ? h("p", { class: "hint", role: "status" }, `Waiting for the runs asked for at ${fmtTime(since)}…`) : "";
  const s = section("Recent runs");
  main.append(form, waiting, s.el);
  const filter = Object.fromEntries(fields.map(f => [f.n, params.get(f.n) || ""]));
  let shown = "";
  const load = async () => {
    try {
      const body = await api.get(`/runs${api.query({ ...filter, since, limit: 100 })}`);
      const rows = body.items || [];
      // Redrawn only when something changed, so that a refresh does not
      // take the keyboard focus away from a button of the table.
      const now = JSON.stringify(rows);
      if (now !== shown) {
        shown = now;
        s.fill(runsTable(rows, "Runs, newest first"));
      }
      const running = rows.some(r => runState(r) === "running");
      if (waiting && rows.length && !running) waiting.textContent = "The runs asked for have finished.";
      later(running || (since && !rows.length) ? 2000 : 5000, load);
    } catch (e) {
      s.fail(e);
      const f = fields.find(x => x.n === e.field);
      if (f) f.input.setAttribute("aria-invalid", "true");
    }
  };
  await load();
}

// progressView is a running run's progress: a <progress> bar (without a
// value while the total is unknown) and the same in words.
function progressView(r, large = true) {
  const p = r.progress || {};
  const total = Number(p.total || 0), done = Number(p.done || 0);
  const words = `${p.phase || "starting"}: ${num(done)}${total ? ` of ${num(total)} (${Math.floor((100 * done) / total)}%)` : ""}`;
  const id = `progress-${r.id}-${r.destination}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const bar = h("progress", { id, max: total || null, value: total ? Math.min(done, total) : null,
    "aria-label": `Progress of run ${r.id} into ${r.destination}`, "aria-valuetext": words }, words);
  if (!large) return h("span", { class: "progress" }, badge("info", "running"), " ", bar, " ", h("span", {}, words));
  return h("div", { class: "progress", "data-run-progress": r.destination },
    h("h3", {}, `Running, into ${r.destination}`), bar,
    h("p", {}, words, p.updated ? ` (updated ${fmtTime(p.updated)})` : ""));
}

async function runPage(id, params) {
  const only = params.get("destination") || "";
  page(`Run ${id}`);
  const s = section("Summary");
  const chart = section("Members over time");
  main.append(s.el, chart.el);
  let charted = false, shown = "";
  const load = async () => {
    let records;
    try {
      records = (await api.get(`/runs/${api.enc(id)}`)).records || [];
    } catch (e) { s.fail(e); chart.fill(); return; }
    if (only) records = records.filter(r => r.destination === only);
    const now = JSON.stringify(records);
    if (now !== shown) { // redrawn only on change: the focus stays where it was
      shown = now;
      s.fill(...records.map(r => recordView(r, records.length > 1)));
    }
    const running = records.some(r => runState(r) === "running");
    if (running) {
      later(1000, load); // a running run's progress is recorded about once a second
      if (!charted) chart.fill(h("p", { class: "hint" }, "The chart is drawn when the run has finished."));
      return;
    }
    say(`Run ${id}: ${records.map(runWords).join("; ")}`);
    const r = records[0];
    if (!r || charted) return;
    charted = true;
    try {
      const body = await api.get(`/runs${api.query({ mapping: r.mapping, destination: r.destination, limit: 200 })}`);
      const rows = (body.items || []).filter(q => finished(q) && sum(q).segment === sum(r).segment);
      chart.fill(membersChart(rows.map(q => ({ time: runStarted(q), members: runMembers(q), id: q.id })), r.id,
        `Members of ${sum(r).segment} in ${r.destination} over time`));
    } catch (e) { chart.fail(e); }
  };
  await load();
}

// recordView is one record of a run (one destination): its state, counts
// and exclusions.
function recordView(r, titled) {
  const x = sum(r);
  const excluded = Object.entries(x.excluded || {});
  const running = runState(r) === "running";
  return h("div", { class: "record", "data-destination": r.destination },
    titled ? h("h3", {}, `Into ${r.destination}`) : "",
    running ? progressView(r) : "",
    facts([
      ["State", statusBadge(r)],
      ["Mapping", link(r.mapping, "/runs", { mapping: r.mapping })],
      ["Segment", x.segment ? segmentLink(x.segment, r.destination) : undefined],
      ["Destination", r.destination],
      ["Trigger", r.trigger],
      ["Source", x.input ? `${x.source || ""} ${x.input}` : undefined],
      ["Started", fmtTime(runStarted(r))],
      ["Duration", running ? undefined : fmtDurationNS(x.duration_ns)],
      ["Published", r.published ? fmtTime(r.published) : undefined],
      ["Applied", r.applied ? fmtTime(r.applied) : undefined],
      ["Error", x.error],
    ]),
    running ? "" : table(`Counts of run ${r.id} into ${r.destination}`, [
      { head: "Count", cell: c => c[0] },
      { head: "Value", num: true, cell: c => num(c[1]) },
    ], [["Rows read", x.rows], ["Members", x.members], ["Added", x.added], ["Removed", x.removed],
      ["Unchanged", x.unchanged], ["Duplicates", x.duplicates], ["Excluded", excludedTotal(r)], ["Events", x.events]]
      .filter(c => c[1] !== undefined), "", { narrow: true }),
    excluded.length ? table("Exclusions by reason", [
      { head: "Reason", cell: c => c[0] }, { head: "Rows", num: true, cell: c => num(c[1]) }], excluded, "", { narrow: true }) : "",
    r.exclusions_kept && r.exclusions_kept.left_out ? h("p", { class: "hint" },
      `The report keeps ${num(r.exclusions_kept.kept)} rows; ${num(r.exclusions_kept.left_out)} more were counted, not kept.`) : "",
    running ? "" : downloadButton(r));
}

async function mappingsPage() {
  page("Mappings");
  const notice = h("div", {});
  const list = pager("Mappings", async cursor => {
    const body = await api.get(`/mappings${api.query({ cursor, limit: 100 })}`);
    return {
      next: body.next_cursor,
      nodes: table("Mappings", [
        { head: "Mapping", cell: m => m.name },
        { head: "Segment", cell: m => m.segment },
        { head: "Source", cell: m => { const [k, d] = mappingSource(m); return h("span", {}, sourceMark(k, d), " ", d); } },
        { head: "Destinations", cell: m => (m.destinations || []).join(", ") },
        { head: "Schedule", cell: m => m.schedule || "on push" },
        { head: "State", cell: m => m.enabled ? badge("ok", "active") : badge("warn", "paused") },
        { head: "Actions", cell: m => h("span", { class: "actions" },
          canWrite() ? [action(m, "sync", "Sync now"), m.enabled ? action(m, "pause", "Pause") : action(m, "resume", "Resume")] : "",
          link(`Runs of ${m.name}`, "/runs", { mapping: m.name })) },
      ], body.items || [], "no mapping yet"),
    };
  });
  const action = (m, verb, label) => {
    const b = h("button", { type: "button", class: verb === "sync" ? null : "secondary", "data-mapping": m.name, "data-action": verb,
      "aria-label": `${label}: ${m.name}` }, label);
    b.addEventListener("click", async () => {
      notice.replaceChildren();
      try {
        const res = await busy(b, () => api.post(`/mappings/${api.enc(m.name)}/${verb}`));
        if (verb === "sync") {
          // The sync runs in the background: follow its runs.
          location.hash = `#/runs${api.query({ mapping: m.name, trigger: "manual", since: res.accepted })}`;
          return;
        }
        notice.replaceChildren(h("p", { class: "notice", role: "status" }, `${m.name} ${verb === "pause" ? "paused" : "resumed"}.`));
        await list.reload();
      } catch (e) { notice.replaceChildren(errorBox(e)); }
    });
    return b;
  };
  main.append(notice, list.el);
  if (canWrite()) main.append(createMappingForm());
  else notice.append(h("p", { class: "hint" }, "Your token is a reader's: mappings are shown, not changed or run."));
  await list.reload();
}

// createMappingForm makes a CSV mapping (a path on the server or an
// http(s) URL) into existing destinations; the API validates it and names
// the wrong field, which is marked here.
function createMappingForm() {
  const field = (id, label, attrs = {}, hint = "") => {
    const input = h("input", { id: `m-${id}`, name: id, autocomplete: "off", "aria-describedby": hint ? `m-${id}-hint` : null, ...attrs });
    return { id, input, hint: hint ? `m-${id}-hint` : "",
      el: h("div", {}, h("label", { for: `m-${id}` }, label), input, hint ? h("p", { class: "hint", id: `m-${id}-hint` }, hint) : "") };
  };
  const fields = [
    field("name", "Name", { required: true }),
    field("segment", "Segment key", { required: true }),
    field("source", "CSV path or URL", { required: true }, "A cohort CSV export: a path on the server, or an http(s) URL."),
    field("destinations", "Destinations", { required: true }, "Destination names, separated by commas."),
    field("schedule", "Schedule", { value: "daily" }, "one-time, hourly, daily, or a 5-field cron expression."),
  ];
  const errors = h("div", { id: "create-mapping-errors" });
  const submit = h("button", { type: "submit" }, "Create mapping");
  const form = h("form", { class: "stack", "aria-labelledby": "create-mapping" }, fields.map(f => f.el), errors, h("div", {}, submit));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    errors.replaceChildren();
    for (const f of fields) {
      f.input.removeAttribute("aria-invalid");
      if (f.hint) f.input.setAttribute("aria-describedby", f.hint); else f.input.removeAttribute("aria-describedby");
    }
    const v = Object.fromEntries(fields.map(f => [f.id, f.input.value.trim()]));
    const body = { name: v.name, segment: v.segment, source: { csv: v.source },
      destinations: v.destinations.split(",").map(x => x.trim()).filter(Boolean), schedule: v.schedule || "daily" };
    try {
      await busy(submit, () => api.post("/mappings", body));
      say(`Mapping ${v.name} created`);
      await mappingsPage();
    } catch (e) {
      errors.replaceChildren(errorBox(e));
      const top = (e.field || "").split(/[.[]/)[0]; // source.csv → source, destinations[0] → destinations
      const f = fields.find(x => x.id === top);
      if (f) {
        // The field says it is wrong and why (the error is read with it).
        f.input.setAttribute("aria-invalid", "true");
        f.input.setAttribute("aria-describedby", [f.hint, "create-mapping-errors"].filter(Boolean).join(" "));
        f.input.focus();
      }
    }
  });
  return h("section", { "aria-labelledby": "create-mapping" }, h("h2", { id: "create-mapping" }, "Create a CSV mapping"), form);
}

// destinationsPage lists the destinations with the API's connection test
// (run for each on load) and the status SDKs would see.
async function destinationsPage() {
  page("Destinations");
  const s = section("All destinations");
  main.append(s.el);
  let rows, statuses = new Map();
  try {
    rows = (await api.get("/destinations?limit=500")).items || [];
  } catch (e) { s.fail(e); return; }
  try {
    statuses = new Map(((await api.get("/status")).destinations || []).map(d => [d.name, d]));
  } catch { /* the status column then says unknown; the connection test still runs */ }
  const cells = new Map(rows.map(d => [d.name, h("span", { "aria-live": "polite", "data-destination": d.name }, badge("info", "testing…"))]));
  const test = async d => {
    const cell = cells.get(d.name);
    cell.replaceChildren(badge("info", "testing…"));
    try {
      const res = await api.post(`/destinations/${api.enc(d.name)}/test`);
      cell.replaceChildren(res.status === "connected" ? badge("ok", "connected") : badge("bad", `not connected: ${res.error || res.status}`));
    } catch (e) {
      cell.replaceChildren(badge("bad", `not tested: ${e.message}`));
    }
  };
  // sdkStatus is what LaunchDarkly's SDKs would report of the destination
  // (the API's status): available or not, potentially stale, the last
  // sync, and the last problems met.
  const sdkStatus = d => {
    const st = statuses.get(d.name);
    if (!st) return "unknown";
    const synced = st.synchronized_on ? ` synced ${fmtAge((st.sync_age_ns || 0) / 1e9)} ago` : " never synced";
    return h("span", {},
      st.available ? badge("ok", "available") : badge("bad", `unavailable${st.error ? `: ${st.error}` : ""}`), " ",
      st.potentially_stale ? badge("warn", "potentially stale") : badge("ok", "fresh"),
      h("span", { class: "hint" }, synced),
      st.store_lost ? h("p", {}, badge("bad", `store lost ${fmtTime(st.store_lost)}`)) : "",
      (st.last_errors || []).length ? h("details", {}, h("summary", {}, `${st.last_errors.length} recent problems`),
        h("ul", {}, st.last_errors.map(e => h("li", {}, e.at ? `${fmtTime(e.at)} ` : "", `${e.kind.replace("_", " ")}: ${e.detail}`,
          e.run ? [" (run ", runLink(e.run, d.name), ")"] : "")))) : "");
  };
  s.fill(table("Destinations and their connection status", [
    { head: "Destination", cell: d => d.name },
    { head: "Environment", cell: d => d.environment },
    { head: "Redis", cell: d => d.redis.url || (d.redis.cluster_addrs || []).join(", ") },
    { head: "Key prefix", cell: d => d.key_prefix },
    { head: "Connection", cell: d => cells.get(d.name) },
    { head: "Status (as SDKs see it)", cell: sdkStatus },
    { head: "Actions", cell: d => h("button", { type: "button", class: "secondary", "aria-label": `Test the connection of ${d.name}`,
      onclick: ev => busy(ev.currentTarget, () => test(d)) }, "Test connection") },
  ], rows, "no destination yet"));
  await Promise.all(rows.map(test));
}

// plural picks one or many by n and puts n in place of %d.
const plural = (n, one, many) => (n === 1 ? one : many).replace("%d", num(n));

// sinceView tells since which run a member is in: the run that let it in
// (its start, trigger and state), or the API's note when that is unknown.
function sinceView(since, destination) {
  if (!since) return "—";
  if (!since.known || !since.run) return since.note || "unknown";
  return h("span", {}, runLink(since.run, destination),
    since.run_started ? ` (${fmtTime(since.run_started)}${since.run_trigger ? `, ${since.run_trigger}` : ""})` : "");
}

// lookupPage answers "is context K in segment S (since which run)" and
// "which segments is K in", in one destination.
async function lookupPage(params) {
  page("Membership lookup");
  const dest = h("select", { id: "l-destination", name: "destination", required: true });
  const key = h("input", { id: "l-key", name: "key", required: true, autocomplete: "off", value: params.get("key") || "" });
  const segment = h("input", { id: "l-segment", name: "segment", autocomplete: "off", value: params.get("segment") || "",
    "aria-describedby": "l-segment-hint" });
  const form = h("form", { class: "inline", "aria-label": "Look up a context" },
    h("div", {}, h("label", { for: "l-destination" }, "Destination"), dest),
    h("div", {}, h("label", { for: "l-key" }, "Context key"), key),
    h("div", {}, h("label", { for: "l-segment" }, "Segment (optional)"), segment,
      h("p", { class: "hint", id: "l-segment-hint" }, "Empty: every segment the context is in.")),
    h("button", { type: "submit" }, "Look up"));
  const out = h("div", { "aria-live": "polite" });
  main.append(form, out);
  try {
    const names = ((await api.get("/destinations?limit=500")).items || []).map(d => d.name);
    dest.replaceChildren(...names.map(n => h("option", { value: n, selected: n === params.get("destination") }, n)));
  } catch (e) { out.replaceChildren(errorBox(e)); return; }
  const inputs = { destination: dest, contextKey: key, context_key: key, key, segment };
  const run = async () => {
    for (const i of [dest, key, segment]) i.removeAttribute("aria-invalid");
    const d = dest.value, k = key.value.trim(), sg = segment.value.trim();
    out.replaceChildren(h("p", { class: "hint", role: "status" }, "Looking up…"));
    try {
      const m = await api.get(sg ? `/destinations/${api.enc(d)}/segments/${api.enc(sg)}/members/${api.enc(k)}` :
        `/destinations/${api.enc(d)}/contexts/${api.enc(k)}/segments`);
      const rows = m.segments || [];
      const answer = sg ? `${k} is ${m.member ? "" : "not "}a member of ${sg} in ${d}.` :
        plural(rows.filter(e => e.included && !e.excluded).length, `${k} is in %d segment of ${d}.`, `${k} is in %d segments of ${d}.`);
      out.replaceChildren(
        h("p", { class: "answer", role: "status" }, sg ? [badge(m.member ? "ok" : "info", m.member ? "member" : "not a member"), " "] : "", answer),
        table(`Membership of ${k} in ${d}`, [
          { head: "Segment", cell: e => segmentLink(e.segment, d) },
          { head: "Generation", num: true, cell: e => `${e.generation}${e.current ? "" : " (old)"}` },
          { head: "Source", cell: e => sourceMark(e.source, e.source_detail) },
          { head: "Member", cell: e => e.excluded ? badge("warn", "excluded") : e.included ? badge("ok", "yes") : badge("info", "no") },
          { head: "Since run", cell: e => sinceView(e.since, d) },
        ], rows, sg ? "the segment has no generation here" : "the context is in no segment"));
    } catch (e) {
      out.replaceChildren(errorBox(e));
      const i = inputs[e.field];
      if (i) { i.setAttribute("aria-invalid", "true"); i.focus(); }
    }
  };
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    history.replaceState(null, "", `#/lookup${api.query({ destination: dest.value, key: key.value.trim(), segment: segment.value.trim() })}`);
    run();
  });
  if (key.value && dest.value) run();
}

const routes = [
  [/^\/segments$/, () => segmentsPage()],
  [/^\/segments\/([^/]+)\/([^/]+)$/, m => segmentPage(decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
  [/^\/mappings$/, () => mappingsPage()],
  [/^\/destinations$/, () => destinationsPage()],
  [/^\/runs$/, (m, p) => runsPage(p)],
  [/^\/runs\/([^/]+)$/, (m, p) => runPage(decodeURIComponent(m[1]), p)],
  [/^\/lookup$/, (m, p) => lookupPage(p)],
];

async function render() {
  // The skip link's #main is no page: the current one stays, timers too.
  if (location.hash && !location.hash.startsWith("#/")) return;
  stopTimers();
  generation++;
  if (!api.token()) { loginPage(); return; }
  if (nav.hidden) {
    try { await identify(); } catch (e) {
      api.clearToken();
      loginPage(e);
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
      try { await fn(m, params); } catch (e) { main.append(errorBox(e)); }
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
window.addEventListener("cohortsync:unauthorized", ev => {
  api.clearToken();
  role = "";
  stopTimers();
  generation++;
  loginPage(ev.detail);
});
window.addEventListener("hashchange", render);
// A first visit (or a reload after the skip link) starts at the segments.
if (!location.hash.startsWith("#/")) history.replaceState(null, "", "#/segments");
render();
