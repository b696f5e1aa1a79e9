"""``@workflow`` / ``@task`` / ``@agent`` / ``@tool``: forms, attributes, context, generators,
exceptions, bad input, association properties and concurrency, on both traceloop lines.

Spans are read through the ``tfy_spans`` fixture of the project's own pytest plugin; LLM spans
come from a real ``openai`` client talking to the local ``FakeLLMServer`` over HTTP.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace

import truefoundry_tracing as tt
from truefoundry_tracing import agent, association_properties, task, tool, workflow
from truefoundry_tracing._pipeline import get_pipeline
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, SpanRecord

KIND = "traceloop.span.kind"
NAME = "traceloop.entity.name"
WF = "traceloop.workflow.name"
PATH = "traceloop.entity.path"
INPUT = "traceloop.entity.input"
OUTPUT = "traceloop.entity.output"
ASSOC = "traceloop.association.properties."
CAP = 64 * 1024


# --------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def oai(tfy_llm_server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=tfy_llm_server.base_url, api_key="test-key", max_retries=0
    ) as client:
        yield client


def instrument() -> None:
    """init() applies the openai instrumentation; ``tfy_spans`` undoes the rest afterwards."""
    tt.init(app_name="decorator-tests", console=False)


def chat(client: openai.OpenAI, text: str) -> str:
    reply = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content or ""


def plain_tracer() -> trace.Tracer:
    """A tracer of the provider the pipeline (and the capture) uses, not a decorator."""
    provider = get_pipeline().provider
    assert provider is not None
    return provider.get_tracer("tests.plain")


def loads(span: SpanRecord, key: str) -> Any:
    value = span.attributes[key]
    assert isinstance(value, str)
    return json.loads(value)


# Module-level functions so that bare decorators get clean ``__qualname__`` entity names.
@task
def bare_task(x: int) -> int:
    return x + 1


@task()
def empty_call_task(x: int) -> int:
    return x + 2


@task(name="named_kw")
def kw_task(x: int) -> int:
    return x + 3


@task("named_pos")
def pos_task(x: int) -> int:
    return x + 4


@workflow
def bare_workflow() -> str:
    return "w"


@agent
def bare_agent() -> str:
    return "a"


@tool
def bare_tool() -> str:
    return "t"


class Service:
    def __init__(self, base: int) -> None:
        self.base = base

    @task
    def method(self, x: int) -> int:
        return self.base + x

    @task(name="cm_outer")
    @classmethod
    def cls_outer(cls, x: int) -> str:
        return f"{cls.__name__}:{x}"

    @classmethod
    @task(name="cm_inner")
    def cls_inner(cls, x: int) -> str:
        return f"{cls.__name__}:{x}"

    @task(name="sm_outer")
    @staticmethod
    def static_outer(x: int) -> int:
        return x * 2

    @staticmethod
    @task(name="sm_inner")
    def static_inner(x: int) -> int:
        return x * 3


@agent(method_name="run")
class MyRunner:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def run(self, x: str) -> str:
        return self.prefix + x

    def other(self) -> str:
        return "untraced"


@tool(name="lookup", method_name="__call__")
class Lookup:
    def __call__(self, key: str) -> str:
        return key.upper()


# --------------------------------------------------------------------------------------------
# forms
# --------------------------------------------------------------------------------------------


def test_bare_called_and_positional_name_forms(tfy_spans: CapturedSpans) -> None:
    assert bare_task(1) == 2
    assert empty_call_task(1) == 3
    assert kw_task(1) == 4
    assert pos_task(1) == 5
    assert tfy_spans.names == [
        "bare_task.task",
        "empty_call_task.task",
        "named_kw.task",
        "named_pos.task",
    ]
    for span, name in zip(
        tfy_spans, ["bare_task", "empty_call_task", "named_kw", "named_pos"], strict=True
    ):
        assert span.attributes[KIND] == "task"
        assert span.attributes[NAME] == name


@pytest.mark.parametrize(
    ("fn", "kind", "name", "result"),
    [
        (bare_workflow, "workflow", "bare_workflow", "w"),
        (bare_agent, "agent", "bare_agent", "a"),
        (bare_tool, "tool", "bare_tool", "t"),
    ],
)
def test_each_kind(
    tfy_spans: CapturedSpans, fn: Callable[[], str], kind: str, name: str, result: str
) -> None:
    assert fn() == result
    span = tfy_spans.one(f"{name}.{kind}")
    assert span.attributes[KIND] == kind
    assert span.attributes[NAME] == name
    assert tfy_spans.by_kind(kind).names == [f"{name}.{kind}"]
    if kind == "workflow":
        assert span.attributes[WF] == name
    else:  # as traceloop 0.62: an agent outside a workflow is not a workflow
        assert WF not in span.attributes
    if kind == "agent":
        assert span.attributes["gen_ai.agent.name"] == name
    if kind == "tool":
        assert span.attributes["gen_ai.tool.name"] == name
    assert PATH not in span.attributes  # nothing encloses it


def test_methods_classmethods_staticmethods(tfy_spans: CapturedSpans) -> None:
    svc = Service(10)
    assert svc.method(5) == 15
    assert Service.cls_outer(1) == "Service:1"
    assert svc.cls_inner(2) == "Service:2"
    assert Service.static_outer(4) == 8
    assert svc.static_inner(4) == 12
    assert tfy_spans.names == [
        "Service.method.task",
        "cm_outer.task",
        "cm_inner.task",
        "sm_outer.task",
        "sm_inner.task",
    ]
    method_input = loads(tfy_spans[0], INPUT)
    assert method_input["args"][1:] == [5]  # self comes first, rendered somehow
    assert loads(tfy_spans[0], OUTPUT) == 15
    assert isinstance(Service.__dict__["cls_outer"], classmethod)
    assert isinstance(Service.__dict__["static_inner"], staticmethod)


def test_class_with_method_name(tfy_spans: CapturedSpans) -> None:
    assert MyRunner("p-").run("x") == "p-x"
    assert MyRunner("q-").other() == "untraced"
    assert Lookup()("k") == "K"
    assert tfy_spans.names == ["my_runner.agent", "lookup.tool"]
    runner = tfy_spans.one(entity="my_runner")
    assert runner.attributes[KIND] == "agent"
    assert loads(runner, OUTPUT) == "p-x"
    assert tfy_spans.one(entity="lookup").attributes[KIND] == "tool"


def test_class_without_method_name_or_missing_method_is_refused() -> None:
    with pytest.raises(TypeError, match="method_name"):

        @task
        class A:
            pass

    with pytest.raises(TypeError, match="no such method"):

        @task(method_name="nope")
        class B:
            pass


def test_async_function(tfy_spans: CapturedSpans) -> None:
    @task(name="async_step")
    async def step(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert asyncio.run(step(21)) == 42
    span = tfy_spans.one("async_step.task")
    assert loads(span, INPUT) == {"args": [21], "kwargs": {}}
    assert loads(span, OUTPUT) == 42


def test_sync_and_async_generators_record_what_they_yield(tfy_spans: CapturedSpans) -> None:
    @task(name="sync_gen")
    def gen(n: int) -> Iterator[int]:
        yield from range(n)

    @task(name="async_gen")
    async def agen(n: int) -> AsyncIterator[str]:
        for i in range(n):
            await asyncio.sleep(0)
            yield f"item-{i}"

    async def consume() -> list[str]:
        return [x async for x in agen(3)]

    assert list(gen(4)) == [0, 1, 2, 3]
    assert asyncio.run(consume()) == ["item-0", "item-1", "item-2"]
    sync_span = tfy_spans.one("sync_gen.task")
    assert loads(sync_span, OUTPUT) == [0, 1, 2, 3]
    assert sync_span.attributes["truefoundry.generator.items"] == 4
    assert "truefoundry.generator.closed_early" not in sync_span.attributes
    async_span = tfy_spans.one("async_gen.task")
    assert loads(async_span, OUTPUT) == ["item-0", "item-1", "item-2"]
    assert async_span.attributes["truefoundry.generator.items"] == 3


def test_inspect_predicates_and_wraps_metadata() -> None:
    def plain(a: int, b: str = "x") -> str:
        """Plain doc."""
        return b * a

    async def coro(a: int) -> int:
        """Coro doc."""
        return a

    def gen(a: int) -> Iterator[int]:
        """Gen doc."""
        yield a

    async def agen(a: int) -> AsyncIterator[int]:
        """Agen doc."""
        yield a

    for original in (plain, coro, gen, agen):
        for decorated in (task(original), workflow(name="n")(original), tool("t")(original)):
            assert decorated is not original
            assert decorated.__name__ == original.__name__
            assert decorated.__qualname__ == original.__qualname__
            assert decorated.__doc__ == original.__doc__
            assert decorated.__module__ == original.__module__
            assert decorated.__wrapped__ is original  # type: ignore[attr-defined]
            assert inspect.signature(decorated) == inspect.signature(original)
            assert inspect.iscoroutinefunction(decorated) == inspect.iscoroutinefunction(original)
            assert inspect.isasyncgenfunction(decorated) == inspect.isasyncgenfunction(original)
            assert inspect.isgeneratorfunction(decorated) == inspect.isgeneratorfunction(original)
    assert inspect.iscoroutinefunction(task(coro))
    assert inspect.isasyncgenfunction(task(agen))
    assert inspect.isgeneratorfunction(task(gen))
    assert not inspect.iscoroutinefunction(task(plain))


def test_decorating_a_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="decorates functions"):
        task(42)


# --------------------------------------------------------------------------------------------
# attributes: workflow name, entity path, input/output, LLM span inside
# --------------------------------------------------------------------------------------------


def test_workflow_name_path_and_io_reach_children_and_the_llm_span(
    tfy_spans: CapturedSpans, oai: openai.OpenAI
) -> None:
    instrument()

    @task(name="ask")
    def ask(q: str) -> str:
        return chat(oai, q)

    @task(name="inner")
    def inner(x: int) -> int:
        return x + 1

    @task(name="outer")
    def outer(x: int) -> int:
        return inner(x) * 10

    @tool(name="calc")
    def calc(x: int) -> int:
        return x - 1

    @agent(name="helper")
    def helper(x: int) -> int:
        return calc(x)

    @workflow(name="pipeline")
    def pipeline(q: str, *, n: int) -> dict[str, Any]:
        return {"answer": ask(q), "outer": outer(n), "helper": helper(n)}

    result = pipeline("hello there", n=3)
    assert result == {"answer": "Echo: hello there", "outer": 40, "helper": 2}

    assert len(tfy_spans) == 7
    tfy_spans.assert_tree(
        "pipeline.workflow > ask.task > openai.chat",
        "pipeline > outer > inner",
        "workflow > agent > tool",
    )
    for span in tfy_spans:
        assert span.attributes[WF] == "pipeline", span.name
    assert len(tfy_spans.traces()) == 1

    root = tfy_spans.root
    assert root.name == "pipeline.workflow"
    assert PATH not in root.attributes
    assert loads(root, INPUT) == {"args": ["hello there"], "kwargs": {"n": 3}}
    assert loads(root, OUTPUT) == result

    llm = tfy_spans.one("openai.chat")
    assert llm.attributes[PATH] == "ask"
    assert tfy_spans.parent(llm) == tfy_spans.one(entity="ask")
    assert tfy_spans.llm().output_text == "Echo: hello there"

    # traceloop's entity path: the enclosing tasks and tools, not the span itself
    assert PATH not in tfy_spans.one(entity="outer").attributes
    assert tfy_spans.one(entity="inner").attributes[PATH] == "outer"
    assert loads(tfy_spans.one(entity="inner"), INPUT) == {"args": [3], "kwargs": {}}
    assert loads(tfy_spans.one(entity="inner"), OUTPUT) == 4
    helper_span = tfy_spans.one(entity="helper")
    assert helper_span.attributes[WF] == "pipeline"  # an agent inside a workflow keeps its name
    assert PATH not in helper_span.attributes
    calc_span = tfy_spans.one(entity="calc")
    assert PATH not in calc_span.attributes  # no task or tool encloses it
    assert calc_span.attributes["gen_ai.agent.name"] == "helper"
    for span in tfy_spans:
        if span.name != "pipeline.workflow":
            assert tfy_spans.parent(span) is not None, span.name
            assert span.trace_id == root.trace_id


def test_agent_without_workflow_names_its_llm_call_but_not_a_workflow(
    tfy_spans: CapturedSpans, oai: openai.OpenAI
) -> None:
    instrument()

    @agent(name="solo")
    def solo() -> str:
        return chat(oai, "hi")

    solo()
    assert WF not in tfy_spans.one("openai.chat").attributes  # as traceloop 0.62
    assert tfy_spans.one("openai.chat").attributes["gen_ai.agent.name"] == "solo"


def test_version_attribute(tfy_spans: CapturedSpans) -> None:
    @task(name="versioned", version=3)
    def versioned() -> None:
        return None

    versioned()
    span = tfy_spans.one("versioned.task")
    assert span.attributes["traceloop.entity.version"] == 3
    assert loads(span, OUTPUT) is None


# --------------------------------------------------------------------------------------------
# no leaking of the workflow name or the current span
# --------------------------------------------------------------------------------------------


def test_nothing_leaks_after_a_workflow_returns(
    tfy_spans: CapturedSpans, oai: openai.OpenAI
) -> None:
    instrument()

    @task(name="step")
    def step() -> str:
        return "s"

    @workflow(name="leaky")
    def leaky() -> str:
        return step()

    @workflow(name="leaky_async")
    async def leaky_async() -> str:
        return step()

    @workflow(name="leaky_gen")
    def leaky_gen() -> Iterator[str]:
        yield step()

    leaky()
    asyncio.run(leaky_async())
    assert list(leaky_gen()) == ["s"]
    assert trace.get_current_span() is trace.INVALID_SPAN

    with plain_tracer().start_as_current_span("after.plain"):
        pass
    step()
    chat(oai, "after the workflow")

    after = [tfy_spans.one("after.plain"), tfy_spans.by_name("step.task")[-1]]
    after.append(tfy_spans.one("openai.chat"))
    workflow_ids = {s.span_id for s in tfy_spans.by_kind("workflow")}
    assert len(workflow_ids) == 3
    for span in after:
        assert WF not in span.attributes, span.name
        assert span.parent_id is None, span.name
        assert PATH not in span.attributes or span.name == "step.task"
    assert tfy_spans.one("openai.chat").attributes.get(PATH) is None
    assert len(tfy_spans.traces()) == 6


def test_suspended_and_consumed_generator_is_not_the_current_span(
    tfy_spans: CapturedSpans,
) -> None:
    seen_inside: list[Any] = []

    @workflow(name="streamer")
    def streamer() -> Iterator[int]:
        seen_inside.append(trace.get_current_span())
        yield 1
        seen_inside.append(trace.get_current_span())
        yield 2

    outside = trace.get_current_span()
    g = streamer()
    assert next(g) == 1
    assert trace.get_current_span() is outside  # suspended: the caller's context is back
    with plain_tracer().start_as_current_span("between.items"):
        pass
    assert next(g) == 2
    assert list(g) == []
    assert trace.get_current_span() is outside
    with plain_tracer().start_as_current_span("after.consumed"):
        pass

    gen_span = tfy_spans.one("streamer.workflow")
    assert {format(s.get_span_context().span_id, "016x") for s in seen_inside} == {gen_span.span_id}
    for name in ("between.items", "after.consumed"):
        span = tfy_spans.one(name)
        assert span.parent_id is None
        assert WF not in span.attributes


# --------------------------------------------------------------------------------------------
# generators: lifecycle, bounded record, send/throw
# --------------------------------------------------------------------------------------------


def test_generator_span_ends_when_exhausted_closed_or_abandoned(
    tfy_spans: CapturedSpans,
) -> None:
    finalized: list[str] = []

    @task(name="counter")
    def counter(label: str) -> Iterator[int]:
        try:
            yield from range(5)
        finally:
            finalized.append(label)

    assert list(counter("exhausted")) == [0, 1, 2, 3, 4]
    assert finalized == ["exhausted"]

    closed = counter("closed")
    assert next(closed) == 0
    assert next(closed) == 1
    assert len(tfy_spans) == 1  # still open
    closed.close()
    assert finalized == ["exhausted", "closed"]
    assert len(tfy_spans) == 2

    abandoned = counter("abandoned")
    assert next(abandoned) == 0
    del abandoned
    gc.collect()
    assert finalized == ["exhausted", "closed", "abandoned"]

    spans = tfy_spans.by_name("counter.task")
    assert len(spans) == 3
    exhausted, closed_span, abandoned_span = spans
    assert loads(exhausted, OUTPUT) == [0, 1, 2, 3, 4]
    assert "truefoundry.generator.closed_early" not in exhausted.attributes
    assert loads(closed_span, OUTPUT) == [0, 1]
    assert closed_span.attributes["truefoundry.generator.closed_early"] is True
    assert loads(abandoned_span, OUTPUT) == [0]
    assert abandoned_span.attributes["truefoundry.generator.closed_early"] is True
    for span in spans:
        assert span.end_ns >= span.start_ns > 0
        assert span.status == "UNSET"


async def test_async_generator_span_ends_when_exhausted_closed_broken_or_abandoned(
    tfy_spans: CapturedSpans,
) -> None:
    finalized: list[str] = []

    @task(name="acounter")
    async def acounter(label: str) -> AsyncIterator[int]:
        try:
            for i in range(5):
                await asyncio.sleep(0)
                yield i
        finally:
            finalized.append(label)

    assert [x async for x in acounter("exhausted")] == [0, 1, 2, 3, 4]

    closed = acounter("closed")
    assert await closed.__anext__() == 0
    await closed.aclose()

    broken = acounter("broken")
    async for _ in broken:
        break
    await broken.aclose()

    abandoned = acounter("abandoned")
    assert await abandoned.__anext__() == 0
    del abandoned
    gc.collect()
    for _ in range(20):  # the event loop's async-generator finalizer schedules aclose()
        if len(finalized) == 4:
            break
        await asyncio.sleep(0.01)

    assert finalized == ["exhausted", "closed", "broken", "abandoned"]
    spans = tfy_spans.by_name("acounter.task")
    assert len(spans) == 4
    assert [loads(s, OUTPUT) for s in spans] == [[0, 1, 2, 3, 4], [0], [0], [0]]
    assert [s.attributes.get("truefoundry.generator.closed_early") for s in spans] == [
        None,
        True,
        True,
        True,
    ]


def test_children_of_a_generator_nest_under_it(tfy_spans: CapturedSpans) -> None:
    @task(name="child")
    def child(i: int) -> int:
        return i

    @workflow(name="parent_gen")
    def parent_gen() -> Iterator[int]:
        for i in range(3):
            yield child(i)

    assert list(parent_gen()) == [0, 1, 2]
    root = tfy_spans.root
    assert root.name == "parent_gen.workflow"
    assert tfy_spans.children(root).names == ["child.task"] * 3
    for span in tfy_spans.children(root):
        assert span.attributes[WF] == "parent_gen"


def test_a_function_returning_a_generator_is_traced_over_the_iteration(
    tfy_spans: CapturedSpans,
) -> None:
    @task(name="returns_gen")
    def returns_gen() -> Iterator[int]:
        return (i * i for i in range(3))

    g = returns_gen()
    assert len(tfy_spans) == 0
    assert list(g) == [0, 1, 4]
    assert loads(tfy_spans.one("returns_gen.task"), OUTPUT) == [0, 1, 4]


def test_yielded_items_are_bounded(tfy_spans: CapturedSpans) -> None:
    @task(name="many")
    def many() -> Iterator[int]:
        yield from range(1000)

    assert sum(many()) == sum(range(1000))
    span = tfy_spans.one("many.task")
    raw = span.attributes[OUTPUT]
    assert isinstance(raw, str)
    assert len(raw) <= CAP
    rendered = json.loads(raw)
    assert rendered[:100] == list(range(100))
    assert len(rendered) < 1000
    assert "more items" in rendered[-1]
    assert "900" in rendered[-1]
    assert span.attributes["truefoundry.generator.items"] == 1000


def test_exception_mid_stream_is_recorded_and_reraised(tfy_spans: CapturedSpans) -> None:
    boom = RuntimeError("mid-stream failure")

    @task(name="fragile")
    def fragile() -> Iterator[int]:
        yield 1
        yield 2
        raise boom

    got: list[int] = []
    with pytest.raises(RuntimeError) as excinfo:
        for item in fragile():
            got.append(item)
    assert excinfo.value is boom
    assert got == [1, 2]
    span = tfy_spans.one("fragile.task")
    assert span.status == "ERROR"
    assert "mid-stream failure" in span.status_message
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "RuntimeError"
    assert loads(span, OUTPUT) == [1, 2]


async def test_async_exception_mid_stream_is_recorded_and_reraised(
    tfy_spans: CapturedSpans,
) -> None:
    boom = RuntimeError("async mid-stream")

    @task(name="afragile")
    async def afragile() -> AsyncIterator[int]:
        yield 1
        raise boom

    got: list[int] = []
    with pytest.raises(RuntimeError) as excinfo:
        async for item in afragile():
            got.append(item)
    assert excinfo.value is boom
    assert got == [1]
    span = tfy_spans.one("afragile.task")
    assert span.status == "ERROR"
    assert span.events[0].name == "exception"


def accumulator(log: list[str]) -> Iterator[Any]:
    """A generator that takes values by send() and survives ValueError thrown in."""
    total = 0
    note: str | None = None
    try:
        while True:
            try:
                got = yield (total if note is None else note)
                note = None
                if got is not None:
                    total += got
            except ValueError as exc:
                note = f"caught {exc}"
    finally:
        log.append("finally")
    return "unreachable"


def drive(gen: Iterator[Any], script: list[tuple[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for op, arg in script:
        try:
            if op == "next":
                out.append(next(gen))
            elif op == "send":
                out.append(gen.send(arg))  # type: ignore[attr-defined]
            elif op == "throw":
                out.append(gen.throw(arg))  # type: ignore[attr-defined]
            elif op == "close":
                out.append(gen.close())  # type: ignore[attr-defined]
        except BaseException as exc:
            out.append(("raised", type(exc).__name__, str(exc)))
    return out


SINGLE_THROW = [
    ("next", None),
    ("send", 5),
    ("send", 2),
    ("throw", ValueError("a")),
    ("send", 3),
    ("next", None),
    ("throw", KeyError("unhandled")),
    ("next", None),
]


def test_send_and_throw_behave_as_undecorated(tfy_spans: CapturedSpans) -> None:
    plain_log: list[str] = []
    traced_log: list[str] = []
    expected = drive(accumulator(plain_log), SINGLE_THROW)
    got = drive(task(name="acc")(accumulator)(traced_log), SINGLE_THROW)
    assert got == expected
    assert expected[:6] == [0, 5, 7, "caught a", 10, 10]
    assert traced_log == plain_log == ["finally"]
    span = tfy_spans.one("acc.task")
    assert span.status == "ERROR"
    assert "KeyError" in span.status_message


def test_close_after_send_and_return_value_behave_as_undecorated(
    tfy_spans: CapturedSpans,
) -> None:
    def returning() -> Iterator[int]:
        got = yield 1
        return got * 2

    def outer(gen_fn: Callable[[], Iterator[int]]) -> Iterator[Any]:
        result = yield from gen_fn()
        yield ("returned", result)

    for fn in (returning, task(name="ret")(returning)):
        g = outer(fn)
        assert next(g) == 1
        assert g.send(21) == ("returned", 42)
    plain_log: list[str] = []
    traced_log: list[str] = []
    script = [("next", None), ("send", 1), ("close", None), ("next", None)]
    assert drive(task(accumulator)(traced_log), script) == drive(accumulator(plain_log), script)
    assert traced_log == plain_log == ["finally"]
    assert len(tfy_spans.by_name("ret.task")) == 1


def test_consecutive_throws_behave_as_undecorated(tfy_spans: CapturedSpans) -> None:
    script = [
        ("next", None),
        ("throw", ValueError("a")),
        ("throw", ValueError("b")),
        ("send", 3),
        ("close", None),
    ]
    plain_log: list[str] = []
    traced_log: list[str] = []
    expected = drive(accumulator(plain_log), script)
    assert expected == [0, "caught a", "caught b", 3, None]
    assert drive(task(accumulator)(traced_log), script) == expected


async def aaccumulator() -> AsyncIterator[Any]:
    total = 0
    note: str | None = None
    while True:
        try:
            got = yield (total if note is None else note)
            note = None
            if got is not None:
                total += got
        except ValueError as exc:
            note = f"caught {exc}"


async def adrive(agen: Any, script: list[tuple[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for op, arg in script:
        try:
            if op == "asend":
                out.append(await agen.asend(arg))
            elif op == "athrow":
                out.append(await agen.athrow(arg))
            elif op == "aclose":
                out.append(await agen.aclose())
        except BaseException as exc:
            out.append(("raised", type(exc).__name__, str(exc)))
    return out


async def test_async_generator_asend_behaves_as_undecorated(tfy_spans: CapturedSpans) -> None:
    script = [("asend", None), ("asend", 4), ("asend", 1), ("aclose", None)]
    expected = await adrive(aaccumulator(), script)
    assert expected == [0, 4, 5, None]
    assert await adrive(task(aaccumulator)(), script) == expected
    assert len(tfy_spans) == 1


async def test_async_generator_athrow_behaves_as_undecorated(tfy_spans: CapturedSpans) -> None:
    script = [("asend", None), ("athrow", ValueError("x")), ("asend", 2), ("aclose", None)]
    expected = await adrive(aaccumulator(), script)
    assert expected == [0, "caught x", 2, None]
    assert await adrive(task(aaccumulator)(), script) == expected


# --------------------------------------------------------------------------------------------
# exceptions
# --------------------------------------------------------------------------------------------


class CustomError(Exception):
    pass


class CustomBaseError(BaseException):
    pass


@pytest.mark.parametrize("exc_type", [ValueError, CustomError, CustomBaseError])
def test_exceptions_are_recorded_and_reraised_unchanged(
    tfy_spans: CapturedSpans, exc_type: type[BaseException]
) -> None:
    err = exc_type("it broke")

    @task(name="breaks")
    def breaks() -> None:
        raise err

    @workflow(name="survives")
    def survives() -> str:
        try:
            breaks()
        except exc_type as caught:
            assert caught is err
            return "handled"
        return "not reached"

    with pytest.raises(exc_type) as excinfo:
        breaks()
    assert excinfo.value is err
    assert excinfo.value.__traceback__ is not None
    assert excinfo.traceback[-1].name == "breaks"  # the original frame is kept
    assert survives() == "handled"

    failed = tfy_spans.by_name("breaks.task")
    assert len(failed) == 2
    for span in failed:
        assert span.status == "ERROR"
        assert span.status_message == f"{exc_type.__name__}: it broke"
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"].endswith(exc_type.__name__)
        assert event.attributes["exception.message"] == "it broke"
        assert OUTPUT not in span.attributes
    assert tfy_spans.one("survives.workflow").status == "UNSET"


async def test_async_exceptions_are_recorded_and_reraised_unchanged(
    tfy_spans: CapturedSpans,
) -> None:
    err = KeyError("missing")

    @workflow(name="abreaks")
    async def abreaks() -> None:
        await asyncio.sleep(0)
        raise err

    with pytest.raises(KeyError) as excinfo:
        await abreaks()
    assert excinfo.value is err
    span = tfy_spans.one("abreaks.workflow")
    assert span.status == "ERROR"
    assert span.events[0].attributes["exception.type"] == "KeyError"


async def test_cancellation_is_reraised_and_ends_the_span(tfy_spans: CapturedSpans) -> None:
    started = asyncio.Event()

    @task(name="slow")
    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    job = asyncio.create_task(slow())
    await started.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    span = tfy_spans.one("slow.task")
    assert span.end_ns > 0
    assert span.status == "ERROR"


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str for you")


def _recursive_list() -> list[Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return loop


def _recursive_dict() -> dict[str, Any]:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = {"parent": loop}
    return loop


def _deep(n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        out = [out]
    return out


BIG = "x" * (10 * 1024 * 1024)

BAD_INPUTS: dict[str, Callable[[], Any]] = {
    "object": object,
    "unprintable": Unprintable,
    "lock": threading.Lock,
    "recursive_list": _recursive_list,
    "recursive_dict": _recursive_dict,
    "deeply_nested": lambda: _deep(5000),
    "bytes": lambda: b"\x00\xff" * 10,
    "big_bytes": lambda: b"\x00" * (10 * 1024 * 1024),
    "10MB_string": lambda: BIG,
    "many_items": lambda: list(range(100_000)),
    "wide_dict": lambda: {f"k{i}": "v" * 1000 for i in range(1000)},
    "nan_and_inf": lambda: [float("nan"), float("inf"), -float("inf")],
    "non_str_keys": lambda: {(1, 2): "tuple", None: "none", 3.5: "float"},
    "set": lambda: {1, 2, 3},
    "lone_surrogate": lambda: "\ud800 broken",
}


@pytest.mark.parametrize("make", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_is_passed_through_and_rendered_as_bounded_valid_json(
    tfy_spans: CapturedSpans, make: Callable[[], Any]
) -> None:
    def identity(value: Any, *, extra: Any = None) -> Any:
        return value

    traced = task(name="ident")(identity)
    value = make()
    assert traced(value, extra=value) is identity(value, extra=value)

    span = tfy_spans.one("ident.task")
    assert span.status == "UNSET"
    for key in (INPUT, OUTPUT):
        raw = span.attributes[key]
        assert isinstance(raw, str)
        assert len(raw) <= CAP, (key, len(raw))
        json.loads(raw)


def test_a_10mb_string_is_truncated_with_a_marker(tfy_spans: CapturedSpans) -> None:
    @task(name="big")
    def big(text: str) -> str:
        return text

    assert big(BIG) is BIG
    span = tfy_spans.one("big.task")
    for key in (INPUT, OUTPUT):
        raw = span.attributes[key]
        assert isinstance(raw, str)
        assert len(raw.encode()) <= CAP
        json.loads(raw)
        assert "truncated" in raw
    assert loads(span, OUTPUT).startswith("xxxx")


def test_a_10mb_non_ascii_string_stays_within_64_kib(tfy_spans: CapturedSpans) -> None:
    text = "\N{GRINNING FACE}" * (10 * 1024 * 1024 // 4)  # 10 MB in UTF-8

    @task(name="emoji")
    def emoji(value: str) -> int:
        return len(value)

    assert emoji(text) == len(text)
    raw = tfy_spans.one("emoji.task").attributes[INPUT]
    assert isinstance(raw, str)
    json.loads(raw)
    assert len(raw.encode("utf-8")) <= CAP


def test_generator_abandoned_after_one_item_with_bad_input(tfy_spans: CapturedSpans) -> None:
    @task(name="gen_bad")
    def gen_bad(value: Any) -> Iterator[Any]:
        yield value
        yield value

    loop = _recursive_list()
    g = gen_bad(loop)
    assert next(g) is loop
    del g
    gc.collect()
    span = tfy_spans.one("gen_bad.task")
    json.loads(span.attributes[INPUT])  # type: ignore[arg-type]
    json.loads(span.attributes[OUTPUT])  # type: ignore[arg-type]
    assert span.attributes["truefoundry.generator.closed_early"] is True


# --------------------------------------------------------------------------------------------
# association properties
# --------------------------------------------------------------------------------------------


def test_association_properties_nest_reach_the_llm_span_and_end_with_the_block(
    tfy_spans: CapturedSpans, oai: openai.OpenAI
) -> None:
    instrument()

    @task(name="mark")
    def mark(label: str) -> str:
        return label

    @workflow(name="assoc_wf")
    def assoc_wf() -> None:
        with association_properties(user_id="u-outer", session_id="s-1"):
            mark("outer-before")
            with association_properties(user_id="u-inner", turn=2):
                mark("inner")
                chat(oai, "inside")
            mark("outer-after")
        mark("none")

    assoc_wf()
    mark("outside")

    def props(span: SpanRecord) -> dict[str, Any]:
        return {k[len(ASSOC) :]: v for k, v in span.attributes.items() if k.startswith(ASSOC)}

    by_label = {loads(s, OUTPUT): s for s in tfy_spans.by_name("mark.task")}
    assert props(by_label["outer-before"]) == {"user_id": "u-outer", "session_id": "s-1"}
    assert props(by_label["inner"]) == {"user_id": "u-inner", "session_id": "s-1", "turn": 2}
    assert props(tfy_spans.one("openai.chat")) == {
        "user_id": "u-inner",
        "session_id": "s-1",
        "turn": 2,
    }
    assert props(by_label["outer-after"]) == {"user_id": "u-outer", "session_id": "s-1"}
    assert props(by_label["none"]) == {}
    assert props(by_label["outside"]) == {}
    # Entered inside the workflow: the workflow span itself is tagged too.
    assert props(tfy_spans.one("assoc_wf.workflow"))["session_id"] == "s-1"


def test_association_properties_reject_non_scalar_values() -> None:
    with (
        pytest.raises(TypeError, match="user"),
        association_properties(user={"nested": "dict"}),  # type: ignore[arg-type]
    ):
        pass


# --------------------------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------------------------


def _check_isolated_traces(spans: CapturedSpans, count: int, label: str) -> None:
    traces = spans.traces()
    assert len(traces) == count
    seen: set[str] = set()
    for tr in traces:
        root = tr.root
        assert root.attributes[KIND] == "workflow"
        name = root.attributes[NAME]
        assert isinstance(name, str)
        assert name.startswith(label)
        ident = name[len(label) :]
        assert ident not in seen
        seen.add(ident)
        assert len(tr) == 3
        outer_task = tr.one(entity="outer_step")
        inner_task = tr.one(entity="inner_step")
        assert tr.parent(outer_task) == root
        assert tr.parent(inner_task) == outer_task
        for span in tr:
            assert span.trace_id == root.trace_id
            assert span.attributes[WF] == name, (span.name, name)
            assert span.attributes[ASSOC + "worker"] == ident
        assert loads(inner_task, OUTPUT) == ident
    assert len(seen) == count


def test_32_threads_each_running_a_workflow(tfy_spans: CapturedSpans) -> None:
    n = 32
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    results: dict[int, str] = {}

    @task(name="inner_step")
    def inner_step(ident: str) -> str:
        time.sleep(0.001)
        return ident

    @task(name="outer_step")
    def outer_step(ident: str) -> str:
        barrier.wait(timeout=10)  # every thread is inside its workflow at once
        return inner_step(ident)

    def run(i: int) -> None:
        try:
            wf = workflow(name=f"thread-wf-{i}")(outer_step)
            with association_properties(worker=str(i)):
                results[i] = wf(str(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert results == {i: str(i) for i in range(n)}
    _check_isolated_traces(tfy_spans, n, "thread-wf-")


async def test_200_concurrent_asyncio_workflows(tfy_spans: CapturedSpans) -> None:
    n = 200

    @task(name="inner_step")
    async def inner_step(ident: str) -> str:
        await asyncio.sleep(0)
        return ident

    @task(name="outer_step")
    async def outer_step(ident: str) -> str:
        await asyncio.sleep(0.001)
        with association_properties(worker=ident):
            # Re-tag the task span and its children; the workflow was tagged by its caller.
            return await inner_step(ident)

    async def one(i: int) -> str:
        wf = workflow(name=f"async-wf-{i}")(outer_step)
        with association_properties(worker=str(i)):
            return await wf(str(i))

    results = await asyncio.gather(*(one(i) for i in range(n)))
    assert results == [str(i) for i in range(n)]
    _check_isolated_traces(tfy_spans, n, "async-wf-")


# --------------------------------------------------------------------------------------------
# before init(), and init(enabled=False)
# --------------------------------------------------------------------------------------------


BEFORE_INIT_SCRIPT = r"""
import json, sys
from truefoundry_tracing import task, workflow
from truefoundry_tracing import _api

