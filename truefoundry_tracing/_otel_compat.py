"""Every use of the OpenTelemetry SDK's private attributes, in one place.

The pipeline rewrites finished spans (redaction) and reads its batch processors' queues (to
count what a timed-out shutdown leaves behind); the decorators use the runtime context's
``ContextVar`` directly. The SDK has no public API for these. Each access is a small function
here, and ``tests/test_otel_compat.py`` pins every one of them against the installed SDK, so a
new OpenTelemetry release that moves one fails one named test instead of breaking tracing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "QUEUE_FULL_LOGGER",
    "batch_parts",
    "batch_shutdown",
    "context_var",
    "own_attributes",
    "plain_attributes",
    "replace_attributes",
    "replace_events",
    "replace_parent",
    "replace_status",
    "set_resource",
    "slim_finished",
]

#: The logger OpenTelemetry's batch processor warns "Queue full, dropping Span." through.
QUEUE_FULL_LOGGER = "opentelemetry.sdk._shared_internal"


def own_attributes(span: Any) -> Any:
    """The mutable attribute mapping of a span being started (read without a copy)."""
    return span._attributes


def plain_attributes(span: Any) -> Any:
    """A span's attributes as the plain dict inside ``BoundedAttributes`` (live while the span
    runs: later ``set_attribute`` calls show in it).

    Iterating the public read-only view costs more than the redaction done with it.
    """
    attrs = span._attributes
    return getattr(attrs, "_dict", attrs)


def replace_attributes(span: Any, attributes: dict[str, Any]) -> None:
    """Give a finished span new attributes (the public setter refuses once it has ended)."""
    span._attributes = attributes


def slim_finished(span: Any) -> Any:
    """Let a finished span drop the empty containers it was born with; return its attributes.

    Every span starts with an events list and a links list (a ``deque`` and a lock each, about
    1.5 KB together when empty) and keeps its attributes in a ``BoundedAttributes`` (a lock
    and a counter around a dict). Once it has ended none of them can change, so empty lists
    become empty tuples and the attributes the plain dict inside: a span waiting in an export
    queue weighs about 0.8 KB instead of 2.9 KB. Kept as they are when OpenTelemetry counted
    something dropped there (``dropped_events`` and the like read those counts). Returns the
    attributes as a plain mapping (see :func:`plain_attributes`).
    """
    events = span._events
    if not getattr(events, "_dq", True) and not events.dropped:
        span._events = ()
    links = span._links
    if not getattr(links, "_dq", True) and not links.dropped:
        span._links = ()
    attrs = span._attributes
    plain = getattr(attrs, "_dict", attrs)
    if plain is not attrs and not attrs.dropped:
        span._attributes = plain
    return plain


def replace_events(span: Any, events: tuple[Any, ...]) -> None:
    """Give a finished span new events."""
    span._events = events


def replace_status(span: Any, status: Any) -> None:
    """Give a finished span a new status (its description rewritten)."""
    span._status = status


def replace_parent(span: Any, parent: Any) -> None:
    """Re-parent a span that is starting now (``parent`` is a ``SpanContext`` or None)."""
    span._parent = parent


def set_resource(span: Any, resource: Any) -> None:
    """Make a span starting now carry ``resource`` (a re-``init()`` with a new app name)."""
    span._resource = resource


def batch_parts(processor: Any) -> tuple[Any, Any]:
    """The exporter behind one of our processors and its queue (or None): batch or simple."""
    inner = getattr(processor, "_batch_processor", processor)
    exporter = getattr(inner, "_exporter", None) or getattr(processor, "span_exporter", None)
    queue = getattr(inner, "_queue", None)
    return exporter, queue


def batch_shutdown(processor: Any) -> Any:
    """The batch processor's own ``shutdown(timeout_millis)``, which the public one lacks."""
    inner = getattr(processor, "_batch_processor", None)
    return getattr(inner, "shutdown", None) if inner is not None else None


def context_var(context_api: Any) -> Any:
    """The ``ContextVar`` behind OpenTelemetry's default runtime context, or None.

    None when another runtime context is configured (``OTEL_PYTHON_CONTEXT``): callers then
    keep to the public functions of ``opentelemetry.context``.
    """
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    if type(runtime) is not ContextVarsRuntimeContext:
        return None
    return getattr(runtime, "_current_context", None)
