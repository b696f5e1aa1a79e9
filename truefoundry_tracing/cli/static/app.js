// The local trace viewer. Everything shown comes from /api/* as JSON; text is inserted
// with textContent only, so span attributes can never inject markup.
"use strict";

const POLL_MS = 1000;
const state = { listVersion: -1, traceId: null, traceVersion: -1, selected: null, trace: null };

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
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function ms(value) {
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

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(url + ": " + response.status);
  return response.json();
}

// -- trace list ------------------------------------------------------------------------------

function renderList(data) {
  const body = document.querySelector("#trace-list tbody");
  body.replaceChildren(
    ...data.traces.map((t) =>
      el(
        "tr",
        {
          class: "trace-row" + (t.errors ? " has-error" : ""),
          "data-trace-id": t.trace_id,
          tabindex: 0,
          onclick: () => (location.hash = "#/trace/" + t.trace_id),
          onkeydown: (e) => e.key === "Enter" && (location.hash = "#/trace/" + t.trace_id),
        },
        el("td", { class: "name" }, el("span", { text: t.root_name || "(no root span)" }),
          el("small", { text: t.trace_id.slice(0, 8) })),
        el("td", { text: t.app || "-" }),
        el("td", { class: "num", text: ms(t.duration_ms) }),
        el("td", { class: "num", text: t.span_count }),
        el("td", { class: "num errors", text: t.errors || "" }),
        el("td", { class: "num", text: t.tokens || "" }),
        el("td", { class: "num", text: ago(t.start_ns) }),
      ),
    ),
  );
  document.getElementById("empty").hidden = data.traces.length > 0;
}

// -- one trace -------------------------------------------------------------------------------

function kindBadge(kind) {
  return el("span", { class: "kind kind-" + kind.replace(/[^a-z]/g, ""), text: kind });
}

function renderTrace(doc) {
  state.trace = doc;
  const root = doc.spans[0];
  document.getElementById("trace-title").textContent = root ? root.name : doc.trace_id;
  const errors = doc.spans.filter((s) => s.status === "ERROR").length;
  document.getElementById("trace-meta").textContent =
    `${root ? root.service : ""} · ${ms(doc.duration_ms)} · ${doc.spans.length} spans` +
    (errors ? ` · ${errors} errors` : "") + ` · ${doc.trace_id}`;
  const total = doc.duration_ms || 1;
  const rows = doc.spans.map((span) => {
    const left = (span.offset_ms / total) * 100;
    const width = Math.max(0.4, (span.duration_ms / total) * 100);
    const llm = span.llm;
    return el(
      "div",
      {
        class: "span-row" + (span.status === "ERROR" ? " error" : "") +
          (state.selected === span.span_id ? " selected" : ""),
        role: "treeitem",
        "aria-level": span.depth + 1,
        "data-span-id": span.span_id,
        "data-kind": span.kind,
        tabindex: 0,
        onclick: () => select(span.span_id),
        onkeydown: (e) => e.key === "Enter" && select(span.span_id),
      },
      el("div", { class: "label", style: { paddingLeft: 0.2 + span.depth * 1.1 + "em" } },
        el("span", { class: "span-name", text: span.name }), kindBadge(span.kind),
        llm && llm.model ? el("small", { text: llm.model }) : null),
      el("div", { class: "lane" },
        el("div", {
          class: "bar bar-" + span.kind.replace(/[^a-z]/g, ""),
          style: { left: left + "%", width: Math.min(width, 100 - left) + "%" },
          title: `${span.name}: starts at ${ms(span.offset_ms)}, takes ${ms(span.duration_ms)}`,
        }),
        el("span", { class: "dur", text: ms(span.duration_ms) })),
    );
  });
  document.getElementById("waterfall").replaceChildren(
    el("div", { class: "axis" }, el("span", { text: "0" }), el("span", { text: ms(total) })),
    ...rows,
  );
  const keep = doc.spans.find((s) => s.span_id === state.selected);
  const pick = keep || doc.spans.find((s) => s.llm) || root;
  if (pick) select(pick.span_id);
}

function select(spanId) {
  state.selected = spanId;
  for (const row of document.querySelectorAll(".span-row")) {
    row.classList.toggle("selected", row.dataset.spanId === spanId);
  }
  const span = state.trace && state.trace.spans.find((s) => s.span_id === spanId);
  if (span) renderDetails(span);
}

