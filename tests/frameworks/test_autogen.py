"""AutoGen under ``init()``: an ``AssistantAgent`` with a tool, run and streamed, with and
without ``@workflow``: one trace per run, an agent span, a tool span with its arguments and
result, and one LLM span per model call under the agent."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("autogen_agentchat", reason="AutoGen runs in the framework environments")

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

# AutoGen warns when the answering model's name is not its dated OpenAI name (the fake echoes)
pytestmark = pytest.mark.filterwarnings("ignore:Resolved model mismatch")
example = load_example("autogen_agent")
# AutoGen's own spans for the calls this library records in spans of its own
AUTOGEN_SPANS = ("invoke_agent weather", "execute_tool get_weather", "create_agent weather")


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "in-workflow"])
@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_stream"])
def test_one_trace_agent_tool_and_one_llm_span_per_model_call(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, stream: bool, wrapped: bool
) -> None:
    require_instrumented("autogen")
    script_weather(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")
    if wrapped:
        ask = workflow(name="weather_app")(ask)

    assert asyncio.run(ask(QUESTION, stream)) == ANSWER

    spans = assert_weather_run(tfy_spans, llm, wrapped=wrapped, stream=stream)
    assert not [s.name for s in spans if s.name in AUTOGEN_SPANS], spans.tree()


def test_without_content_tracing_no_task_argument_or_result_is_recorded(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("autogen")
    import truefoundry_tracing as tt

    tt.init("framework-tests", console=False, trace_content=False)
    script_weather(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    assert asyncio.run(ask(QUESTION, False)) == ANSWER
    assert tfy_spans.one("get_weather.tool").attributes.get("traceloop.entity.input") is None
    tfy_spans.assert_absent(QUESTION, "Sunny, 24 C in Paris", ANSWER)


def test_a_failing_tool_is_an_error_on_its_span_and_the_run_goes_on(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("autogen")
    from autogen_agentchat.agents import AssistantAgent
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    def get_weather(city: str) -> str:
        raise RuntimeError(f"no weather station in {city}")

    llm.reply(tool_calls=[TOOL_CALL])
    llm.reply("I could not find out.")

    async def run() -> str:
        client = OpenAIChatCompletionClient(
            model="gpt-4o", base_url=llm.base_url, api_key=API_KEY, max_retries=0
        )
        agent = AssistantAgent(
            "weather", model_client=client, tools=[get_weather], reflect_on_tool_use=True
        )
        result = await agent.run(task=QUESTION)
        await client.close()
        return str(result.messages[-1].to_text())  # type: ignore[union-attr]

    assert asyncio.run(run()) == "I could not find out."
    tool = tfy_spans.one("get_weather.tool")
    assert tool.status == "ERROR"
    assert "no weather station in Paris" in (tool.status_message or "")
    tfy_spans.assert_one_llm_span_per_call(2)


def test_a_team_run_is_one_trace_with_the_agents_turns_marked(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("autogen")
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.conditions import MaxMessageTermination
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    script_weather(llm)

    async def run() -> str:
        client = OpenAIChatCompletionClient(
            model="gpt-4o-mini", base_url=llm.base_url, api_key=API_KEY, max_retries=0
        )
        agent = AssistantAgent(
            "weather", model_client=client, tools=[example.get_weather], reflect_on_tool_use=True
        )
        team = RoundRobinGroupChat([agent], termination_condition=MaxMessageTermination(2))
        result = await team.run(task=QUESTION)
        await client.close()
        return str(result.messages[-1].to_text())  # type: ignore[union-attr]

    assert asyncio.run(run()) == ANSWER
    spans = one_trace(tfy_spans, "RoundRobinGroupChat.agent")
    spans.assert_one_llm_span_per_call(2)
    turn = spans.one("weather.agent")  # AutoGen's invoke_agent span, marked
    assert turn.attributes["traceloop.span.kind"] == "agent"
    assert all(turn in spans.ancestors(s) for s in spans.llm_spans())
    tool = spans.one("get_weather.tool")
    assert turn in spans.ancestors(tool)
    assert json.loads(tool.attributes["traceloop.entity.input"]) == {"city": "Paris"}


def test_a_failure_of_the_instrumentation_never_reaches_the_app(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_instrumented("autogen")
    from truefoundry_tracing._frameworks import _spans

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("broken on purpose")

    monkeypatch.setattr(_spans.Entity, "start", broken)
    script_weather(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    with caplog.at_level(logging.WARNING, logger="truefoundry_tracing"):
        assert asyncio.run(ask(QUESTION, True)) == ANSWER
    assert "AutoGen: recording a call failed (ValueError: broken on purpose)" in caplog.text
    assert len(tfy_spans.llm_spans()) == 2  # the model calls are still traced


def test_a_release_without_what_it_wraps_is_reported_failed_and_said_once(
    fresh_python: Callable[..., dict[str, Any]],
) -> None:
    """A later AutoGen that moved a method this wraps: init() reports the instrumentation
    failed (nothing half-wrapped); one that moved a place its own spans are made: said once."""
    data = fresh_python(
        """
        import truefoundry_tracing as tt
        from truefoundry_tracing._frameworks import _autogen

        sites = dict(_autogen._SPAN_SITES)
        sites[("autogen_agentchat.agents", "gone_span")] = _autogen._give_way
        _autogen._SPAN_SITES = sites
        st = tt.init("autogen", console=False)
        import autogen_agentchat.agents  # applies the deferred instrumentation
        moved = {o.name: o for o in tt.status().instrument_report}["autogen"]

        wrappers = _autogen._wrappers
        _autogen._wrappers = lambda tracer: {
            **wrappers(tracer), ("autogen_agentchat.agents", "BaseChatAgent.gone"): None
        }
        inst = _autogen.AutoGenInstrumentor()
        inst.uninstrument()
        try:
            inst.instrument()
            error = ""
        except Exception as exc:
            error = f"{type(exc).__name__}"
        from autogen_agentchat.agents import BaseChatAgent
        print(json.dumps({
            "state": moved.state, "warnings": warnings, "error": error,
            "unwrapped": not hasattr(BaseChatAgent.run, "__wrapped__"),
        }))
        """
    )
    assert data["state"] == "applied"
    said = [w for w in data["warnings"] if "gone_span was not found" in w]
    assert len(said) == 1 and "Install autogen-agentchat 0.7" in said[0]
    assert data["error"]  # raised: init() reports the instrumentation failed
    assert data["unwrapped"]  # what was wrapped before the failure is undone


def test_example_runs_offline_and_prints_two_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("autogen_agent")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    run = ["weather.agent", "openai.chat", "get_weather.tool", "openai.chat"]
    assert tree_names(err) == run * 2
