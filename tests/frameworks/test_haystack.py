"""Haystack under ``init()``, on the major the environment has (2.x in ``fw-agents``, 3.x in
``fw-more``): a pipeline run and an ``Agent`` run with a tool call are each one trace, plain and
streamed, with and without ``@workflow``, with one LLM span per model call; Haystack's
telemetry is off and its own tracing never doubles a span.

On both majors this library records Haystack's own tracing: a span per pipeline, component
and agent run, and per tool call (Haystack 3's tracing reports tool calls and agent steps;
on Haystack 2, which reports neither, the tool span comes from ``Tool.invoke`` and an agent's
model and tool calls sit under its ``chat_generator`` and ``tool_invoker`` components).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import textwrap
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

pytest.importorskip("haystack", reason="Haystack runs in the framework environments")

from _support import (
    ANSWER,
    API_KEY,
    QUESTION,
    TOOL_CALL,
    load_example,
    one_trace,
    parent,
    require_instrumented,
    script_weather,
    tree_names,
)

import truefoundry_tracing as tt
from truefoundry_tracing import workflow
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("haystack_pipeline")
HAYSTACK = importlib.metadata.version("haystack-ai")
HAYSTACK3 = int(HAYSTACK.split(".")[0]) >= 3
CAPITAL = example.ANSWER
# Haystack 2's own tracer's spans: never beside the instrumentation's
HAYSTACK_OWN = ("haystack.pipeline.run", "haystack.component.run", "haystack.tracing.auto_enable")
# where an Agent's model and tool calls sit: Haystack 3 reports its steps, Haystack 2 the
# components the agent runs
CALLS, TOOLS = (
    ("step_0.task", "step_0.task") if HAYSTACK3 else ("chat_generator.task", "tool_invoker.task")
)
ANSWERED = "step_1.task" if HAYSTACK3 else "chat_generator.task"
modes = pytest.mark.parametrize(
    ("stream", "wrapped"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["run", "streamed", "run-in-workflow", "streamed-in-workflow"],
)


def _no_doubles(spans: CapturedSpans) -> None:
    names = spans.names
    assert "haystack.openai.chat" not in names
    assert not [n for n in names if n in HAYSTACK_OWN], names


@modes
def test_pipeline_one_trace_one_llm_span_and_telemetry_off(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, stream: bool, wrapped: bool
) -> None:
    status = require_instrumented("haystack")
    reason = {o.name: o for o in status.instrument_report}["haystack"].reason
    assert "off: Haystack's telemetry (HAYSTACK_TELEMETRY_ENABLED=False)" in reason
    llm.reply(CAPITAL, prompt_tokens=8, completion_tokens=7)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")
    if wrapped:
        ask = workflow(name="capital_app")(ask)

    assert ask("France", stream) == CAPITAL

    assert len(llm.chat_requests()) == 1
    trace = one_trace(
        tfy_spans, "capital_app.workflow" if wrapped else "haystack_pipeline.workflow"
    )
    top = "capital_app.workflow > " if wrapped else ""
    _no_doubles(tfy_spans)
    trace.assert_one_llm_span_per_call(1)
    view = trace.llm()
    assert (view.model, view.output_text) == ("gpt-4o-mini", CAPITAL)
    assert (view.input_tokens, view.output_tokens) == (8, 7)
    assert "France" in view.input_messages[-1].content
    if stream:
        trace.assert_stream_complete()
    trace.assert_tree(
        f"{top}haystack_pipeline.workflow > prompt.task",
        f"{top}haystack_pipeline.workflow > llm.task > openai.chat",
    )
    pipeline = trace.one("haystack_pipeline.workflow")
    inputs = json.loads(pipeline.attributes["traceloop.entity.input"])
    assert inputs["prompt"] == {"country": "France"}
    component = trace.one("llm.task")
    assert component.attributes["traceloop.span.kind"] == "task"
    replies = json.loads(component.attributes["traceloop.entity.output"])["replies"]
    assert replies[0]["content"] == [{"text": CAPITAL}]
    assert "France" in component.attributes["traceloop.entity.input"]


@modes
def test_agent_with_a_tool_is_one_trace_with_agent_step_and_tool_spans(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    stream: bool,
    wrapped: bool,
) -> None:
    require_instrumented("haystack")
    script_weather(llm)
    weather = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
    if wrapped:
        weather = workflow(name="weather_app")(weather)

    assert weather(QUESTION, stream) == ANSWER

    assert len(llm.chat_requests()) == 2
    _no_doubles(tfy_spans)
    tfy_spans.assert_one_llm_span_per_call(2)
    first, second = tfy_spans.llm_spans().sorted()
    asked, answered = tfy_spans.llm(first), tfy_spans.llm(second)
    assert asked.input_messages[-1].content == QUESTION
    assert [c["name"] for c in asked.output_messages[-1].tool_calls] == [TOOL_CALL["name"]]
    assert (asked.input_tokens, asked.output_tokens) == (20, 5)
    assert answered.output_text == ANSWER  # the whole streamed text
    assert (answered.input_tokens, answered.output_tokens) == (30, 7)
    if stream:
        tfy_spans.assert_stream_complete(second)
    trace = one_trace(tfy_spans, "weather_app.workflow" if wrapped else "agent.agent")
    top = "weather_app.workflow > agent.agent > "
    top = top if wrapped else "agent.agent > "
    trace.assert_tree(
        f"{top}{CALLS} > openai.chat",
        f"{top}{TOOLS} > get_weather.tool",
        f"{top}{ANSWERED} > openai.chat",
    )
    assert [parent(trace, s).name for s in trace.llm_spans()] == [CALLS, ANSWERED]
    agent = trace.one("agent.agent")
    assert agent.attributes["traceloop.span.kind"] == "agent"
    assert QUESTION in agent.attributes["traceloop.entity.input"]
    result = json.loads(agent.attributes["traceloop.entity.output"])
    # Haystack 3 records the agent's result; Haystack 2 its state (the messages)
    last = result["last_message"] if HAYSTACK3 else result["messages"][-1]
    assert last["content"] == [{"text": ANSWER}]
    tool = trace.one("get_weather.tool")
    assert tool.attributes["traceloop.span.kind"] == "tool"
    assert json.loads(tool.attributes["traceloop.entity.input"]) == TOOL_CALL["arguments"]
    assert json.loads(tool.attributes["traceloop.entity.output"]) == "Sunny, 24 C in Paris"


def test_no_content_with_trace_content_off(tfy_spans: CapturedSpans, llm: FakeLLMServer) -> None:
    tt.init("framework-tests", console=False, trace_content=False)
    script_weather(llm)

    assert example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")(QUESTION, False) == ANSWER

    assert {"agent.agent", "get_weather.tool"} <= set(tfy_spans.names)
    tfy_spans.assert_absent(QUESTION, ANSWER, "Paris")


def test_imported_after_init_haystack_adds_no_span_of_its_own(
    run_offline: Callable[[list[str]], CompletedProcess[str]],
) -> None:
    """Haystack 2 turns its own OpenTelemetry tracer on when imported after ``init()`` (a
    second pipeline and component span, and a probe span at import); ``init()`` keeps it off."""
    script = textwrap.dedent(
        """
        import json
        import truefoundry_tracing as tt
        from truefoundry_tracing.testing import FakeLLMServer, capture_spans

        tt.init(app_name="order", console=False)
        with FakeLLMServer() as server, capture_spans() as spans:
            import haystack.tracing
            from haystack import Pipeline
            from haystack.components.generators.chat import OpenAIChatGenerator
            from haystack.dataclasses import ChatMessage
            from haystack.utils import Secret

            server.reply("Paris.")
            llm = OpenAIChatGenerator(
                api_key=Secret.from_token("sk-test"), model="m", api_base_url=server.base_url
            )
            pipe = Pipeline()
            pipe.add_component("llm", llm)
            pipe.run({"llm": {"messages": [ChatMessage.from_user("Capital of France?")]}})
            tracer = type(haystack.tracing.tracer.actual_tracer).__name__
            print(json.dumps([tracer, len(spans.traces()), sorted(spans.names)]))
        """
    )
    tracer, traces, names = json.loads(run_offline(["-c", script]).stdout.splitlines()[-1])
    assert traces == 1
    assert (tracer, names) == (
        "TraceloopTracer",
        ["haystack_pipeline.workflow", "llm.task", "openai.chat"],
    )


def test_async_agent_run_with_a_failing_tool_marks_the_tool_span(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    from haystack.components.agents import Agent
    from haystack.dataclasses import ChatMessage
    from haystack.tools import Tool

    def no_weather(city: str) -> str:
        raise RuntimeError(f"no weather for {city}")

    require_instrumented("haystack")
    tool = Tool(
        name="get_weather",
        description=example.WEATHER_TOOL.description,
        parameters=example.WEATHER_TOOL.parameters,
        function=no_weather,
    )
    llm.reply(tool_calls=[TOOL_CALL])
    llm.reply("No weather today.")
    agent = Agent(chat_generator=example.generator(llm.base_url, API_KEY, "m", False), tools=[tool])

    result = asyncio.run(agent.run_async(messages=[ChatMessage.from_user(QUESTION)]))

    assert result["last_message"].text == "No weather today."
    trace = one_trace(tfy_spans, "agent.agent")
    trace.assert_tree(f"agent.agent > {TOOLS} > get_weather.tool")
    trace.assert_one_llm_span_per_call(2)
    failed = trace.one("get_weather.tool")
    assert failed.status == "ERROR"
    assert json.loads(failed.attributes["traceloop.entity.input"]) == TOOL_CALL["arguments"]
    # Haystack 3 hands the tracer the error as the tool's output; on 2.x it is the exception
    where = failed.attributes["traceloop.entity.output"] if HAYSTACK3 else failed.status_message
    assert "no weather for Paris" in where


def test_a_tracer_the_app_set_is_kept_and_the_report_says_so(
    run_offline: Callable[[list[str]], CompletedProcess[str]],
) -> None:
    script = textwrap.dedent(
        """
        import json
        from haystack import tracing
        from haystack.tracing.logging_tracer import LoggingTracer
        import truefoundry_tracing as tt

        tracing.enable_tracing(LoggingTracer())
        status = tt.init(app_name="own-tracer", console=False)
        reason = {o.name: o for o in status.instrument_report}["haystack"].reason
        print(json.dumps([type(tracing.tracer.actual_tracer).__name__, reason]))
        """
    )
    tracer, reason = json.loads(run_offline(["-c", script]).stdout.splitlines()[-1])
    assert tracer == "LoggingTracer"
    assert "not traced: the app set Haystack's tracer (LoggingTracer)" in reason


@pytest.mark.skipif(HAYSTACK3, reason="Haystack 2 only: Haystack 3 turns on no tracer by itself")
@pytest.mark.parametrize("auto", ["", "true"], ids=["auto-trace-unset", "auto-trace-true"])
def test_haystack2_tracer_turned_on_before_init_is_replaced_unless_asked_for(
    run_offline: Callable[[list[str]], CompletedProcess[str]], auto: str
) -> None:
    """Haystack 2 imported after the app set a tracer provider turns its own OpenTelemetry
    tracer on; ``init()`` replaces it (as ``HAYSTACK_AUTO_TRACE_ENABLED=false`` promises),
    unless the app set that variable to keep it, which the report then says."""
    script = textwrap.dedent(
        f"""
        import json, os
        os.environ.pop("HAYSTACK_AUTO_TRACE_ENABLED", None)
        if {auto!r}:
            os.environ["HAYSTACK_AUTO_TRACE_ENABLED"] = {auto!r}
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        from haystack import tracing
        import truefoundry_tracing as tt

        before = type(tracing.tracer.actual_tracer).__name__
        status = tt.init(app_name="auto-trace", console=False)
        reason = {{o.name: o for o in status.instrument_report}}["haystack"].reason
        print(json.dumps([before, type(tracing.tracer.actual_tracer).__name__, reason]))
        """
    )
    before, after, reason = json.loads(run_offline(["-c", script]).stdout.splitlines()[-1])
    assert before == "OpenTelemetryTracer"
    if auto:
        assert after == "OpenTelemetryTracer"
        assert "not traced: Haystack's own OpenTelemetryTracer is on" in reason
        assert "HAYSTACK_AUTO_TRACE_ENABLED=true lets Haystack 2 turn it on" in reason
    else:
        assert after == "TraceloopTracer"
        assert "recorded by this library" in reason


def test_example_runs_offline_and_prints_its_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("haystack_pipeline")
    assert out.split("\n")[:3] == [CAPITAL, CAPITAL, example.WEATHER]
    pipeline = ["haystack_pipeline.workflow", "prompt.task", "llm.task", "openai.chat"]
    agent = ["agent.agent", "step_0.task", "openai.chat", "get_weather.tool"]
    agent += ["step_1.task", "openai.chat"]
    if not HAYSTACK3:
        agent = ["agent.agent", "chat_generator.task", "openai.chat", "tool_invoker.task"]
        agent += ["get_weather.tool", "chat_generator.task", "openai.chat"]
    assert tree_names(err) == pipeline * 2 + agent
