// The local trace viewer. Everything shown comes from /api/* as JSON; text is inserted
// with textContent only, so span attributes can never inject markup. The server computes
// the tree (row order, depth, cycle notes) with the same builder as the console tree; this
// file only draws.
"use strict";

const POLL_MS = 1000;
const PAGE_SIZE = 50;
const MAX_INDENT = 24; // deeper rows stop indenting and show their depth instead
const MAX_NESTING = 40; // deeper input/output structures are shown as JSON text
const FILTERS = ["q", "status", "app", "attr", "time"];
const state = {
  version: -1, listKey: null, traceId: null, traceVersion: -1, selected: null, trace: null,
  query: {}, page: 0, collapsed: new Set(), find: "",
};

// Builds an element. Children may be nodes, strings, numbers or (nested) arrays of them;
// null, undefined and false are skipped, so nothing ever renders as "null" or "[object ...]".
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  fill(node, children, false);
  return node;
}

// Appends (or, with replace, sets) a node's children from the same kinds of values el takes.
function fill(node, children, replace = true) {
  const nodes = [];
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    nodes.push(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  if (replace) node.replaceChildren(...nodes);
  else node.append(...nodes);
}

function ms(value) {
  if (typeof value !== "number" || !isFinite(value)) return "";
  if (value >= 1000) return (value / 1000).toFixed(2) + " s";
  return value.toFixed(1) + " ms";
}

function ago(ns) {
  const seconds = Math.max(0, Date.now() / 1000 - ns / 1e9);
  if (seconds < 60) return Math.round(seconds) + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
  return new Date(ns / 1e6).toLocaleString();
}

// A value as one line of text: lists and objects as JSON, a missing value as "".
function plain(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function cssName(text) {
  return String(text || "").toLowerCase().replace(/[^a-z]/g, "");
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(url + ": " + response.status);
  return response.json();
}

// -- values: attributes, task inputs and outputs ---------------------------------------------

function scalar(value) {
  if (value === null || value === undefined) return el("span", { class: "nil", text: "(no value)" });
  if (typeof value === "string") {
    return value.includes("\n") || value.length > 80
      ? el("pre", { class: "str", text: value })
      : el("span", { class: "str", text: value });
  }
  return el("span", { class: "lit", text: String(value) });
}

// A JSON value as nested lists: objects as key/value rows, arrays as numbered items.
function structure(value, depth = 0) {
  if (value === null || typeof value !== "object") return scalar(value);
  if (depth >= MAX_NESTING) return el("pre", { class: "str", text: JSON.stringify(value) });
  if (Array.isArray(value)) {
    if (!value.length) return el("span", { class: "nil", text: "(empty list)" });
    return el("ol", { class: "arr", start: 0 },
      value.map((item) => el("li", {}, structure(item, depth + 1))));
  }
  const keys = Object.keys(value);
  if (!keys.length) return el("span", { class: "nil", text: "(empty)" });
  return el("dl", { class: "obj" },
    keys.map((key) => [el("dt", { text: key }), el("dd", {}, structure(value[key], depth + 1))]));
}

function table(obj, cls) {
  const keys = Object.keys(obj || {});
  if (!keys.length) return el("p", { class: "empty", text: "none" });
  return el("table", { class: "attrs " + (cls || "") },
    el("tbody", {}, keys.map((key) => {
      const value = obj[key];
      const cell = typeof value === "string" ? el("pre", { text: value }) : structure(value);
      return el("tr", {}, el("th", { text: key }), el("td", {}, cell));
    })));
}

function chips(properties, onPick) {
  return Object.entries(properties || {}).map(([key, raw]) => {
    const value = plain(raw);
    return el("button", {
      type: "button", class: "chip", title: `Show traces with ${key}=${value}`,
      onclick: (e) => { e.stopPropagation(); onPick(key, value); },
    }, el("span", { class: "chip-key", text: key }), " ", value);
  });
}

// -- trace list ------------------------------------------------------------------------------

function listURL() {
  const params = new URLSearchParams({ limit: PAGE_SIZE, offset: state.page * PAGE_SIZE });
  for (const key of ["q", "status", "app", "attr"]) {
    if (state.query[key]) params.set(key, state.query[key]);
  }
  const seconds = Number(state.query.time || 0);
  if (seconds > 0) params.set("since", String((Date.now() - seconds * 1000) * 1e6));
  return "/api/traces?" + params.toString();
}

function listHash(query, page) {
  const params = new URLSearchParams();
  for (const key of FILTERS) if (query[key]) params.set(key, query[key]);
  if (page) params.set("page", String(page + 1));
  const text = params.toString();
  return "#/" + (text ? "?" + text : "");
}

function setFilter(key, value) {
  location.hash = listHash({ ...state.query, [key]: value }, 0);
}

function renderList(data) {
  if (!data.traces.length && data.total && state.page > 0) {
    // A page past the end (fewer traces now, or an old address): go to the last page.
    location.hash = listHash(state.query, Math.floor((data.total - 1) / PAGE_SIZE));
    return;
  }
  const body = document.querySelector("#trace-list tbody");
  fill(body, data.traces.map((t) =>
    el("tr", {
      class: "trace-row" + (t.errors ? " has-error" : ""),
      "data-trace-id": t.trace_id,
      tabindex: 0,
      onclick: () => (location.hash = "#/trace/" + t.trace_id),
      onkeydown: (e) => e.key === "Enter" && (location.hash = "#/trace/" + t.trace_id),
    },
    el("td", { class: "name" },
      el("span", { text: t.root_name || "(no root span)" }),
      el("small", { text: t.trace_id.slice(0, 8) }),
      t.error ? el("div", { class: "trace-error", text: t.error }) : null),
    el("td", { text: t.app || "-" }),
    el("td", { class: "props" }, chips(t.properties, (k, v) => setFilter("attr", `${k}=${v}`))),
    el("td", { class: "num", text: ms(t.duration_ms) }),
    el("td", { class: "num", text: t.span_count }),
    el("td", { class: "num errors", text: t.errors || "" }),
    el("td", { class: "num", text: t.tokens || "" }),
    el("td", { class: "num", text: ago(t.start_ns) })),
  ));
  const filtered = FILTERS.some((key) => state.query[key]);
  document.getElementById("empty").hidden = data.total > 0 || filtered;
  document.getElementById("no-match").hidden = data.total > 0 || !filtered;
  const first = data.total ? data.offset + 1 : 0;
  const last = data.offset + data.traces.length;
  document.getElementById("page-info").textContent =
    `${first.toLocaleString("en")}-${last.toLocaleString("en")} of ${data.total.toLocaleString("en")} traces`;
  document.getElementById("newer").disabled = data.offset <= 0;
  document.getElementById("older").disabled = last >= data.total;
  const apps = document.getElementById("f-app");
  const wanted = ["", ...data.apps];
  if (state.query.app && !wanted.includes(state.query.app)) wanted.push(state.query.app);
  if ([...apps.options].map((o) => o.value).join("\n") !== wanted.join("\n")) {
    fill(apps, wanted.map((app) => el("option", { value: app, text: app || "any app" })));
  }
  apps.value = state.query.app || "";
}

function readFilters() {
  const query = {};
  for (const key of FILTERS) {
    const value = document.getElementById("f-" + key).value.trim();
    if (value) query[key] = value;
  }
  return query;
}

function showFilters() {
  for (const key of FILTERS) {
    const input = document.getElementById("f-" + key);
    if (document.activeElement !== input) input.value = state.query[key] || "";
  }
}

// -- one trace -------------------------------------------------------------------------------

function kindBadge(kind) {
  return el("span", { class: "kind kind-" + cssName(kind), text: kind });
}

function statusBadge(status) {
  if (status !== "ERROR" && status !== "OK") return null;
  return el("span", { class: "status status-" + cssName(status), text: status === "ERROR" ? "error" : "ok" });
}

// The span a failing trace opens on: the deepest failed span under the first failure.
function firstFailure(spans) {
  const start = spans.findIndex((s) => s.status === "ERROR");
  if (start < 0) return null;
  let best = spans[start];
  for (let i = start + 1; i < spans.length && spans[i].depth > spans[start].depth; i++) {
    if (spans[i].status === "ERROR" && spans[i].depth > best.depth) best = spans[i];
  }
  return best;
}

function renderTrace(doc) {
  state.trace = doc;
  const root = doc.spans[0];
  document.getElementById("trace-title").textContent = root ? root.name : doc.trace_id;
  const errors = doc.spans.filter((s) => s.status === "ERROR").length;
  document.getElementById("trace-meta").textContent =
    [root && root.service, ms(doc.duration_ms), `${doc.spans.length.toLocaleString("en")} spans`,
      errors ? `${errors} failed` : null, doc.trace_id].filter(Boolean).join(" · ");
  drawWaterfall();
  const keep = doc.spans.find((s) => s.span_id === state.selected);
  const pick = keep || firstFailure(doc.spans) || doc.spans.find((s) => s.llm) || root;
  if (pick) select(pick.span_id);
}

function drawWaterfall() {
  const doc = state.trace;
  const total = doc.duration_ms || 1;
  const rows = [];
  let hideBelow = Infinity; // rows deeper than this are inside a collapsed span
  doc.spans.forEach((span, i) => {
    if (span.depth > hideBelow) return;
    hideBelow = Infinity;
    const next = doc.spans[i + 1];
    const parent = !!next && next.depth > span.depth;
    const collapsed = parent && state.collapsed.has(span.span_id);
    if (collapsed) hideBelow = span.depth;
    rows.push(spanRow(span, total, parent, collapsed));
  });
  fill(document.getElementById("waterfall"), [
    el("div", { class: "axis" }, el("span", { text: "0" }), el("span", { text: ms(total) })),
    rows,
  ]);
  markFound();
}

function spanRow(span, total, parent, collapsed) {
  const left = Math.min(100, (span.offset_ms / total) * 100);
  const width = Math.max(0.2, Math.min((span.duration_ms / total) * 100, 100 - left));
  const llm = span.llm;
  const indent = Math.min(span.depth, MAX_INDENT);
  return el("div", {
    class: "span-row" + (span.status === "ERROR" ? " error" : "") +
      (state.selected === span.span_id ? " selected" : ""),
    role: "treeitem",
    "aria-level": span.depth + 1,
    "aria-expanded": parent ? String(!collapsed) : null,
    "data-span-id": span.span_id,
    "data-kind": span.kind,
    tabindex: 0,
    onclick: () => select(span.span_id),
    onkeydown: (e) => e.key === "Enter" && select(span.span_id),
  },
  // Indent by depth, but never past a third of the name column, so the name always shows.
  el("div", { class: "label", style: { paddingLeft: `min(${0.2 + indent * 1.1}em, 33%)` } },
    parent
      ? el("button", {
        type: "button", class: "toggle", text: collapsed ? "▸" : "▾",
        title: collapsed ? "Show the spans under this one" : "Hide the spans under this one",
        onclick: (e) => { e.stopPropagation(); toggle(span.span_id); },
      })
      : el("span", { class: "toggle-space" }),
    span.depth > MAX_INDENT ? el("span", { class: "depth", text: `depth ${span.depth}` }) : null,
    el("span", { class: "span-name", text: span.name }), kindBadge(span.kind),
    span.note ? el("span", { class: "note", text: span.note, title: "This span names a parent that would make a loop; it is drawn as a root." }) : null,
    llm && llm.model ? el("small", { text: llm.model }) : null),
  el("div", { class: "lane" },
    el("div", {
      class: "bar bar-" + cssName(span.kind),
      style: { left: left + "%", width: width + "%" },
      title: `${span.name}: starts at ${ms(span.offset_ms)}, takes ${ms(span.duration_ms)}`,
    })),
  el("span", { class: "dur", text: ms(span.duration_ms) }));
}

function toggle(spanId) {
  if (state.collapsed.has(spanId)) state.collapsed.delete(spanId);
  else state.collapsed.add(spanId);
  drawWaterfall();
}

function select(spanId) {
  state.selected = spanId;
  for (const row of document.querySelectorAll(".span-row.selected")) row.classList.remove("selected");
  const row = document.querySelector(`.span-row[data-span-id="${CSS.escape(spanId)}"]`);
  if (row) row.classList.add("selected");
  const span = state.trace && state.trace.spans.find((s) => s.span_id === spanId);
  if (span) renderDetails(span);
}

// -- finding spans in a trace ----------------------------------------------------------------

function haystack(span) {
  if (span._text === undefined) {
    span._text = [span.name, span.kind, span.status, span.status_message,
      JSON.stringify(span.attributes), JSON.stringify(span.events)].join("\n").toLowerCase();
  }
  return span._text;
}

function found() {
  const needle = state.find.toLowerCase();
  return needle ? state.trace.spans.filter((s) => haystack(s).includes(needle)) : [];
}

function markFound() {
  const ids = new Set(found().map((s) => s.span_id));
  for (const row of document.querySelectorAll(".span-row")) {
    row.classList.toggle("found", ids.has(row.dataset.spanId));
  }
  document.getElementById("find-info").textContent = state.find
    ? `${ids.size.toLocaleString("en")} of ${state.trace.spans.length.toLocaleString("en")} spans match`
    : "";
}

function findNext() {
  const hits = found();
  if (!hits.length) return;
  const at = hits.findIndex((s) => s.span_id === state.selected);
  const next = hits[(at + 1) % hits.length];
  // Open collapsed spans above the hit so it can be shown.
  const spans = state.trace.spans;
  let depth = next.depth;
  for (let i = spans.indexOf(next) - 1; i >= 0 && depth > 0; i--) {
    if (spans[i].depth < depth) {
      state.collapsed.delete(spans[i].span_id);
      depth = spans[i].depth;
    }
  }
  drawWaterfall();
  select(next.span_id);
  const row = document.querySelector(`.span-row[data-span-id="${CSS.escape(next.span_id)}"]`);
  if (row) row.scrollIntoView({ block: "center" });
}

// -- the side panel --------------------------------------------------------------------------

function message(m) {
  const calls = (m.tool_calls || []).map((c) =>
    el("div", { class: "tool-call" }, el("b", { text: "tool call " }),
      el("code", { text: `${c.name}(${typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments ?? {})})` })));
  return el("div", { class: "msg role-" + cssName(m.role), "data-role": m.role },
    el("div", { class: "role", text: String(m.role ?? "message") + (m.finish_reason ? ` · ${m.finish_reason}` : "") }),
    m.content !== null && m.content !== undefined
      ? el("div", { class: "content" }, typeof m.content === "string" ? m.content : structure(m.content))
      : null,
    calls);
}

function facts(pairs) {
  const shown = pairs.filter(([, v]) => plain(v) !== "");
  if (!shown.length) return null;
  return el("dl", { class: "facts" }, shown.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: plain(v) })]));
}

