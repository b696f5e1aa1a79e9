"""Durable span storage for ``serve`` and ``show``: one SQLite file in the data directory.

Spans are keyed by (trace id, span id), so an exporter retrying a batch never duplicates
them. Every write bumps a sequence number; readers (the web page) poll it to learn that
something changed.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._llm import is_llm_span, llm_view
from .._model import SpanEvent, SpanRecord

__all__ = [
    "ASSOCIATION_PREFIX",
    "DB_NAME",
    "Store",
    "TraceQuery",
    "TraceSummary",
    "association_properties",
    "default_data_dir",
]

DB_NAME = "traces.sqlite3"
# Where traceloop and ``association_properties()`` put sessions, users and other properties.
ASSOCIATION_PREFIX = "traceloop.association.properties."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    service TEXT NOT NULL,
    scope TEXT NOT NULL,
    tokens INTEGER,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    resource TEXT NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE (trace_id, span_id) ON CONFLICT REPLACE
);
CREATE INDEX IF NOT EXISTS spans_by_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_by_parent ON spans (trace_id, parent_id);
"""


def default_data_dir() -> Path:
    """Where ``serve`` keeps its database unless ``--data`` says otherwise.

    ``$TFY_TRACING_DATA``, else ``$XDG_DATA_HOME/truefoundry-tracing``, else
    ``~/.local/share/truefoundry-tracing``.

    Example:
        >>> default_data_dir().name in ("truefoundry-tracing", "data") or True
        True
    """
    explicit = os.environ.get("TFY_TRACING_DATA", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME", "").strip() or os.path.join("~", ".local", "share")
    return Path(base).expanduser() / "truefoundry-tracing"


@dataclass(frozen=True)
class TraceSummary:
    """One row of the trace list: what the web page and ``show`` print for a trace."""

    trace_id: str
    root_name: str
    app: str
    start_ns: int
    end_ns: int
    span_count: int
    errors: int
    tokens: int
    seq: int
    error: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        """From the first span's start to the last span's end, in milliseconds."""
        return max(0, self.end_ns - self.start_ns) / 1e6

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the web page."""
        return {
            "trace_id": self.trace_id,
            "root_name": self.root_name,
            "app": self.app,
            "start_ns": self.start_ns,
            "duration_ms": self.duration_ms,
            "span_count": self.span_count,
            "errors": self.errors,
            "tokens": self.tokens,
            "seq": self.seq,
            "error": self.error,
            "properties": dict(self.properties),
        }


@dataclass(frozen=True)
class TraceQuery:
    """Which traces the list shows. A trace matches when, for each criterion given, one of
    its spans meets it (different spans may meet different criteria).

    ``text`` is found, case-insensitively for ASCII, in a span's name, status message,
    attributes (their JSON text) or events, or at the start of the trace id. ``status`` is
    ``"error"`` (a span failed) or ``"ok"`` (none did). ``attribute`` is ``"key"`` (present)
    or ``"key=value"`` (equal, compared as text). ``since_ns``/``until_ns`` bound the
    trace's start.

    Example:
        >>> TraceQuery(status="error", attribute="user_id=u-42").attribute_key_value()
        ('traceloop.association.properties.user_id', 'u-42')
    """

    text: str = ""
    name: str = ""
    status: str = ""
    app: str = ""
    attribute: str = ""
    since_ns: int | None = None
    until_ns: int | None = None

    def attribute_key_value(self) -> tuple[str, str | None]:
        """The attribute criterion split in key and value; a bare association property
        name (``user_id``) means ``traceloop.association.properties.user_id``."""
        key, sep, value = self.attribute.partition("=")
        key = key.strip()
        if key and "." not in key:
            key = ASSOCIATION_PREFIX + key
        return key, (value.strip() if sep else None)

    def where(self) -> tuple[str, list[Any], str, list[Any]]:
        """SQL conditions on spans (WHERE) and on grouped traces (HAVING), with parameters."""
        conds: list[str] = []
        params: list[Any] = []

        def spans_with(cond: str, *args: Any, negate: bool = False) -> None:
            conds.append(
                f"trace_id {'NOT ' if negate else ''}IN (SELECT trace_id FROM spans WHERE {cond})"
            )
            params.extend(args)

        if self.text.strip():
            like = _like(self.text.strip())
            spans_with(
                "name LIKE ? ESCAPE '\\' OR status_message LIKE ? ESCAPE '\\' "
                "OR attributes LIKE ? ESCAPE '\\' OR events LIKE ? ESCAPE '\\' "
                "OR trace_id LIKE ? ESCAPE '\\'",
                like, like, like, like, _like(self.text.strip().lower(), anywhere=False),
            )  # fmt: skip
        if self.name.strip():
            spans_with("name LIKE ? ESCAPE '\\'", _like(self.name.strip()))
        if self.status.lower() in ("error", "ok"):
            spans_with("status = 'ERROR'", negate=self.status.lower() == "ok")
        if self.app.strip():
            spans_with("service = ?", self.app.strip())
        key, value = self.attribute_key_value()
        if key:
            spans_with(
                "EXISTS (SELECT 1 FROM json_each(spans.attributes) AS a WHERE a.key = ? AND "
                "(? IS NULL OR (CASE a.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
                "ELSE CAST(a.value AS TEXT) END) = ?))",
                key, value, value,
            )  # fmt: skip
        having: list[str] = []
        having_params: list[Any] = []
        if self.since_ns is not None:
            having.append("MIN(start_ns) >= ?")
            having_params.append(int(self.since_ns))
        if self.until_ns is not None:
            having.append("MIN(start_ns) < ?")
            having_params.append(int(self.until_ns))
        return (
            " AND ".join(conds) or "1",
            params,
            " AND ".join(having) or "1",
            having_params,
        )


def _like(text: str, *, anywhere: bool = True) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if anywhere else f"{escaped}%"


def association_properties(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A span's association properties (session, user...), without the attribute prefix.

    Example:
        >>> association_properties({"traceloop.association.properties.user_id": "u-42"})
        {'user_id': 'u-42'}
    """
    return {
        key[len(ASSOCIATION_PREFIX) :]: value
        for key, value in attributes.items()
        if key.startswith(ASSOCIATION_PREFIX)
    }


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_encode(value), ensure_ascii=False, allow_nan=True)


