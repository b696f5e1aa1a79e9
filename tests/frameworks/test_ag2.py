"""AG2 under ``init()``: an agent with a tool, asked and run with its answer streamed, with and
without ``@workflow``: one trace per turn, an agent span, a tool span with its arguments and
result, and one LLM span per model call under the agent."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import pytest

pytest.importorskip("ag2", reason="AG2 runs in the framework environments")

from _support import (
    ANSWER,
    API_KEY,
    QUESTION,
    TOOL_CALL,
    assert_weather_run,
    load_example,
    one_trace,
    require_instrumented,
    script_weather,
    tree_names,
)

from truefoundry_tracing import workflow
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("ag2_chat")


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "in-workflow"])
@pytest.mark.parametrize("stream", [False, True], ids=["ask", "run-streamed"])
def test_one_trace_agent_tool_and_one_llm_span_per_model_call(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, stream: bool, wrapped: bool
) -> None:
    require_instrumented("ag2")
    script_weather(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")
    if wrapped:
        ask = workflow(name="weather_app")(ask)

    assert asyncio.run(ask(QUESTION, stream)) == ANSWER  # streamed: put together from chunks

    assert_weather_run(tfy_spans, llm, wrapped=wrapped, stream=stream)


def test_a_failing_tool_is_an_error_on_its_span_and_the_turn_goes_on(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("ag2")
    from ag2 import Agent, tool
    from ag2.config.openai import OpenAIConfig

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        raise RuntimeError(f"no weather station in {city}")

    llm.reply(tool_calls=[TOOL_CALL])
    llm.reply("I could not find out.")
    config = OpenAIConfig(model="gpt-4o", base_url=llm.base_url, api_key=API_KEY, max_retries=0)
    agent = Agent("weather", config=config, tools=[get_weather])

    assert asyncio.run(agent.ask(QUESTION)).body == "I could not find out."
    tool_span = tfy_spans.one("get_weather.tool")
    assert tool_span.status == "ERROR"
    assert "no weather station in Paris" in (tool_span.status_message or "")
    tfy_spans.assert_one_llm_span_per_call(2)
    assert agent.middleware == ()  # the agent's own middleware list is left as it was


def test_two_agents_one_asking_the_other_through_a_tool_are_one_trace(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("ag2")
    from ag2 import Agent, tool
    from ag2.config.openai import OpenAIConfig

    config = OpenAIConfig(model="gpt-4o-mini", base_url=llm.base_url, api_key=API_KEY)
    expert = Agent("expert", config=config)

    @tool
    async def ask_expert(question: str) -> str:
        """Ask the expert."""
        return str((await expert.ask(question)).body)

    lead = Agent("lead", config=config, tools=[ask_expert])
    llm.reply(tool_calls=[{"name": "ask_expert", "arguments": {"question": "Capital?"}}])
    llm.reply("Paris.")
    llm.reply("The expert says Paris.")

    assert asyncio.run(lead.ask("What is the capital of France?")).body == "The expert says Paris."
    spans = one_trace(tfy_spans, "lead.agent")
    spans.assert_tree("lead.agent > ask_expert.tool > expert.agent > llm", "lead.agent > llm")
    spans.assert_one_llm_span_per_call(3)
    assert json.loads(spans.one("expert.agent").attributes["traceloop.entity.output"]) == "Paris."


def test_with_ag2s_own_telemetry_middleware_each_model_call_is_still_one_llm_span(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    status = require_instrumented("ag2")
    reason = {o.name: o for o in status.instrument_report}["ag2"].reason
    assert "each model call is one LLM span" in reason
    from ag2 import Agent
    from ag2.config.openai import OpenAIConfig
    from ag2.middleware.builtin import TelemetryMiddleware

    script_weather(llm)
    config = OpenAIConfig(model="gpt-4o-mini", base_url=llm.base_url, api_key=API_KEY)
    agent = Agent(
        "weather",
        config=config,
        tools=[example.get_weather],
        middleware=[TelemetryMiddleware(agent_name="weather")],
    )

    assert asyncio.run(agent.ask(QUESTION)).body == ANSWER
    tfy_spans.assert_one_llm_span_per_call(2)  # its "chat" spans gave way to openai.chat
    tfy_spans.assert_tree(
        "invoke_agent weather > weather.agent > llm",
        "invoke_agent weather > weather.agent > execute_tool get_weather > get_weather.tool",
    )


def test_a_failure_of_the_instrumentation_never_reaches_the_app(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_instrumented("ag2")
    from truefoundry_tracing._frameworks import _spans

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("broken on purpose")

    monkeypatch.setattr(_spans.Entity, "start", broken)
    script_weather(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    with caplog.at_level(logging.WARNING, logger="truefoundry_tracing"):
        assert asyncio.run(ask(QUESTION, True)) == ANSWER
    assert "AG2: recording a call failed (ValueError: broken on purpose)" in caplog.text
    assert len(tfy_spans.llm_spans()) == 2  # the model calls are still traced


def test_example_runs_offline_and_prints_two_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("ag2_chat")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    run = ["weather.agent", "openai.chat", "get_weather.tool", "openai.chat"]
    assert tree_names(err) == run * 2
