"""Each OpenTelemetry SDK private this library relies on, pinned against the installed SDK.

All of them are reached through ``truefoundry_tracing._otel_compat``; a test here fails, by
name, when an OpenTelemetry release moves one, instead of tracing breaking quietly.
"""

from __future__ import annotations

import importlib.metadata
import logging

import pytest
from opentelemetry import context as context_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from truefoundry_tracing import _otel_compat as compat

SDK = importlib.metadata.version("opentelemetry-sdk")


@pytest.fixture
def provider() -> TracerProvider:
    return TracerProvider()


def test_installed_sdk_is_a_supported_one() -> None:
    major, minor = (int(x) for x in SDK.split(".")[:2])
    assert (major, minor) >= (1, 26), SDK


def test_own_attributes_is_the_live_mapping_of_a_starting_span(provider: TracerProvider) -> None:
    span = provider.get_tracer("t").start_span("s", attributes={"a": 1})
    own = compat.own_attributes(span)
    span.set_attribute("b", 2)
    assert dict(own) == {"a": 1, "b": 2}
    span.end()


def test_a_finished_span_can_be_rewritten(provider: TracerProvider) -> None:
    span = provider.get_tracer("t").start_span("s", attributes={"secret": "x"})
    span.add_event("e", {"k": "v"})
    span.set_status(Status(StatusCode.ERROR, "boom"))
    span.end()
    plain = compat.plain_attributes(span)
    assert type(plain) is dict and plain == {"secret": "x"}  # the plain dict, not a view
    compat.replace_attributes(span, {"secret": "[REDACTED]"})
    compat.replace_events(span, (Event("e", {"k": "[REDACTED]"}, span.events[0].timestamp),))
    compat.replace_status(span, Status(StatusCode.ERROR, "[REDACTED]"))
    assert dict(span.attributes) == {"secret": "[REDACTED]"}
    assert dict(span.events[0].attributes or {}) == {"k": "[REDACTED]"}
    assert span.status.description == "[REDACTED]"
    assert span.to_json()  # still a valid ReadableSpan


def test_set_resource_changes_what_a_starting_span_carries(provider: TracerProvider) -> None:
    span = provider.get_tracer("t").start_span("s")
    compat.set_resource(span, Resource.create({"service.name": "renamed"}))
    span.end()
    assert span.resource.attributes["service.name"] == "renamed"


def test_replace_parent_moves_a_starting_span(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("t")
    outer = tracer.start_span("outer")
    middle = tracer.start_span("middle", context=set_span_in_context(outer))
    inner = tracer.start_span("inner", context=set_span_in_context(middle))
    compat.replace_parent(inner, outer.get_span_context())
    for span in (inner, middle, outer):
        span.end()
    assert inner.parent is not None and inner.parent.span_id == outer.get_span_context().span_id


def test_batch_parts_find_the_exporter_and_queue() -> None:
    exporter = InMemorySpanExporter()
    batch = BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    simple = SimpleSpanProcessor(exporter)
    try:
        found, queue = compat.batch_parts(batch)
        assert found is exporter
        assert queue is not None and len(queue) == 0
        assert compat.batch_parts(simple) == (exporter, None)
        bounded_shutdown = compat.batch_shutdown(batch)
        assert callable(bounded_shutdown)
        assert compat.batch_shutdown(simple) is None
    finally:
        batch.shutdown()


def test_the_runtime_context_var_is_the_one_opentelemetry_uses() -> None:
    var = compat.context_var(context_api)
    assert var is not None
    token = context_api.attach(context_api.set_value("probe", 1))
    try:
        assert var.get().get("probe") == 1
    finally:
        context_api.detach(token)


def test_the_queue_full_logger_is_the_batch_processors() -> None:
    from opentelemetry.sdk import _shared_internal

    assert _shared_internal._logger.name == compat.QUEUE_FULL_LOGGER
    assert logging.getLogger(compat.QUEUE_FULL_LOGGER) is _shared_internal._logger


def test_slim_finished_keeps_what_a_finished_span_reads(provider: TracerProvider) -> None:
    span = provider.get_tracer("t").start_span("s", attributes={"a": 1, "b": ("x", "y")})
    span.end()
    before = span.to_json()
    plain = compat.slim_finished(span)
    assert plain == {"a": 1, "b": ("x", "y")} and type(plain) is dict
    assert span.to_json() == before
    assert dict(span.attributes) == plain and span.events == () and span.links == ()
    assert (span.dropped_attributes, span.dropped_events, span.dropped_links) == (0, 0, 0)


def test_slim_finished_leaves_what_holds_something_or_counted_drops() -> None:
    from opentelemetry.sdk.trace import SpanLimits

    limited = TracerProvider(span_limits=SpanLimits(max_attributes=1))
    span = limited.get_tracer("t").start_span("s", attributes={"a": 1, "b": 2})
    span.add_event("e")
    span.end()
    compat.slim_finished(span)
    assert span.dropped_attributes == 1  # the count lives on OpenTelemetry's container
    assert [e.name for e in span.events] == ["e"]


def test_plain_attributes_is_live_while_a_span_runs(provider: TracerProvider) -> None:
    span = provider.get_tracer("t").start_span("s", attributes={"a": 1})
    plain = compat.plain_attributes(span)
    span.set_attribute("b", 2)
    assert plain == {"a": 1, "b": 2}
    span.end()
