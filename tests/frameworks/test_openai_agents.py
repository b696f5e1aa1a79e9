"""OpenAI Agents SDK under ``init()``: one trace per run (with and without ``@workflow``),
agent and tool spans, one LLM span per model call, and nothing sent to api.openai.com, on both
model APIs, plain and streamed, on both traceloop lines (traceloop's instrumentation on 0.62,
this library's on 0.38, which ships none)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace

pytest.importorskip("agents", reason="the OpenAI Agents SDK runs in the framework environments")

from _support import API_KEY, load_example, tree_names

import truefoundry_tracing as tt
from truefoundry_tracing._instrument_table import KNOWN
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, FakeResponsesServer

example = load_example("openai_agents_weather")
ANSWER = "It is sunny in Paris, 24 C."
TOOL_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
EXPORT_OFF = "off: the OpenAI Agents SDK's own trace export to api.openai.com"


def require_instrumented(name: str) -> tt.TracingStatus:
    """init() with the defaults; the Agents SDK is traced on every line (traceloop's
    instrumentation where this traceloop-sdk ships it, this library's otherwise)."""
    status = tt.init("framework-tests", console=False)
    outcome = {o.name: o for o in status.instrument_report}[name]
    assert outcome.active, str(outcome)
    return status


@pytest.fixture
def responses() -> FakeResponsesServer:
    with FakeResponsesServer() as server:
        yield server


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "workflow"])
@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize("api", ["responses", "chat"])
def test_one_trace_agent_tool_and_one_complete_llm_span_per_model_call(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    responses: FakeResponsesServer,
    api: str,
    stream: bool,
    wrapped: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    status = require_instrumented("openai_agents")
    outcome = {o.name: o for o in status.instrument_report}["openai_agents"]
    assert EXPORT_OFF in outcome.reason
    server = responses if api == "responses" else llm
    server.reply(tool_calls=[TOOL_CALL], prompt_tokens=20, completion_tokens=5)
    server.reply(ANSWER, prompt_tokens=30, completion_tokens=7)
    ask = example.make_app(server.base_url, API_KEY, "gpt-4o-mini", api)
    if wrapped:
        ask = tt.workflow(name="weather_app")(ask)

    async def app() -> tuple[str, bool]:
        answer = await ask("What is the weather in Paris?", stream)
        return answer, trace.get_current_span().get_span_context().is_valid

    assert asyncio.run(app()) == (ANSWER, False)  # no span of the run left current
    assert "Failed to detach context" not in caplog.text

    calls = len(server.model_requests() if api == "responses" else llm.chat_requests())
    assert calls == 2
    tfy_spans.assert_one_llm_span_per_call(calls)
    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    top = "weather_app.workflow > " if wrapped else ""
    assert tfy_spans.root.name == ("weather_app.workflow" if wrapped else "Agent Workflow")
    tfy_spans.assert_tree(
        f"{top}Agent Workflow > Weather.agent > get_weather.tool",
        f"{top}Agent Workflow > Weather.agent > llm",
    )
    first, second = tfy_spans.llm_spans()
    assert all(tfy_spans.parent(s).name == "Weather.agent" for s in (first, second))
    assert tfy_spans.one("Weather.agent").attributes["traceloop.span.kind"] == "agent"
    asked, answered = tfy_spans.llm(first), tfy_spans.llm(second)
    assert asked.model == "gpt-4o-mini"
    assert asked.input_messages[-1].content == "What is the weather in Paris?"
    assert [c["name"] for c in asked.output_messages[-1].tool_calls] == ["get_weather"]
    assert (asked.input_tokens, asked.output_tokens) == (20, 5)
    assert (answered.input_tokens, answered.output_tokens) == (30, 7)
    assert answered.output_text == ANSWER  # the whole streamed text


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_tool_span_has_the_arguments_and_the_result(
    tfy_spans: CapturedSpans, responses: FakeResponsesServer, stream: bool
) -> None:
    require_instrumented("openai_agents")
    responses.reply(tool_calls=[TOOL_CALL])
    responses.reply(ANSWER)
    ask = example.make_app(responses.base_url, API_KEY, "gpt-4o-mini")

    assert asyncio.run(ask("What is the weather in Paris?", stream)) == ANSWER

    tool = tfy_spans.one("get_weather.tool")
    assert tool.attributes["traceloop.span.kind"] == "tool"
    # 0.62 records them as gen_ai.tool.call.*, 0.38 (ours) as the entity's input and output
    arguments = tool.attributes.get("traceloop.entity.input") or tool.attributes.get(
        "gen_ai.tool.call.arguments"
    )
    result = tool.attributes.get("traceloop.entity.output") or tool.attributes.get(
        "gen_ai.tool.call.result"
    )
    assert json.loads(arguments) == {"city": "Paris"}
    assert result is not None and "Sunny, 24 C in Paris" in result


def test_the_sdk_keeps_no_exporter_of_its_own() -> None:
    require_instrumented("openai_agents")
    from agents.tracing import get_trace_provider
    from agents.tracing.processors import default_processor

    processors = get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]
    assert default_processor() not in processors
    assert len(processors) == 1  # traceloop's, feeding this library's pipeline