@task
def step(x):
    return x * 2

@workflow(name="early")
def early(x):
    return step(x)

# Before init and without a capture: a plain call, nothing printed, nothing sent.
assert early(2) == 4
from truefoundry_tracing.testing import capture_spans
with capture_spans() as spans:
    assert early(3) == 6
    names = spans.names
    tree = spans.tree(details=False)
assert _api.status() is None
print(json.dumps({"names": names, "tree": tree}))
"""


def test_decorators_work_before_init_in_a_fresh_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BEFORE_INIT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout)
    assert out["names"] == ["step.task", "early.workflow"]
    assert out["tree"] == "early.workflow [workflow]\n└── step.task [task]"


def test_spans_are_captured_without_init(tfy_spans: CapturedSpans) -> None:
    @workflow(name="no_init")
    def no_init() -> int:
        return bare_task(1)

    assert no_init() == 2
    tfy_spans.assert_tree("no_init.workflow > bare_task.task")
    assert len(tfy_spans) == 2


async def test_enabled_false_makes_plain_calls_and_zero_spans(
    tfy_spans: CapturedSpans, oai: openai.OpenAI
) -> None:
    status = tt.init(enabled=False, console=False)
    assert status.enabled is False
    err = ValueError("still raised")

    @workflow(name="off_wf")
    def off_wf(x: int) -> int:
        return bare_task(x)

    @task(name="off_async")
    async def off_async(x: int) -> int:
        return x

    @task(name="off_gen")
    def off_gen() -> Iterator[int]:
        got = yield 1
        yield got

    @task(name="off_agen")
    async def off_agen() -> AsyncIterator[int]:
        yield 1
        yield 2

    @task(name="off_raise")
    def off_raise() -> None:
        raise err

    assert off_wf(1) == 2
    assert await off_async(5) == 5
    g = off_gen()
    assert next(g) == 1
    assert g.send(7) == 7
    assert [x async for x in off_agen()] == [1, 2]
    with pytest.raises(ValueError) as excinfo:
        off_raise()
    assert excinfo.value is err
    assert Service(1).method(1) == 2
    assert MyRunner("a").run("b") == "ab"
    with association_properties(user_id="u"):
        chat(oai, "disabled")
    assert len(tfy_spans) == 0


async def test_enabled_false_async_generator_asend_is_forwarded(
    tfy_spans: CapturedSpans,
) -> None:
    tt.init(enabled=False, console=False)
    script = [("asend", None), ("asend", 4), ("asend", 1), ("aclose", None)]
    expected = await adrive(aaccumulator(), script)
    assert await adrive(task(aaccumulator)(), script) == expected


def test_tracing_resumes_after_the_disabled_test(tfy_spans: CapturedSpans) -> None:
    assert bare_task(0) == 1
    assert tfy_spans.names == ["bare_task.task"]


def test_trace_content_false_records_no_input_or_output(tfy_spans: CapturedSpans) -> None:
    tt.init(trace_content=False, console=False)
    canary = "canary-input-3f9a1c"

    @task(name="secretive")
    def secretive(text: str) -> str:
        return text + "-out"

    @task(name="secretive_gen")
    def secretive_gen(text: str) -> Iterator[str]:
        yield text

    assert secretive(canary) == canary + "-out"
    assert list(secretive_gen(canary)) == [canary]
    assert len(tfy_spans) == 2
    for span in tfy_spans:
        assert INPUT not in span.attributes
        assert OUTPUT not in span.attributes
    tfy_spans.assert_absent(canary)


def test_a_nested_function_is_named_as_written(tfy_spans: CapturedSpans) -> None:
    def make() -> Any:
        @task
        def ask() -> str:
            return "ok"

        class Helper:
            @tool
            def run(self) -> int:
                return 1

        return ask, Helper

    ask, helper = make()
    assert ask() == "ok"
    assert helper().run() == 1
    assert tfy_spans.names == ["ask.task", "Helper.run.tool"]
