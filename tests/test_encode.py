"""``encode_request``: its bytes decode to what OpenTelemetry's own encoder builds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from truefoundry_tracing import _encode
from truefoundry_tracing._encode import encode_request


def decoded(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(encode_request(spans))


def assert_same_as_opentelemetry(spans: Sequence[ReadableSpan]) -> None:
    ours = decoded(spans)
    stock = encode_spans(spans)
    assert ours == stock
    # Byte for byte once both are in canonical field order (also compares NaN payloads).
    assert ours.SerializeToString(deterministic=True) == stock.SerializeToString(deterministic=True)


def record(
    provider: TracerProvider, fn: Any, scope: str = "tests", **scope_fields: Any
) -> list[ReadableSpan]:
    """Run ``fn(tracer)`` and return the spans it finished, in order."""
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fields = {"schema_url": "https://example.com/scope", **scope_fields}
    fn(provider.get_tracer(scope, "1.2.3", **fields))
    return list(exporter.get_finished_spans())


def test_every_span_field_matches_opentelemetry() -> None:
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value"), ("other", "x")]),
    )
    linked = SpanContext(0x1, 0x2, is_remote=True)

    def work(tracer: Any) -> None:
        with tracer.start_as_current_span(
            "root",
            context=set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.SERVER,
            attributes={"s": "text", "b": True, "i": -7, "f": 1.5, "t": ("a", "b")},
            links=[Link(linked, {"why": "retry"}), Link(SpanContext(0x3, 0x4, False))],
        ) as root:
            root.add_event("started", {"n": 1, "ok": False})
            root.add_event("bare")
            for kind in SpanKind:
                with tracer.start_as_current_span(f"child-{kind.name}", kind=kind) as child:
                    child.set_status(Status(StatusCode.OK))
            with tracer.start_as_current_span("fails") as failing:
                failing.set_status(Status(StatusCode.ERROR, "boom: it broke"))
                failing.record_exception(ValueError("bad value"))

    resource = Resource.create({"service.name": "svc", "n": 3}, schema_url="https://example.com/r")
    spans = record(TracerProvider(resource=resource), work)
    assert len(spans) == 7
    assert_same_as_opentelemetry(spans)
    request = decoded(spans)
    root = request.resource_spans[0].scope_spans[0].spans[-1]
    assert root.trace_state == "vendor=value,other=x"
    assert root.flags == 0x300  # the parent is remote, and that is known


def test_spans_are_grouped_by_resource_then_scope_as_opentelemetry_does() -> None:
    one = TracerProvider(resource=Resource.create({"service.name": "one"}))
    two = TracerProvider(resource=Resource.create({"service.name": "two"}))
    # A third provider whose resource is a different object equal to the first one's.
    same = TracerProvider(resource=Resource.create({"service.name": "one"}))
    spans: list[ReadableSpan] = []
    for provider in (one, two, same, one):
        spans += record(provider, lambda tracer: tracer.start_span("a").end())
        spans += record(
            provider,
            lambda tracer: tracer.start_span("b").end(),
            "other",
            attributes={"scope.attr": 1},
        )
    assert_same_as_opentelemetry(spans)
    request = decoded(spans)
    assert len(request.resource_spans) == 2
    assert [len(rs.scope_spans) for rs in request.resource_spans] == [2, 2]


def test_dropped_counts_match() -> None:
    limits = SpanLimits(max_span_attributes=2, max_events=1, max_links=1, max_event_attributes=1)
    provider = TracerProvider(span_limits=limits)

    def work(tracer: Any) -> None:
        span = tracer.start_span(
            "limited",
            attributes={"a": 1, "b": 2, "c": 3},
            links=[Link(SpanContext(1, 2, False)), Link(SpanContext(3, 4, False))],
        )
        span.add_event("dropped")
        span.add_event("kept", {"x": 1, "y": 2})
        span.end()

    spans = record(provider, work)
    assert_same_as_opentelemetry(spans)
    span = decoded(spans).resource_spans[0].scope_spans[0].spans[0]
    assert (span.dropped_attributes_count, span.dropped_events_count) == (1, 1)
    assert span.dropped_links_count == 1
    assert span.events[0].dropped_attributes_count == 1


def readable(attributes: dict[str, Any], **kwargs: Any) -> ReadableSpan:
    """A finished span with exactly these attributes (no SDK clean-up of the values)."""
    fields: dict[str, Any] = {
        "name": "made",
        "context": SpanContext(0xABC, 0xDEF, is_remote=False),
        "attributes": attributes,
        "start_time": 1,
        "end_time": 2,
        "resource": Resource.create({}),
        "instrumentation_scope": InstrumentationScope("made"),
    }
    return ReadableSpan(**{**fields, **kwargs})


def test_values_the_sdk_would_not_produce_encode_as_opentelemetry_encodes_them() -> None:
    # Redaction and other processors can leave plain dicts, bytes, None and nested lists.
    span = readable(
        {
            "mapping": {"a": 1, "b": ["x", 2.5], 3: None},
            "bytes": b"\x00\xff",
            "none": None,
            "nested": [[1, 2], ["a"]],
            "big": 2**63 - 1,
            "small": -(2**63),
            "nan": math.nan,
            "inf": -math.inf,
        },
        events=[Event("ev", {"k": "v"}, timestamp=5)],
        status=Status(StatusCode.ERROR),
    )
    assert_same_as_opentelemetry([span])


def test_a_value_protobuf_cannot_carry_leaves_out_that_attribute_only() -> None:
    span = readable({"too_big": 2**64, "object": object(), "kept": "yes"})
    attrs = decoded([span]).resource_spans[0].scope_spans[0].spans[0].attributes
    assert [(kv.key, kv.value.string_value) for kv in attrs] == [("kept", "yes")]


def test_lone_surrogates_become_replacement_characters_not_a_failed_batch() -> None:
    span = readable({"text": "ok \ud800 end"}, events=[Event("\udfff", {})])
    got = decoded([span]).resource_spans[0].scope_spans[0].spans[0]
    assert got.attributes[0].value.string_value == "ok ? end"
    assert got.events[0].name == "?"


def test_recurring_attributes_stay_correct_past_the_cache_size() -> None:
    count = _encode._KV_CACHE_SIZE + 50
    spans = [readable({"kind": "task", "n": f"value-{i}", "i": i}) for i in range(count)]
    assert_same_as_opentelemetry(spans)
    assert len(_encode._KV_CACHE) <= _encode._KV_CACHE_SIZE
    # The same key and value as an event attribute: its field number differs from a span's.
    again = readable({"kind": "task"}, events=[Event("ev", {"kind": "task"}, timestamp=1)])
    assert_same_as_opentelemetry([again])


_scalar = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
)
_value = st.one_of(
    _scalar,
    st.lists(st.text(max_size=5, alphabet="abc"), max_size=4).map(tuple),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=4).map(tuple),
    st.lists(st.floats(allow_nan=False), max_size=4).map(tuple),
    st.lists(st.booleans(), max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.text(min_size=1, max_size=12), _value, max_size=8),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(list(SpanKind)),
)
def test_any_attributes_encode_as_opentelemetry_encodes_them(
    attribute_sets: list[dict[str, Any]], kind: SpanKind
) -> None:
    provider = TracerProvider()

    def work(tracer: Any) -> None:
        for attrs in attribute_sets:
            with tracer.start_as_current_span("s", kind=kind, attributes=attrs) as span:
                span.add_event("e", attrs)

    assert_same_as_opentelemetry(record(provider, work))


@pytest.mark.parametrize("count", [0, 1])
def test_empty_and_single_batches(count: int) -> None:
    spans = [readable({"a": "b"}) for _ in range(count)]
    assert_same_as_opentelemetry(spans)


def test_spans_without_a_scope_or_a_name() -> None:
    spans = [readable({}, instrumentation_scope=None, name=""), readable({"a": 1})]
    assert_same_as_opentelemetry(spans)
    assert len(decoded(spans).resource_spans[0].scope_spans) == 2
