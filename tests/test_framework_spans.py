"""The span helpers every instrumentation of ours records through (``_frameworks._spans``) and
their base class (``_frameworks._own``): the stream hooks Agno and Google GenAI need, spans
started elsewhere, optional targets. The framework tests check them on the real frameworks."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace

from truefoundry_tracing._frameworks._own import OwnInstrumentor, Targets
from truefoundry_tracing._frameworks._spans import Entity, astream, begin, stream
from truefoundry_tracing.testing import CapturedSpans


def _tracer() -> Any:
    return trace.get_tracer("tests.framework_spans")


def _agent() -> Entity:
    return Entity.start(_tracer(), "agent", "a")


class _Sum:
    """A per-item hook and a finish hook: the span records what the items add up to."""

    def __init__(self) -> None:
        self.total = 0
        self.error: BaseException | None = None

    def each(self, item: int) -> None:
        self.total += item

    def finish(self, span: Any, error: BaseException | None) -> None:
        self.error = error
        span.set_attribute("sum", self.total)


def test_a_stream_reads_each_item_and_finishes_with_what_they_add_up_to(
    tfy_spans: CapturedSpans,
) -> None:
    added = _Sum()
    out = stream("demo", _agent, iter([1, 2, 3]), each=added.each, finish=added.finish)
    assert list(out) == [1, 2, 3]  # a plain iterator, not only a generator
    span = tfy_spans.one("a.agent")
    assert span.attributes["sum"] == 6 and added.error is None
    assert "traceloop.entity.output" not in span.attributes  # finish decides, not output


def test_a_failing_stream_gives_finish_the_error_and_the_span_records_it(
    tfy_spans: CapturedSpans,
) -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise KeyError("gone")

    added = _Sum()
    with pytest.raises(KeyError):
        list(stream("demo", _agent, broken(), each=added.each, finish=added.finish))
    span = tfy_spans.one("a.agent")
    assert isinstance(added.error, KeyError) and span.attributes["sum"] == 1
    assert span.status == "ERROR" and [e.name for e in span.events] == ["exception"]


def test_a_started_span_is_driven_and_one_never_made_current_stays_out_of_the_context(
    tfy_spans: CapturedSpans,
) -> None:
    """An Entity given is used as is (even with tracing off: it must end); one with no
    context is ended with the stream but never current while a step runs."""
    seen: list[Any] = []

    def steps() -> Iterator[int]:
        seen.append(trace.get_current_span())
        yield 1

    outside = _tracer().start_span("theirs")
    assert list(stream("demo", Entity(outside, None), steps())) == [1]
    assert seen == [trace.INVALID_SPAN] and not outside.is_recording()  # ended
    assert begin("demo", lambda: None) is None  # an opener may decline a call


def test_hooks_that_fail_are_said_once_and_never_reach_the_app(
    tfy_spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    def each(_item: int) -> None:
        raise ValueError("each broke")

    def finish(_span: Any, _error: BaseException | None) -> None:
        raise ValueError("finish broke")

    with caplog.at_level(logging.WARNING, "truefoundry_tracing"):
        assert list(stream("Demo", _agent, iter([1]), each=each, finish=finish)) == [1]
    assert "Demo: recording a call failed (ValueError: each broke)" in caplog.text
    assert "Demo: recording a call failed (ValueError: finish broke)" in caplog.text
    assert tfy_spans.one("a.agent").status != "ERROR"


def test_an_async_stream_cancelled_while_reading_ends_early_when_told_so(
    tfy_spans: CapturedSpans,
) -> None:
    async def slow() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(3600)
        yield 2

    async def read(early: tuple[type[BaseException], ...]) -> None:
        added = _Sum()
        out = astream("demo", _agent, slow(), each=added.each, finish=added.finish, early=early)

        async def consume() -> None:
            async for _ in out:
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(read((asyncio.CancelledError,)))
    asyncio.run(read(()))
    ended_early, failed = list(tfy_spans)
    assert ended_early.status != "ERROR" and ended_early.attributes["sum"] == 1
    assert failed.status == "ERROR"


def test_an_async_stream_left_early_is_closed_inside_its_span(tfy_spans: CapturedSpans) -> None:
    closed_in: list[Any] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed_in.append(trace.get_current_span())

    async def main() -> None:
        out = astream("demo", _agent, numbers(), lambda last: last)
        assert await out.__anext__() == 1
        await out.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())
    span = tfy_spans.one("a.agent")
    assert closed_in[0].get_span_context().span_id == int(span.span_id, 16)
    assert json.loads(span.attributes["traceloop.entity.output"]) == 1


def test_entity_start_names_labels_workflows_and_leaves_out_attributes_given_as_none(
    tfy_spans: CapturedSpans,
) -> None:
    flow = Entity.start(_tracer(), "workflow", "Report", "go", {"x": 1}, label="flow")
    token = flow.attach()
    try:
        tool = Entity.start(_tracer(), "tool", "t", {}, {"gen_ai.operation.name": None})
        tool.finish("ok")
    finally:
        flow.detach(token)
    flow.finish()
    root, child = tfy_spans.one("Report.flow"), tfy_spans.one("t.tool")
    assert root.attributes["traceloop.workflow.name"] == "Report" and root.attributes["x"] == 1
    assert child.attributes["traceloop.workflow.name"] == "Report"  # from the context
    assert "gen_ai.operation.name" not in child.attributes
    assert context_api.get_value("truefoundry_tracing.own_span") is None


class _Demo(OwnInstrumentor):
    absent: list[str]

    def targets(self, tracer: Any) -> Targets:
        return {("json", "dumps"): lambda w, i, a, k: "wrapped"}

    def optional(self, tracer: Any) -> Targets:
        return {
            ("json", "loads"): lambda w, i, a, k: "also wrapped",
            ("json", "gone"): lambda w, i, a, k: None,
            ("no_such_module_here", "f"): lambda w, i, a, k: None,
        }

    def unavailable(self, name: str, exc: Exception) -> None:
        self.absent.append(f"{name}: {type(exc).__name__}")


def test_optional_targets_a_release_lacks_are_handed_on_and_the_others_wrapped() -> None:
    demo = _Demo()
    demo.absent = []
    demo.instrument()
    try:
        assert (json.dumps(1), json.loads("1")) == ("wrapped", "also wrapped")
    finally:
        demo.uninstrument()
    assert (json.dumps(1), json.loads("1")) == ("1", 1)
    assert demo.absent == [
        "json.gone: AttributeError",
        "no_such_module_here.f: ModuleNotFoundError",
    ]


def test_a_target_that_cannot_be_wrapped_undoes_the_others() -> None:
    class Broken(OwnInstrumentor):  # not a _Demo: an instrumentor is one instance per class
        def targets(self, tracer: Any) -> Targets:
            return {
                ("json", "dumps"): lambda w, i, a, k: "wrapped",
                ("builtins", "str.upper"): lambda w, i, a, k: "never",  # a built-in type
            }

    broken = Broken()
    with pytest.raises(TypeError):
        broken.instrument()
    assert json.dumps(1) == "1"  # wrapped first, then undone