function chat(llm) {
  return el("div", { class: "chat" },
    facts([
      ["model", llm.model], ["operation", llm.operation], ["provider", llm.system],
      ["input tokens", llm.input_tokens], ["output tokens", llm.output_tokens],
      ["total tokens", llm.total_tokens],
      ["streaming", llm.streaming === null || llm.streaming === undefined ? null : llm.streaming ? "yes" : "no"],
      ["finish", (llm.finish_reasons || []).join(", ")],
    ]),
    el("div", { class: "messages" },
      (llm.input_messages || []).map(message),
      (llm.output_messages || []).length ? el("div", { class: "divider", text: "response" }) : null,
      (llm.output_messages || []).map(message)));
}

function failure(span) {
  const exc = span.exception;
  if (span.status !== "ERROR" && !exc) return null;
  return el("section", { class: "failure" },
    el("h3", { text: span.status === "ERROR" ? "Failed" : "Exception recorded" }),
    span.status_message ? el("p", { class: "status-message", text: span.status_message }) : null,
    exc && (exc.type || exc.message)
      ? el("p", { class: "exception" }, el("b", { class: "exc-type", text: exc.type || "Exception" }),
        exc.message ? [": ", el("span", { class: "exc-message", text: exc.message })] : null)
      : null,
    exc && exc.stacktrace ? el("pre", { class: "stack", text: exc.stacktrace }) : null,
    !exc && span.status === "ERROR"
      ? el("p", { class: "empty", text: "No exception was recorded on this span." })
      : null);
}

