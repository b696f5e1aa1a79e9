"""What openllmetry's traceloop-sdk tests at v0.38.12 pin, through ``truefoundry_tracing.init``.

traceloop-sdk 0.38.12's source distribution ships no tests, so ``test_upstream_suite.py`` cannot
run them there. These are our own tests of the same behaviours (decorators, context,
association properties, manual LLM spans, prompt attributes, errors, resource attributes),
written after reading ``packages/traceloop-sdk/tests`` at that tag, with a local
OpenAI-compatible server instead of cassettes. They run on whichever line is installed: where
the two lines name an attribute differently, both names are spelled out.

Every scenario runs twice: with truefoundry_tracing's decorators and with traceloop's own
(``traceloop.sdk.decorators``), which must feed the same pipeline after ``init()``.

``CONFORMANCE_BASELINE=traceloop`` runs this module against plain traceloop instead
(``Traceloop.init`` with the same arguments, traceloop's decorators only), which is how
``test_baseline_is_plain_traceloop`` proves every pin here is traceloop's real behaviour on
the installed line.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import pytest
from opentelemetry import context as context_api
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from truefoundry_tracing.testing import FakeLLMServer

BASELINE = os.environ.get("CONFORMANCE_BASELINE") == "traceloop"
LINE_038 = tuple(int(p) for p in metadata.version("traceloop-sdk").split(".")[:2]) < (0, 40)
SOURCES = ["traceloop"] if BASELINE else ["truefoundry_tracing", "traceloop"]

INPUT = "traceloop.entity.input"
OUTPUT = "traceloop.entity.output"
NAME = "traceloop.entity.name"
PATH = "traceloop.entity.path"
KIND = "traceloop.span.kind"
VERSION = "traceloop.entity.version"
ASSOC = "traceloop.association.properties"


@pytest.fixture(scope="session")
def _baseline_exporter() -> InMemorySpanExporter:
    from traceloop.sdk import Traceloop

    exporter = InMemorySpanExporter()
    Traceloop.init(
        app_name="test",
        resource_attributes={"something": "yes"},
        disable_batch=True,
        exporter=exporter,
        # Offline: no anonymous telemetry, and no tiktoken counting of streams, which
        # downloads its encodings (openaipublic.blob.core.windows.net) on 0.38.12.
        telemetry_enabled=False,
        should_enrich_metrics=False,
    )
    return exporter


@pytest.fixture
def exporter(request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter]:
    """The v0.38.12 conftest's exporter, with ``truefoundry_tracing.init`` doing the setup."""
    if BASELINE:
        exporter: InMemorySpanExporter = request.getfixturevalue("_baseline_exporter")
    else:
        import truefoundry_tracing

        exporter = InMemorySpanExporter()
        truefoundry_tracing.init(
            app_name="test",
            resource_attributes={"something": "yes"},
            disable_batch=True,
            exporter=exporter,
        )
    exporter.clear()
    token = context_api.attach(context_api.Context())
    try:
        yield exporter
    finally:
        context_api.detach(token)


@pytest.fixture(params=SOURCES)
def deco(request: pytest.FixtureRequest) -> ModuleType:
    """Where ``workflow`` and ``task`` come from: truefoundry_tracing or traceloop."""
    import traceloop.sdk.decorators

    import truefoundry_tracing

    return (
        truefoundry_tracing if request.param == "truefoundry_tracing" else traceloop.sdk.decorators
    )


