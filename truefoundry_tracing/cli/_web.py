"""The trace viewer's HTTP routes, served by ``serve`` on the same port as OTLP.

The page (``static/``) is plain HTML, CSS and JavaScript, with no build step and nothing
fetched from the internet. It reads JSON from these routes; the tree order, the span kinds and
the normalized LLM view are computed here, in Python, by the same code that renders the
console tree and powers the testing toolkit, so the page cannot disagree with them.
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
from .._render import kind_of
from .._server._httpd import HTTPReply
from ._store import Store

__all__ = ["WebRoutes", "span_tree_order", "trace_json"]

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
_TRACE_PATH = re.compile(r"^/api/traces/([0-9a-f]{1,32})$")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def span_tree_order(spans: list[SpanRecord]) -> list[tuple[SpanRecord, int]]:
    """Spans in display order (parents before children, siblings by start) with their depth.

    A span whose parent was not received is shown at depth 0.

    Example:
        >>> a = SpanRecord("root", "t", "a", start_ns=1)
        >>> b = SpanRecord("child", "t", "b", parent_id="a", start_ns=2)
        >>> [(s.name, d) for s, d in span_tree_order([b, a])]
        [('root', 0), ('child', 1)]
    """
    ids = {s.span_id for s in spans}
    children: dict[str, list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    for span in sorted(spans, key=lambda s: (s.start_ns, s.end_ns)):
        if span.parent_id and span.parent_id in ids and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    out: list[tuple[SpanRecord, int]] = []
    seen: set[str] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        out.append((span, depth))
        stack.extend((kid, depth + 1) for kid in reversed(children.get(span.span_id, [])))
    return out


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


def trace_json(spans: list[SpanRecord]) -> dict[str, Any]:
    """One trace as the page draws it: spans in tree order with depth, kind and LLM view.

    Example:
        >>> doc = trace_json([SpanRecord("root", "t", "a", start_ns=0, end_ns=2_000_000)])
        >>> doc["spans"][0]["name"], doc["spans"][0]["duration_ms"]
        ('root', 2.0)
    """
    start = min((s.start_ns for s in spans), default=0)
    end = max((s.end_ns for s in spans), default=0)
    rows = []
    for span, depth in span_tree_order(spans):
        rows.append(
            {
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": span.name,
                "depth": depth,
                "kind": kind_of(span),
                "otel_kind": span.kind,
                "status": span.status,
                "status_message": span.status_message,
                "offset_ms": max(0, span.start_ns - start) / 1e6,
                "duration_ms": span.duration_ms,
                "service": span.service_name,
                "scope": span.scope,
                "attributes": _jsonable(dict(sorted(span.attributes.items()))),
                "resource": _jsonable(dict(sorted(span.resource.items()))),
                "events": [
                    {
                        "name": e.name,
                        "offset_ms": max(0, e.timestamp_ns - start) / 1e6,
                        "attributes": _jsonable(dict(e.attributes)),
                    }
                    for e in span.events
                ],
                "llm": llm_view(span.attributes).as_dict()
                if is_llm_span(span.attributes)
                else None,
            }
        )
    return {
        "trace_id": spans[0].trace_id if spans else "",
        "start_ns": start,
        "duration_ms": max(0, end - start) / 1e6,
        "spans": rows,
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
            limit = _int(query.get("limit", ["100"])[0], 100, 1, 1000)
            return _json(
                {
                    "version": self._store.version(),
                    "traces": [t.as_dict() for t in self._store.traces(limit)],
                }
            )
        if path == "/api/status":
            extra = dict(self._status()) if self._status is not None else {}
            return _json({"version": self._store.version(), **extra})
        match = _TRACE_PATH.match(path)
        if match:
            found = self._store.find(match.group(1))
            if not found:
                return _json({"error": f"no trace {match.group(1)}"}, 404)
            doc = trace_json(self._store.spans(found[0]))
            doc["version"] = self._store.trace_version(found[0])
            return _json(doc)
        return None


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


def _json(payload: Any, status: int = 200) -> HTTPReply:
    body = json.dumps(_jsonable(payload), ensure_ascii=False, default=str).encode()
    return HTTPReply(status, body, "application/json; charset=utf-8", _SECURITY_HEADERS)


def _text(status: int, text: str) -> HTTPReply:
    return HTTPReply(status, text.encode(), "text/plain; charset=utf-8", _SECURITY_HEADERS)
