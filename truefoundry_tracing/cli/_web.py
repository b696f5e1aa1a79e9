"""The trace viewer's HTTP routes, served by ``serve`` on the same port as OTLP.

The page (``static/``) is plain HTML, CSS and JavaScript, with no build step and nothing
fetched from the internet. It reads JSON from these routes; the tree order (the one
:class:`~truefoundry_tracing._render.SpanTree` builder), the span kinds, exceptions and the
normalized LLM view are computed here, in Python, by the same code that renders the console
tree and powers the testing toolkit, so the page cannot disagree with them.

Routes: ``/api/status`` (the store's version, polled by the page), ``/api/traces`` (one page
of the list: ``limit``, ``offset`` and the filters of :class:`~._store.TraceQuery` as ``q``,
``name``, ``status``, ``app``, ``attr``, ``since``, ``until``) and ``/api/traces/<id>`` (one
trace; with ``known=<version>`` an unchanged trace answers ``{"unchanged": true}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._config import is_loopback
from .._llm import is_llm_span, llm_view
from .._model import SpanRecord
from .._render import SpanTree, TreeRow, kind_of
from .._server._httpd import HTTPReply
from ._store import Store, TraceQuery, association_properties

__all__ = ["WebRoutes", "exception_of", "trace_json"]

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
_EXCEPTION_FIELDS = (
    ("type", "exception.type"),
    ("message", "exception.message"),
    ("stacktrace", "exception.stacktrace"),
)
_IO_ATTRIBUTES = (("input", "traceloop.entity.input"), ("output", "traceloop.entity.output"))
_MAX_NESTING = 40  # as in app.js: deeper structures are shown as text
_TRACE_PATH = re.compile(r"^/api/traces/([0-9a-f]{1,32})$")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value - value != 0:  # NaN and infinities are not JSON
        return str(value)
    return value


def exception_of(span: SpanRecord) -> dict[str, str] | None:
    """The exception a span recorded (type, message, stack trace), from its last
    ``exception`` event; None when it recorded none.

    Example:
        >>> from truefoundry_tracing._model import SpanEvent
        >>> event = SpanEvent("exception", 5, {"exception.type": "KeyError",
        ...                                    "exception.message": "'plan'"})
        >>> exception_of(SpanRecord("x", "t", "a", events=(event,)))
        {'type': 'KeyError', 'message': "'plan'"}
    """
    for event in reversed(span.events):
        if event.name == "exception":
            found = {
                field: str(event.attributes[key])
                for field, key in _EXCEPTION_FIELDS
                if event.attributes.get(key) not in (None, "")
            }
            return found or None
    return None


def _structured(value: Any) -> Any:
    """A task's input or output as data: JSON text parsed (unless nested deeper than the
    page draws), anything else as it is."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return value
    return parsed if _nesting(parsed) <= _MAX_NESTING else value


def _nesting(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            if deepest > _MAX_NESTING:
                break
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _span_json(row: TreeRow, start: int) -> dict[str, Any]:
    span = row.span
    attrs = span.attributes
    io = {key: _structured(attrs[attr]) for key, attr in _IO_ATTRIBUTES if attr in attrs}
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "depth": row.depth,
        "note": row.note,
        "kind": kind_of(span),
        "otel_kind": span.kind,
        "status": span.status,
        "status_message": span.status_message,
        "exception": exception_of(span),
        "offset_ms": max(0, span.start_ns - start) / 1e6,
        "duration_ms": span.duration_ms,
        "service": span.service_name,
        "scope": span.scope,
        "io": _jsonable(io),
        "properties": _jsonable(association_properties(attrs)),
        "attributes": _jsonable(dict(sorted(attrs.items()))),
        "resource": _jsonable(dict(sorted(span.resource.items()))),
        "events": [
            {
                "name": e.name,
                "offset_ms": max(0, e.timestamp_ns - start) / 1e6,
                "attributes": _jsonable(dict(e.attributes)),
            }
            for e in span.events
        ],
        "llm": _jsonable(llm_view(attrs).as_dict()) if is_llm_span(attrs) else None,
    }