@pytest.fixture
def oai(tfy_llm_server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=tfy_llm_server.base_url, api_key="test-key", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def async_oai(tfy_llm_server: FakeLLMServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=tfy_llm_server.base_url, api_key="test-key", max_retries=0)


def names(exporter: InMemorySpanExporter) -> list[str]:
    return [span.name for span in exporter.get_finished_spans()]


def by_name(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def loads(span: ReadableSpan, key: str) -> Any:
    value = attrs(span)[key]
    assert isinstance(value, str)
    return json.loads(value)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def prompt_text(span: ReadableSpan) -> str:
    """The first prompt's text, under the installed line's attribute name."""
    a = attrs(span)
    if LINE_038:
        return str(a.get("gen_ai.prompt.0.content", ""))
    return str(a.get("gen_ai.input.messages", ""))


def completion_text(span: ReadableSpan) -> str:
    a = attrs(span)
    if LINE_038:
        return str(a.get("gen_ai.completion.0.content", ""))
    return str(a.get("gen_ai.output.messages", ""))


def prompt_tokens(span: ReadableSpan) -> Any:
    a = attrs(span)
    return a.get("gen_ai.usage.prompt_tokens" if LINE_038 else "gen_ai.usage.input_tokens")


# --- association properties (test_association_properties.py) -------------------------------


def test_association_properties_set_before_a_workflow_reach_it_and_its_tasks(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    from traceloop.sdk import Traceloop

    @deco.task(name="test_task")
    def test_task() -> None:
        return None

    @deco.workflow(name="test_workflow")
    def test_workflow() -> None:
        return test_task()

    Traceloop.set_association_properties({"user_id": 1, "user_name": "John Doe"})
    test_workflow()

    assert names(exporter) == ["test_task.task", "test_workflow.workflow"]
    for span in exporter.get_finished_spans():
        assert attrs(span)[f"{ASSOC}.user_id"] == 1, span.name  # the int stays an int
        assert attrs(span)[f"{ASSOC}.user_name"] == "John Doe", span.name


def test_association_properties_set_inside_a_workflow_reach_its_own_span(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    from traceloop.sdk import Traceloop

    @deco.workflow(name="test_workflow_within")
    def test_workflow() -> None:
        Traceloop.set_association_properties({"session_id": 15})

    test_workflow()

    assert names(exporter) == ["test_workflow_within.workflow"]
    assert attrs(by_name(exporter, "test_workflow_within.workflow"))[f"{ASSOC}.session_id"] == 15


# --- methods and classes (test_class_tasks.py) -----------------------------------------------


def test_a_method_task_records_self_as_its_class_name(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    class TestService:
        @deco.task(name="instance_method_task")
        def test_method(self, data: str) -> str:
            return f"Processed: {data}"

    result = TestService().test_method("test data")

    assert names(exporter) == ["instance_method_task.task"]
    span = by_name(exporter, "instance_method_task.task")
    assert loads(span, INPUT) == {"args": ["TestService", "test data"], "kwargs": {}}
    assert loads(span, OUTPUT) == result
    assert attrs(span)[NAME] == "instance_method_task"


def test_a_class_decorated_with_method_name_traces_that_method(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="class_decorator_task", method_name="test_method")
    class TestService:
        def test_method(self, data: str) -> str:
            return f"Processed: {data}"

    result = TestService().test_method("test data")

    assert names(exporter) == ["class_decorator_task.task"]
    span = by_name(exporter, "class_decorator_task.task")
    assert loads(span, INPUT) == {"args": ["TestService", "test data"], "kwargs": {}}
    assert loads(span, OUTPUT) == result
    assert attrs(span)[NAME] == "class_decorator_task"


# --- manual LLM spans (test_manual.py) -------------------------------------------------------


def test_track_llm_call_reports_request_and_response(exporter: InMemorySpanExporter) -> None:
    from traceloop.sdk.tracing.manual import LLMMessage, track_llm_call

    question = "Tell me a joke about opentelemetry"
    answer = "Why did the developer trace every move? Observability."
    with track_llm_call(vendor="openai", type="chat") as span:
        span.report_request(
            model="gpt-3.5-turbo", messages=[LLMMessage(role="user", content=question)]
        )
        span.report_response("gpt-3.5-turbo-0125", [answer])

    (llm,) = exporter.get_finished_spans()
    a = attrs(llm)
    assert llm.name == "openai.chat"
    assert a["gen_ai.request.model"] == "gpt-3.5-turbo"
    assert a["gen_ai.prompt.0.role"] == "user"
    assert a["gen_ai.prompt.0.content"] == question
    assert a["gen_ai.response.model"] == "gpt-3.5-turbo-0125"
    # 0.38.12's track_llm_call writes the completion under "gen_ai.completion.0" (its test at
    # that tag reads ".0.content" from the OpenAI instrumentation's span of a real call made
    # inside the block); later lines write ".0.content".
    assert a["gen_ai.completion.0" if LINE_038 else "gen_ai.completion.0.content"] == answer
    assert llm.end_time is not None and llm.start_time is not None
    assert llm.end_time > llm.start_time


# --- entity path (test_nested_tasks.py) ------------------------------------------------------


def test_entity_path_is_the_path_of_the_enclosing_tasks(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="inner_inner_task")
    def inner_inner_task() -> None:
        return None

    @deco.task(name="inner_task")
    def inner_task() -> None:
        return inner_inner_task()

    @deco.task(name="outer_task")
    def outer_task() -> None:
        return inner_task()

    @deco.workflow(name="some_workflow")
    def some_workflow() -> None:
        return outer_task()

    some_workflow()

    assert names(exporter) == [
        "inner_inner_task.task",
        "inner_task.task",
        "outer_task.task",
        "some_workflow.workflow",
    ]
    assert attrs(by_name(exporter, "inner_inner_task.task"))[PATH] == "outer_task.inner_task"
    assert attrs(by_name(exporter, "inner_task.task"))[PATH] == "outer_task"
    assert PATH not in attrs(by_name(exporter, "outer_task.task"))
    assert PATH not in attrs(by_name(exporter, "some_workflow.workflow"))


# --- prompts off (test_privacy_no_prompts.py) ------------------------------------------------


def test_trace_content_false_keeps_token_counts_and_drops_prompts(
    exporter: InMemorySpanExporter,
    deco: ModuleType,
    oai: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "false")  # after init(), as upstream does

    @deco.task(name="joke_creation")
    def create_joke() -> str | None:
        completion = oai.chat.completions.create(
            model="gpt-3.5-turbo",
            messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}],
        )
        return completion.choices[0].message.content

    @deco.workflow(name="pirate_joke_generator")
    def joke_workflow() -> None:
        create_joke()

    joke_workflow()

    assert names(exporter) == [
        "openai.chat",
        "joke_creation.task",
        "pirate_joke_generator.workflow",
    ]
    llm = by_name(exporter, "openai.chat")
    assert prompt_tokens(llm) == 6  # the local server counts one token per word
    assert "opentelemetry" not in prompt_text(llm)
    assert not attrs(llm).get("gen_ai.prompt.0.content")


# --- errors (test_tasks.py, test_workflows.py) ----------------------------------------------


def _assert_one_error_span(exporter: InMemorySpanExporter, name: str, message: str) -> None:
    assert names(exporter) == [name]
    _assert_error(by_name(exporter, name), message)


def _assert_error(span: ReadableSpan, message: str) -> None:
    assert span.status.status_code == StatusCode.ERROR, span.name
    assert message in (span.status.description or ""), span.name


@pytest.mark.parametrize("kind", ["task", "workflow"])
def test_an_exception_marks_the_span_as_error(
    exporter: InMemorySpanExporter, deco: ModuleType, kind: str
) -> None:
    @getattr(deco, kind)(name="failing")
    def failing() -> None:
        raise ValueError("Intentional test error")

    with pytest.raises(ValueError, match="Intentional test error"):
        failing()
    _assert_one_error_span(exporter, f"failing.{kind}", "Intentional test error")


@pytest.mark.parametrize("kind", ["task", "workflow"])
async def test_an_async_exception_marks_the_span_as_error(
    exporter: InMemorySpanExporter, deco: ModuleType, kind: str
) -> None:
    @getattr(deco, kind)(name="failing_async")
    async def failing_async() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("Intentional async test error")

    with pytest.raises(ValueError, match="Intentional async test error"):
        await failing_async()
    _assert_one_error_span(exporter, f"failing_async.{kind}", "Intentional async test error")


@pytest.mark.parametrize("kind", ["task", "workflow"])
def test_an_exception_inside_a_generator_marks_its_span_as_error(
    exporter: InMemorySpanExporter, deco: ModuleType, kind: str
) -> None:
    @getattr(deco, kind)(name="failing_generator")
    def failing_generator() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("Intentional generator test error")

    results = []
    with pytest.raises(ValueError, match="Intentional generator test error"):
        for number in failing_generator():
            results.append(number)
    assert results == [1, 2]
    _assert_one_error_span(exporter, f"failing_generator.{kind}", "generator test error")


@pytest.mark.parametrize("kind", ["task", "workflow"])
async def test_an_exception_inside_an_async_generator_marks_its_span_as_error(
    exporter: InMemorySpanExporter, deco: ModuleType, kind: str
) -> None:
    @getattr(deco, kind)(name="failing_async_generator")
    async def failing_async_generator() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0.01)
        raise ValueError("Intentional async generator test error")

    results = []
    with pytest.raises(ValueError, match="Intentional async generator test error"):
        async for number in failing_async_generator():
            results.append(number)
    assert results == [1]
    _assert_one_error_span(
        exporter, f"failing_async_generator.{kind}", "async generator test error"
    )


def test_an_error_in_a_task_marks_the_task_and_its_workflow(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="failing_nested_task")
    def failing_nested_task() -> None:
        raise ValueError("Intentional nested error")

    @deco.workflow(name="parent_workflow")
    def parent_workflow() -> None:
        return failing_nested_task()

    with pytest.raises(ValueError, match="Intentional nested error"):
        parent_workflow()
    assert len(exporter.get_finished_spans()) == 2
    _assert_error(by_name(exporter, "failing_nested_task.task"), "Intentional nested error")
    _assert_error(by_name(exporter, "parent_workflow.workflow"), "Intentional nested error")


async def test_an_error_in_an_async_task_marks_the_task_and_its_workflow(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="failing_nested_async_task")
    async def failing_task() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("Intentional nested async error")

    @deco.workflow(name="parent_async_workflow")
    async def parent() -> None:
        return await failing_task()

    with pytest.raises(ValueError, match="Intentional nested async error"):
        await parent()
    assert len(exporter.get_finished_spans()) == 2
    _assert_error(by_name(exporter, "failing_nested_async_task.task"), "nested async error")
    _assert_error(by_name(exporter, "parent_async_workflow.workflow"), "nested async error")


def test_an_error_in_a_generator_task_marks_the_task_and_its_workflow(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="failing_generator_task")
    def failing_generator_task() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("Intentional nested generator error")

    @deco.workflow(name="generator_parent_workflow")
    def parent() -> list[int]:
        return list(failing_generator_task())

    with pytest.raises(ValueError, match="Intentional nested generator error"):
        parent()
    assert len(exporter.get_finished_spans()) == 2
    _assert_error(by_name(exporter, "failing_generator_task.task"), "nested generator error")
    _assert_error(by_name(exporter, "generator_parent_workflow.workflow"), "generator error")


async def test_an_error_in_an_async_generator_task_marks_the_task_and_its_workflow(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="failing_async_generator_task")
    async def failing_task() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0.01)
        yield 2
        raise ValueError("Intentional nested async generator error")

    @deco.workflow(name="async_generator_parent_workflow")
    async def parent() -> list[int]:
        return [number async for number in failing_task()]

    with pytest.raises(ValueError, match="Intentional nested async generator error"):
        await parent()
    assert len(exporter.get_finished_spans()) == 2
    _assert_error(by_name(exporter, "failing_async_generator_task.task"), "async generator")
    _assert_error(by_name(exporter, "async_generator_parent_workflow.workflow"), "generator")


# --- workflows with an LLM call (test_workflows.py, test_sdk_initialization.py) --------------


def _assert_prompt_workflow(exporter: InMemorySpanExporter, joke: str | None) -> None:
    assert names(exporter) == [
        "openai.chat",
        "something_creator.task",
        "pirate_joke_generator.workflow",
    ]
    llm = by_name(exporter, "openai.chat")
    assert "Tell me a joke about OpenTelemetry" in prompt_text(llm)
    assert completion_text(llm)
    a = attrs(llm)
    assert a["traceloop.prompt.template"] == "Tell me a {what} about {subject}"
    assert a["traceloop.prompt.template_variables.what"] == "joke"
    assert a["traceloop.prompt.template_variables.subject"] == "OpenTelemetry"
    # 0.38.12 keeps the version an int; later lines write it as a string.
    assert a["traceloop.prompt.version"] == (5 if LINE_038 else "5")

    workflow_span = by_name(exporter, "pirate_joke_generator.workflow")
    task_span = by_name(exporter, "something_creator.task")
    assert loads(task_span, INPUT) == {"args": ["joke"], "kwargs": {"subject": "OpenTelemetry"}}
    assert loads(task_span, OUTPUT) == joke
    assert parent_id(task_span) == span_id(workflow_span)
    assert parent_id(llm) == span_id(task_span)
    assert attrs(workflow_span)[NAME] == "pirate_joke_generator"
    assert attrs(workflow_span)[VERSION] == 1
    assert attrs(task_span)[VERSION] == 2


def test_set_prompt_reaches_the_next_llm_span_of_a_workflow(
    exporter: InMemorySpanExporter, deco: ModuleType, oai: openai.OpenAI
) -> None:
    from traceloop.sdk import Traceloop

    @deco.task(name="something_creator", version=2)
    def create_something(what: str, subject: str) -> str | None:
        Traceloop.set_prompt(
            "Tell me a {what} about {subject}", {"what": what, "subject": subject}, 5
        )
        completion = oai.chat.completions.create(
            model="gpt-3.5-turbo",
            messages=[{"role": "user", "content": f"Tell me a {what} about {subject}"}],
        )
        return completion.choices[0].message.content

    @deco.workflow(name="pirate_joke_generator", version=1)
    def joke_workflow() -> str | None:
        return create_something("joke", subject="OpenTelemetry")

    _assert_prompt_workflow(exporter, joke_workflow())


async def test_set_prompt_reaches_the_next_llm_span_of_an_async_workflow(
    exporter: InMemorySpanExporter, deco: ModuleType, async_oai: openai.AsyncOpenAI
) -> None:
    from traceloop.sdk import Traceloop

    @deco.task(name="something_creator", version=2)
    async def create_something(what: str, subject: str) -> str | None:
        Traceloop.set_prompt(
            "Tell me a {what} about {subject}", {"what": what, "subject": subject}, 5
        )
        completion = await async_oai.chat.completions.create(
            model="gpt-3.5-turbo",
            messages=[{"role": "user", "content": f"Tell me a {what} about {subject}"}],
        )
        return completion.choices[0].message.content

    @deco.workflow(name="pirate_joke_generator", version=1)
    async def joke_workflow() -> str | None:
        return await create_something("joke", subject="OpenTelemetry")

    _assert_prompt_workflow(exporter, await joke_workflow())


def test_a_streaming_generator_task_nests_under_the_task_that_created_it(
    exporter: InMemorySpanExporter, deco: ModuleType, oai: openai.OpenAI
) -> None:
    @deco.task(name="pirate_joke_generator")
    def joke_task() -> Iterator[Any]:
        stream = oai.chat.completions.create(
            model="gpt-3.5-turbo",
            messages=[{"role": "user", "content": "Tell me a joke about OpenTelemetry"}],
            stream=True,
        )
        yield from stream

    @deco.task(name="joke_runner")
    def joke_runner() -> Iterator[Any]:
        return joke_task()

    @deco.workflow(name="joke_manager")
    def joke_workflow() -> None:
        for _chunk in joke_runner():
            pass

    joke_workflow()

    assert set(names(exporter)) == {
        "openai.chat",
        "pirate_joke_generator.task",
        "joke_runner.task",
        "joke_manager.workflow",
    }
    generator = by_name(exporter, "pirate_joke_generator.task")
    runner = by_name(exporter, "joke_runner.task")
    manager = by_name(exporter, "joke_manager.workflow")
    llm = by_name(exporter, "openai.chat")
    assert parent_id(llm) == span_id(generator)
    assert parent_id(generator) == span_id(runner)
    assert parent_id(runner) == span_id(manager)
    assert llm.end_time is not None and manager.end_time is not None
    assert llm.end_time <= manager.end_time


def test_unrelated_entities_are_separate_roots(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.workflow(name="workflow_1")
    def workflow_1() -> None:
        return None

    @deco.task(name="task_1")
    def task_1() -> None:
        return None

    workflow_1()
    task_1()

    assert names(exporter) == ["workflow_1.workflow", "task_1.task"]
    workflow_span, task_span = exporter.get_finished_spans()
    assert attrs(workflow_span)[NAME] == "workflow_1"
    assert attrs(workflow_span)[KIND] == "workflow"
    assert attrs(task_span)[NAME] == "task_1"
    assert attrs(task_span)[KIND] == "task"
    assert task_span.parent is None


def test_unserializable_arguments_and_results_are_traced(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="unserializable_task")
    def unserializable_task(obj: object) -> object:
        return object()

    unserializable_task(object())
    assert names(exporter) == ["unserializable_task.task"]


async def test_unserializable_arguments_and_results_of_async_tasks_are_traced(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.task(name="unserializable_task")
    async def unserializable_task(obj: object) -> object:
        return object()

    await unserializable_task(object())
    assert names(exporter) == ["unserializable_task.task"]


async def test_an_async_generator_workflow_is_one_span(
    exporter: InMemorySpanExporter, deco: ModuleType
) -> None:
    @deco.workflow(name="async generator")
    async def stream_numbers() -> AsyncIterator[int]:
        for i in range(3):
            yield i
            await asyncio.sleep(0.01)

    results = [number async for number in stream_numbers()]
    assert results == [0, 1, 2]
    assert names(exporter) == ["async generator.workflow"]


def test_resource_attributes_reach_the_llm_span(
    exporter: InMemorySpanExporter, oai: openai.OpenAI
) -> None:
    oai.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}],
    )
    (llm,) = exporter.get_finished_spans()
    assert llm.resource.attributes["something"] == "yes"
    assert llm.resource.attributes["service.name"] == "test"


# --- the pins above are traceloop's own behaviour --------------------------------------------


@pytest.mark.skipif(BASELINE, reason="this is the baseline run")
def test_baseline_is_plain_traceloop(tmp_path: Path) -> None:
    """Every test above also passes with plain ``Traceloop.init`` on the installed line."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("TFY_", "TRACELOOP_", "OTEL_", "PYTEST_XDIST"))
    }
    env.update(
        CONFORMANCE_BASELINE="traceloop",
        TRACELOOP_METRICS_ENABLED="false",
        TRACELOOP_TELEMETRY="false",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:xdist",
            "-p",
            "no:randomly",
            __file__,
            "-k",
            "not test_baseline_is_plain_traceloop",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        env=env,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