def test_a_processor_the_app_added_before_init_keeps_receiving_runs(
    fresh_python: Callable[..., dict[str, Any]],
) -> None:
    """Only the SDK's default exporter goes: the app's own processor, registered before
    init(), stays and sees the run, and the run is traced too."""
    data = fresh_python(
        """
        from agents import add_trace_processor, trace
        from agents.tracing import TracingProcessor, get_trace_provider
        from agents.tracing.processors import default_processor
        from truefoundry_tracing.testing import capture_spans

        class Mine(TracingProcessor):
            def __init__(self): self.traces = []
            def on_trace_start(self, t): self.traces.append(t.name)
            def on_trace_end(self, t): pass
            def on_span_start(self, s): pass
            def on_span_end(self, s): pass
            def shutdown(self): pass
            def force_flush(self): pass

        mine = Mine()
        add_trace_processor(mine)
        import truefoundry_tracing as tt
        tt.init("agents", console=False)
        with capture_spans() as spans:
            with trace("nightly run"):
                pass
        processors = get_trace_provider()._multi_processor._processors
        print(json.dumps({"mine": mine.traces, "kept": mine in processors,
                          "default": default_processor() in processors,
                          "count": len(processors), "spans": [s.name for s in spans]}))
        """
    )
    assert data["mine"] == ["nightly run"] and data["kept"], data
    assert not data["default"] and data["count"] == 2, data
    assert data["spans"] == ["Agent Workflow"], data


def test_example_runs_offline_and_prints_two_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    require_instrumented("openai_agents")  # the tree below needs its agent and tool spans
    out, err = run_example("openai_agents_weather")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    run = ["Agent Workflow", "Weather.agent", "openai.response", "get_weather.tool"]
    assert tree_names(err) == [*run, "openai.response"] * 2


def test_the_sdk_tracing_stays_on_and_its_export_off(
    fresh_python: Callable[..., dict[str, Any]],
) -> None:
    """The SDK's tracing feeds an instrumentation on every line (0.38: this library's), so
    init() leaves OPENAI_AGENTS_DISABLE_TRACING alone and removes the SDK's exporter instead."""
    data = fresh_python(
        """
        import os, truefoundry_tracing as tt
        st = tt.init("agents", console=False)
        import agents
        o = {o.name: o for o in tt.status().instrument_report}["openai_agents"]
        print(json.dumps({"state": o.state, "reason": o.reason,
                          "env": os.environ.get("OPENAI_AGENTS_DISABLE_TRACING")}))
        """
    )
    assert data["state"] == "applied", data
    assert data["env"] is None
    assert EXPORT_OFF in data["reason"]