function eventBlock(e) {
  const attrs = e.attributes || {};
  const rest = { ...attrs };
  if (e.name === "exception") delete rest["exception.stacktrace"];
  return el("div", { class: "event" },
    el("div", { class: "event-name", text: `${e.name} at ${ms(e.offset_ms)}` }),
    Object.keys(rest).length ? table(rest) : null,
    e.name === "exception" && attrs["exception.stacktrace"]
      ? el("details", {}, el("summary", { text: "stack trace" }), el("pre", { class: "stack", text: attrs["exception.stacktrace"] }))
      : null);
}

function renderDetails(span) {
  const io = span.io || {};
  fill(document.getElementById("details"), [
    el("h2", {}, el("span", { class: "detail-name", text: span.name }), " ", kindBadge(span.kind), " ", statusBadge(span.status)),
    el("p", { class: "meta", text:
      [ms(span.duration_ms), `starts at ${ms(span.offset_ms)}`, span.otel_kind, `status ${span.status}`, span.service]
        .filter(Boolean).join(" · ") }),
    span.note ? el("p", { class: "note-text", text: `Drawn as a root: ${span.note === "own parent" ? "this span names itself as its parent" : "its parent chain loops back to it"}.` }) : null,
    failure(span),
    Object.keys(span.properties || {}).length
      ? [el("h3", { text: "Session and properties" }), facts(Object.entries(span.properties))]
      : null,
    span.llm ? el("section", { class: "llm" }, el("h3", { text: "LLM call" }), chat(span.llm)) : null,
    "input" in io ? el("section", { class: "io io-input" }, el("h3", { text: "Input" }), structure(io.input)) : null,
    "output" in io ? el("section", { class: "io io-output" }, el("h3", { text: "Output" }), structure(io.output)) : null,
    el("h3", { text: "Attributes" }), table(span.attributes, "span-attributes"),
    span.events.length ? [el("h3", { text: "Events" }), el("div", { class: "events" }, span.events.map(eventBlock))] : null,
    el("h3", { text: "Resource" }), table(span.resource),
    el("p", { class: "ids", text: [`span ${span.span_id}`, span.parent_id ? `parent ${span.parent_id}` : null,
      span.scope ? `scope ${span.scope}` : null].filter(Boolean).join(" · ") }),
  ]);
}

