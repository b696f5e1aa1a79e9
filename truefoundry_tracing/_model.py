"""A plain, immutable record of one finished span, whatever it came from.

The console tree, the testing toolkit, the CLI and the local viewer all read spans through
:class:`SpanRecord`, so they render the same thing whether a span was captured in memory
(an OpenTelemetry ``ReadableSpan``) or received over the wire (an OTLP protobuf or JSON body).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["SpanEvent", "SpanRecord", "record_from_readable", "records_from_otlp"]

AttrValue = Any

_KIND_NAMES = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
_STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}


@dataclass(frozen=True)
class SpanEvent:
    """An event recorded on a span (an exception, a streamed chunk, a log line)."""

    name: str
    timestamp_ns: int
    attributes: Mapping[str, AttrValue] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanRecord:
    """One finished span as plain data.

    Ids are lowercase hex strings (32 characters for a trace, 16 for a span); times are
    nanoseconds since the epoch. ``kind`` is the OpenTelemetry span kind name
    (``"INTERNAL"``, ``"CLIENT"``...); ``status`` is ``"UNSET"``, ``"OK"`` or ``"ERROR"``.

    Example:
        >>> rec = SpanRecord(name="joke.workflow", trace_id="0" * 31 + "1", span_id="0" * 15 + "1")
        >>> rec.duration_ms
        0.0
    """

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    kind: str = "INTERNAL"
    status: str = "UNSET"
    status_message: str = ""
    attributes: Mapping[str, AttrValue] = field(default_factory=dict)
    events: Sequence[SpanEvent] = ()
    resource: Mapping[str, AttrValue] = field(default_factory=dict)
    scope: str = ""

    @property
    def duration_ms(self) -> float:
        """Wall time between start and end, in milliseconds."""
        return max(0, self.end_ns - self.start_ns) / 1e6

    @property
    def service_name(self) -> str:
        """The ``service.name`` resource attribute (TrueFoundry's tracing application)."""
        return str(self.resource.get("service.name", ""))


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def record_from_readable(span: ReadableSpan) -> SpanRecord:
    """Convert an OpenTelemetry SDK ``ReadableSpan`` into a :class:`SpanRecord`."""
    ctx = span.get_span_context()
    parent = span.parent
    status = span.status
    return SpanRecord(
        name=span.name,
        trace_id=_hex(ctx.trace_id, 32) if ctx else "",
        span_id=_hex(ctx.span_id, 16) if ctx else "",
        parent_id=_hex(parent.span_id, 16) if parent is not None else None,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        kind=span.kind.name,
        status=status.status_code.name,
        status_message=status.description or "",
        attributes=dict(span.attributes or {}),
        events=tuple(
            SpanEvent(ev.name, ev.timestamp, dict(ev.attributes or {})) for ev in span.events
        ),
        resource=dict(span.resource.attributes) if span.resource is not None else {},
        scope=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )


def _any_value(value: AnyValue) -> AttrValue:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_any_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def _attrs(kvs: Iterable[Any]) -> dict[str, AttrValue]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def records_from_otlp(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    """Flatten a decoded OTLP ``ExportTraceServiceRequest`` into :class:`SpanRecord` objects."""
    out: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        resource = _attrs(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                out.append(
                    SpanRecord(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        kind=_KIND_NAMES.get(span.kind, "INTERNAL"),
                        status=_STATUS_NAMES.get(span.status.code, "UNSET"),
                        status_message=span.status.message,
                        attributes=_attrs(span.attributes),
                        events=tuple(
                            SpanEvent(ev.name, ev.time_unix_nano, _attrs(ev.attributes))
                            for ev in span.events
                        ),
                        resource=resource,
                        scope=scope,
                    )
                )
    return out