function table(obj, cls) {
  const keys = Object.keys(obj);
  if (!keys.length) return el("p", { class: "empty", text: "none" });
  return el("table", { class: "attrs " + (cls || "") },
    el("tbody", {}, keys.map((key) => {
      const value = obj[key];
      const text = typeof value === "string" ? value : JSON.stringify(value);
      return el("tr", {}, el("th", { text: key }), el("td", {}, el("pre", { text })));
    })));
}

function message(m) {
  const calls = (m.tool_calls || []).map((c) =>
    el("div", { class: "tool-call" }, el("b", { text: "tool call " }),
      el("code", { text: `${c.name}(${typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments)})` })));
  return el("div", { class: "msg role-" + String(m.role).replace(/[^a-z]/g, ""), "data-role": m.role },
    el("div", { class: "role", text: m.role + (m.finish_reason ? ` · ${m.finish_reason}` : "") }),
    m.content !== null && m.content !== undefined ? el("div", { class: "content", text: m.content }) : null,
    calls);
}

function chat(llm) {
  const facts = [
    ["model", llm.model], ["operation", llm.operation], ["provider", llm.system],
    ["input tokens", llm.input_tokens], ["output tokens", llm.output_tokens],
    ["total tokens", llm.total_tokens],
    ["streaming", llm.streaming === null ? null : llm.streaming ? "yes" : "no"],
    ["finish", (llm.finish_reasons || []).join(", ") || null],
  ].filter(([, v]) => v !== null && v !== undefined);
  return el("div", { class: "chat" },
    el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
    el("div", { class: "messages" },
      llm.input_messages.map(message),
      llm.output_messages.length ? el("div", { class: "divider", text: "response" }) : null,
      llm.output_messages.map(message)));
}

function renderDetails(span) {
  const box = document.getElementById("details");
  box.replaceChildren(
    el("h2", {}, span.name, " ", kindBadge(span.kind)),
    el("p", { class: "meta", text:
      `${ms(span.duration_ms)} · starts at ${ms(span.offset_ms)} · ${span.otel_kind} · status ${span.status}` +
      (span.status_message ? `: ${span.status_message}` : "") }),
    span.llm ? el("section", { class: "llm" }, el("h3", { text: "LLM call" }), chat(span.llm)) : null,
    el("h3", { text: "Attributes" }), table(span.attributes, "span-attributes"),
    span.events.length ? el("h3", { text: "Events" }) : null,
    span.events.map((e) => el("div", { class: "event" },
      el("b", { text: `${e.name} at ${ms(e.offset_ms)}` }), table(e.attributes))),
    el("h3", { text: "Resource" }), table(span.resource),
    el("p", { class: "ids", text: `span ${span.span_id}` + (span.parent_id ? ` · parent ${span.parent_id}` : "") +
      (span.scope ? ` · scope ${span.scope}` : "") }),
  );
}

// -- routing and polling ---------------------------------------------------------------------

async function refreshStatus() {
  const status = await getJSON("/api/status");
  const notes = [];
  if (status.missing_authorization) notes.push(`${status.missing_authorization} request(s) without Authorization`);
  if (status.missing_project) notes.push(`${status.missing_project} without TFY-Tracing-Project`);
  if (status.rejected) notes.push(`${status.rejected} rejected`);
  document.getElementById("notices").textContent = notes.join(" · ");
  if (status.host_hint) document.getElementById("hint-host").textContent = status.host_hint;
}

async function tick() {
  const live = document.getElementById("live");
  try {
    if (state.traceId) {
      const doc = await getJSON("/api/traces/" + state.traceId);
      if (doc.version !== state.traceVersion) {
        state.traceVersion = doc.version;
        renderTrace(doc);
      }
    } else {
      const data = await getJSON("/api/traces?limit=200");
      if (data.version !== state.listVersion) {
        state.listVersion = data.version;
        renderList(data);
      }
    }
    await refreshStatus();
    live.classList.remove("down");
    live.textContent = "live";
  } catch (err) {
    live.classList.add("down");
    live.textContent = "server unreachable";
  }
}

function route() {
  const match = location.hash.match(/^#\/trace\/([0-9a-f]{1,32})$/);
  state.traceId = match ? match[1] : null;
  state.traceVersion = -1;
  state.listVersion = -1;
  if (!match) state.selected = null;
  document.getElementById("list-view").hidden = !!match;
  document.getElementById("trace-view").hidden = !match;
  tick();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  route();
  setInterval(tick, POLL_MS);
});