def _tokens(span: SpanRecord) -> int | None:
    if not is_llm_span(span.attributes):
        return None
    view = llm_view(span.attributes)
    if view.total_tokens is not None:
        return view.total_tokens
    if view.input_tokens is None and view.output_tokens is None:
        return None
    return (view.input_tokens or 0) + (view.output_tokens or 0)


class Store:
    """Spans in a SQLite database, safe to share between the server's threads.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp, Store(tmp) as store:
        ...     _ = store.add([SpanRecord("hello", "a" * 32, "b" * 16, start_ns=1, end_ns=2)])
        ...     [s.root_name for s in store.traces()]
        ['hello']
    """

    def __init__(self, directory: str | os.PathLike[str], *, create: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(str(self.path))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    def close(self) -> None:
        """Close the database (further calls fail)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, spans: Iterable[SpanRecord], received_at: float = 0.0) -> int:
        """Store spans (replacing any with the same ids); return the new sequence number."""
        rows = [
            (
                s.trace_id,
                s.span_id,
                s.parent_id,
                s.name,
                int(s.start_ns),
                int(s.end_ns),
                s.kind,
                s.status,
                s.status_message,
                s.service_name,
                s.scope,
                _tokens(s),
                _dumps(dict(s.attributes)),
                _dumps([[e.name, e.timestamp_ns, dict(e.attributes)] for e in s.events]),
                _dumps(dict(s.resource)),
                received_at,
            )
            for s in spans
        ]
        with self._lock:
            with self._db:
                self._db.executemany(
                    "INSERT INTO spans (trace_id, span_id, parent_id, name, start_ns, end_ns, "
                    "kind, status, status_message, service, scope, tokens, attributes, events, "
                    "resource, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
            return self._version()

    def version(self) -> int:
        """The sequence number of the latest write (0 when empty)."""
        with self._lock:
            return self._version()

    def _version(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM spans").fetchone()
        return int(row[0])

    def traces(
        self, limit: int = 50, offset: int = 0, query: TraceQuery | None = None
    ) -> list[TraceSummary]:
        """The traces matching ``query``, newest first (by start, then by last write), from
        ``offset``.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp, Store(tmp) as store:
            ...     _ = store.add([SpanRecord("a", "1" * 32, "1" * 16, status="ERROR"),
            ...                    SpanRecord("b", "2" * 32, "2" * 16)])
            ...     [t.root_name for t in store.traces(query=TraceQuery(status="error"))]
            ['a']
        """
        where, params, having, having_params = (query or TraceQuery()).where()
        with self._lock:
            rows = self._db.execute(
                "SELECT trace_id, COUNT(*), MIN(start_ns), MAX(end_ns), "
                "SUM(status = 'ERROR'), COALESCE(SUM(tokens), 0), MAX(seq) "
                f"FROM spans WHERE {where} GROUP BY trace_id HAVING {having} "
                "ORDER BY MIN(start_ns) DESC, MAX(seq) DESC LIMIT ? OFFSET ?",
                (*params, *having_params, max(0, int(limit)), max(0, int(offset))),
            ).fetchall()
            return [self._summary(*row) for row in rows]

    def count(self, query: TraceQuery | None = None) -> int:
        """How many stored traces match ``query`` (all of them without one)."""
        where, params, having, having_params = (query or TraceQuery()).where()
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM (SELECT trace_id FROM spans WHERE {where} "
                f"GROUP BY trace_id HAVING {having})",
                (*params, *having_params),
            ).fetchone()
        return int(row[0])

    def apps(self) -> list[str]:
        """Every app (``service.name``) with stored spans, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT service FROM spans WHERE service != '' ORDER BY service"
            ).fetchall()
        return [r[0] for r in rows]

    def _summary(
        self, trace_id: str, count: int, start: int, end: int, errors: int | None,
        tokens: int | None, seq: int,
    ) -> TraceSummary:  # fmt: skip
        # The root: a span without a parent, else one whose parent was not received, else
        # (every span names a parent here: a parent cycle) the first span.
        # (A join on the (trace_id, span_id) index: a correlated subquery here took seconds
        # for a trace of 5,000 spans.)
        root = self._db.execute(
            "SELECT s.name, s.service FROM spans s LEFT JOIN spans p "
            "ON p.trace_id = s.trace_id AND p.span_id = s.parent_id WHERE s.trace_id = ? "
            "ORDER BY s.parent_id IS NOT NULL, p.span_id IS NOT NULL, s.start_ns LIMIT 1",
            (trace_id,),
        ).fetchone()
        failed = (
            # Where the trace failed: the first failed span with no failed child.
            self._db.execute(
                "SELECT s.name, s.status_message FROM spans s LEFT JOIN spans c "
                "ON c.trace_id = s.trace_id AND c.parent_id = s.span_id AND c.status = 'ERROR' "
                "WHERE s.trace_id = ? AND s.status = 'ERROR' AND c.seq IS NULL "
                "ORDER BY s.start_ns LIMIT 1",
                (trace_id,),
            ).fetchone()
            if errors
            else None
        )
        properties: dict[str, Any] = {}
        for (attrs,) in self._db.execute(
            "SELECT attributes FROM spans WHERE trace_id = ? AND attributes LIKE ? "
            "ORDER BY start_ns DESC LIMIT 50",
            (trace_id, "%" + ASSOCIATION_PREFIX + "%"),
        ):
            properties.update(association_properties(_decode(json.loads(attrs))))
        return TraceSummary(
            trace_id=trace_id,
            root_name=root[0] if root else "",
            app=root[1] if root else "",
            start_ns=int(start),
            end_ns=int(end),
            span_count=int(count),
            errors=int(errors or 0),
            tokens=int(tokens or 0),
            seq=int(seq),
            error=(f"{failed[0]}: {failed[1]}" if failed[1] else failed[0]) if failed else "",
            properties=properties,
        )

    def find(self, prefix: str) -> list[str]:
        """Trace ids starting with ``prefix`` (lowercase hex), most recent first."""
        clean = prefix.strip().lower()
        if not clean or any(c not in "0123456789abcdef" for c in clean):
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT trace_id FROM spans WHERE trace_id >= ? AND trace_id < ? "
                "GROUP BY trace_id ORDER BY MAX(seq) DESC",
                (clean, clean + "g"),
            ).fetchall()
        return [r[0] for r in rows]

    def spans(self, trace_id: str) -> list[SpanRecord]:
        """Every stored span of one trace, by start time."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, trace_id, span_id, parent_id, start_ns, end_ns, kind, status, "
                "status_message, attributes, events, resource, scope FROM spans "
                "WHERE trace_id = ? ORDER BY start_ns, seq",
                (trace_id,),
            ).fetchall()
        return [_record(row) for row in rows]

    def trace_version(self, trace_id: str) -> int:
        """The sequence number of the latest write to one trace (0 when unknown)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM spans WHERE trace_id = ?", (trace_id,)
            ).fetchone()
        return int(row[0])


def _record(row: Sequence[Any]) -> SpanRecord:
    (name, trace_id, span_id, parent_id, start, end, kind, status, message, attrs, events,
     resource, scope) = row  # fmt: skip
    return SpanRecord(
        name=name,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        start_ns=int(start),
        end_ns=int(end),
        kind=kind,
        status=status,
        status_message=message,
        attributes=_decode(json.loads(attrs)),
        events=tuple(SpanEvent(str(e[0]), int(e[1]), _decode(e[2])) for e in json.loads(events)),
        resource=_decode(json.loads(resource)),
        scope=scope,
    )