def test_the_users_own_setting_is_honoured(
    fresh_python: Callable[..., dict[str, Any]],
) -> None:
    """OPENAI_AGENTS_DISABLE_TRACING=true set by the app stays: the SDK makes no spans then."""
    data = fresh_python(
        """
        import os
        os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "true"
        import truefoundry_tracing as tt
        tt.init("agents", console=False)
        from agents.tracing import get_trace_provider
        print(json.dumps({"env": os.environ.get("OPENAI_AGENTS_DISABLE_TRACING"),
                          "disabled": get_trace_provider().create_trace("t").__class__.__name__}))
        """
    )
    assert data == {"env": "true", "disabled": "NoOpTrace"}


def test_a_span_ended_in_another_context_leaves_both_contexts_clean(
    tfy_spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    """An SDK span started in one context (a task) and ended in another is recorded whole,
    with no "Failed to detach context" and nothing left current in either (this library's
    instrumentation; traceloop 0.62's logs the failed detach)."""
    require_instrumented("openai_agents")
    if KNOWN["openai_agents"].package != "truefoundry-tracing":
        pytest.skip("traceloop's instrumentation of the Agents SDK is used on this line")
    import contextvars

    from agents.tracing import agent_span
    from agents.tracing import trace as sdk_trace

    started = contextvars.copy_context()
    with sdk_trace("Weather run"):
        span = agent_span(name="Weather")
        started.run(span.start)
        span.finish()
    assert "Failed to detach context" not in caplog.text
    assert not trace.get_current_span().get_span_context().is_valid
    assert tfy_spans.one("Weather.agent").attributes["traceloop.span.kind"] == "agent"
    assert tfy_spans.parent(tfy_spans.one("Weather.agent")).name == "Agent Workflow"


def test_a_handoff_and_a_guardrail_are_in_the_run_s_trace(
    tfy_spans: CapturedSpans, responses: FakeResponsesServer
) -> None:
    """A triage agent hands off to the weather agent, past an input guardrail: one trace, a
    span per agent, the handoff under the agent that made it, each LLM span under its agent."""
    require_instrumented("openai_agents")
    from agents import (
        Agent,
        GuardrailFunctionOutput,
        OpenAIResponsesModel,
        Runner,
        input_guardrail,
    )
    from openai import AsyncOpenAI

    @input_guardrail
    def polite(_ctx: Any, _agent: Any, _input: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    client = AsyncOpenAI(base_url=responses.base_url, api_key=API_KEY, max_retries=0)
    model = OpenAIResponsesModel("gpt-4o-mini", client)
    weather = Agent(name="Weather", model=model, tools=[example.get_weather])
    triage = Agent(name="Triage", model=model, handoffs=[weather], input_guardrails=[polite])
    responses.reply(tool_calls=[{"id": "call_a", "name": "transfer_to_weather", "arguments": {}}])
    responses.reply(tool_calls=[{"id": "call_b", **TOOL_CALL}])
    responses.reply(ANSWER)

    result = asyncio.run(Runner.run(triage, "What is the weather in Paris?"))

    assert result.final_output == ANSWER
    tfy_spans.assert_one_llm_span_per_call(3)
    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    (handoff,) = tfy_spans.where(lambda s: s.name.endswith(".handoff"))
    assert tfy_spans.parent(handoff).name == "Triage.agent"
    if KNOWN["openai_agents"].package == "truefoundry-tracing":  # 0.62 names it "Triage → unknown"
        assert handoff.name == "Triage → Weather.handoff"
        guardrail = tfy_spans.one("polite.guardrail")
        assert json.loads(guardrail.attributes["traceloop.entity.output"]) is False
    tfy_spans.assert_tree("Agent Workflow > Weather.agent > get_weather.tool")
    parents = [tfy_spans.parent(s).name for s in tfy_spans.llm_spans()]
    assert parents == ["Triage.agent", "Weather.agent", "Weather.agent"], tfy_spans.tree()