def trace_json(spans: list[SpanRecord]) -> dict[str, Any]:
    """One trace as the page draws it: spans in tree order (the console tree's builder) with
    depth, kind, exception, task input and output, association properties and LLM view.

    Example:
        >>> doc = trace_json([SpanRecord("root", "t", "a", start_ns=0, end_ns=2_000_000)])
        >>> doc["spans"][0]["name"], doc["spans"][0]["duration_ms"]
        ('root', 2.0)
    """
    start = min((s.start_ns for s in spans), default=0)
    end = max((s.end_ns for s in spans), default=0)
    return {
        "trace_id": spans[0].trace_id if spans else "",
        "start_ns": start,
        "duration_ms": max(0, end - start) / 1e6,
        "spans": [_span_json(row, start) for row in SpanTree(spans).rows()],
    }


class WebRoutes:
    """Answers the viewer's requests; pass an instance as the receiver's ``other_routes``.

    ``status`` is called for ``/api/status`` and returns what the page shows in its header
    (for example, requests that came without an API key).
    """

    def __init__(
        self,
        store: Store,
        *,
        status: Callable[[], Mapping[str, Any]] | None = None,
        check_host: bool = True,
    ) -> None:
        self._store = store
        self._status = status
        self._check_host = check_host

    def __call__(self, method: str, target: str, headers: Mapping[str, str]) -> HTTPReply | None:
        parts = urlsplit(target)
        path = parts.path
        if method not in ("GET", "HEAD"):
            return None
        if self._check_host and not _host_is_loopback(headers.get("host", "")):
            # A page on another site reaching this port through DNS rebinding.
            return _text(403, "this viewer answers only to localhost addresses\n")
        static = _STATIC.get(path)
        if static is not None:
            body = resources.files(__package__).joinpath("static", static[0]).read_bytes()
            return HTTPReply(200, body, static[1], _SECURITY_HEADERS)
        query = parse_qs(parts.query)
        if path == "/api/traces":
            return _json(self._list(query))
        if path == "/api/status":
            extra = dict(self._status()) if self._status is not None else {}
            return _json({"version": self._store.version(), **extra})
        match = _TRACE_PATH.match(path)
        if match:
            found = self._store.find(match.group(1))
            if not found:
                return _json({"error": f"no trace {match.group(1)}"}, 404)
            version = self._store.trace_version(found[0])
            if _int(query.get("known", [""])[0], -1, -1, 1 << 62) == version:
                # The page has this version already: skip re-reading a large trace.
                return _json({"version": version, "unchanged": True})
            doc = trace_json(self._store.spans(found[0]))
            doc["version"] = version
            return _json(doc, clean=False)  # trace_json's output is JSON-ready
        return None

    def _list(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        def arg(name: str) -> str:
            return query.get(name, [""])[0]

        limit = _int(arg("limit"), 50, 1, 1000)
        offset = _int(arg("offset"), 0, 0, 1 << 62)
        wanted = TraceQuery(
            text=arg("q"),
            name=arg("name"),
            status=arg("status"),
            app=arg("app"),
            attribute=arg("attr"),
            since_ns=_int(arg("since"), 0, 0, 1 << 63) or None,
            until_ns=_int(arg("until"), 0, 0, 1 << 63) or None,
        )
        return {
            "version": self._store.version(),
            "total": self._store.count(wanted),
            "offset": offset,
            "limit": limit,
            "apps": self._store.apps(),
            "traces": [t.as_dict() for t in self._store.traces(limit, offset, wanted)],
        }


def _host_is_loopback(host: str) -> bool:
    """True when a Host header (``name[:port]``) names this machine."""
    name = host.strip()
    if name.startswith("["):
        name = name.split("]", 1)[0] + "]"
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    return is_loopback(name)


def _int(raw: str, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(raw)))
    except ValueError:
        return default


def _json(payload: Any, status: int = 200, *, clean: bool = True) -> HTTPReply:
    body = json.dumps(
        _jsonable(payload) if clean else payload, ensure_ascii=False, default=str
    ).encode()
    return HTTPReply(status, body, "application/json; charset=utf-8", _SECURITY_HEADERS)


def _text(status: int, text: str) -> HTTPReply:
    return HTTPReply(status, text.encode(), "text/plain; charset=utf-8", _SECURITY_HEADERS)