// -- routing and polling ---------------------------------------------------------------------

function showStatus(status) {
  const notes = [];
  if (status.missing_authorization) notes.push(`${status.missing_authorization} request(s) without Authorization`);
  if (status.missing_project) notes.push(`${status.missing_project} without TFY-Tracing-Project`);
  if (status.rejected) notes.push(`${status.rejected} rejected`);
  document.getElementById("notices").textContent = notes.join(" · ");
  if (status.host_hint) document.getElementById("hint-host").textContent = status.host_hint;
}

// One poll at a time: a poll asked for while one runs (the timer, or a new address) runs
// right after it, so a large trace is never fetched twice at once.
let polling = false;
let pollAgain = false;

async function tick() {
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  try {
    await poll();
  } finally {
    polling = false;
    if (pollAgain) {
      pollAgain = false;
      tick();
    }
  }
}

async function poll() {
  const live = document.getElementById("live");
  try {
    const status = await getJSON("/api/status");
    showStatus(status);
    const changed = status.version !== state.version;
    state.version = status.version;
    if (state.traceId) {
      if (changed || state.traceVersion < 0) {
        const wanted = state.traceId;
        const doc = await getJSON(`/api/traces/${wanted}?known=${state.traceVersion}`);
        if (wanted === state.traceId && !doc.unchanged && doc.version !== state.traceVersion) {
          state.traceVersion = doc.version;
          renderTrace(doc);
        }
      }
    } else {
      // The list's address without the time bound, which moves with the clock (so lists
      // filtered by time are fetched on every poll).
      const key = listURL().split("&since=")[0];
      if (changed || key !== state.listKey || state.query.time) {
        const data = await getJSON(listURL());
        if (key === listURL().split("&since=")[0]) {
          state.listKey = key;
          renderList(data);
        }
      }
    }
    live.classList.remove("down");
    live.textContent = "live";
  } catch (err) {
    live.classList.add("down");
    if (err instanceof TypeError && String(err.message).includes("fetch")) {
      live.textContent = "server unreachable";
    } else {
      live.textContent = "error: " + err.message;
      console.error(err);
    }
  }
}

function route() {
  const match = location.hash.match(/^#\/trace\/([0-9a-f]{1,32})$/);
  if (match) {
    if (state.traceId !== match[1]) {
      // Another trace: nothing of the previous one stays on screen while this one loads.
      state.selected = null;
      state.trace = null;
      state.collapsed = new Set();
      state.find = "";
      document.getElementById("span-find").value = "";
      for (const id of ["trace-title", "trace-meta", "find-info"]) document.getElementById(id).textContent = "";
      fill(document.getElementById("waterfall"), el("p", { class: "empty", text: "Loading…" }));
      fill(document.getElementById("details"), el("p", { class: "empty", text: "Select a span." }));
    }
    state.traceId = match[1];
    state.traceVersion = -1;
  } else {
    state.traceId = null;
    const at = location.hash.indexOf("?");
    const params = new URLSearchParams(at < 0 ? "" : location.hash.slice(at + 1));
    state.query = {};
    for (const key of FILTERS) if (params.get(key)) state.query[key] = params.get(key);
    state.page = Math.max(0, (parseInt(params.get("page") || "1", 10) || 1) - 1);
    state.listKey = null;
    document.getElementById("back").setAttribute("href", listHash(state.query, state.page));
    showFilters();
  }
  document.getElementById("list-view").hidden = !!match;
  document.getElementById("trace-view").hidden = !match;
  tick();
}

function wire() {
  const form = document.getElementById("filters");
  let timer = null;
  const apply = () => {
    const hash = listHash(readFilters(), 0);
    if (hash !== location.hash) location.hash = hash;
  };
  form.addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(apply, e.target.tagName === "SELECT" ? 0 : 300);
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(timer); apply(); });
  document.getElementById("f-clear").addEventListener("click", () => {
    clearTimeout(timer);
    form.reset(); // now, so a filter picked before the address changes starts from nothing
    location.hash = "#/";
  });
  document.getElementById("newer").addEventListener("click", () => {
    location.hash = listHash(state.query, Math.max(0, state.page - 1));
  });
  document.getElementById("older").addEventListener("click", () => {
    location.hash = listHash(state.query, state.page + 1);
  });
  const find = document.getElementById("span-find");
  find.addEventListener("input", () => { state.find = find.value.trim(); if (state.trace) markFound(); });
  find.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); findNext(); } });
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  wire();
  route();
  setInterval(tick, POLL_MS);
});
