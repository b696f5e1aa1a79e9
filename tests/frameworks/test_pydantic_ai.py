"""Pydantic AI under ``init()``: one trace per run (plain, async and both streaming APIs, with and
without ``@workflow``), an agent span and a tool span with their input and output, and exactly
one LLM span per model call: the provider instrumentation's, in place of Pydantic AI's own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("pydantic_ai", reason="Pydantic AI runs in the framework environments")

from _support import API_KEY, load_example, one_trace, parent, require_instrumented, tree_names

import truefoundry_tracing as tt
from truefoundry_tracing.testing import (
    CapturedSpans,
    FakeAnthropicServer,
    FakeLLMServer,
    SpanList,
    SpanRecord,
)

example = load_example("pydantic_ai_agent")
QUESTION = "What is the weather in Paris?"
ANSWER = "It is sunny in Paris, 24 C."
TOOL_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
HOWS = ["run_sync", "run", "run_stream", "run_stream_sync", "run_stream_events"]


def script(server: FakeLLMServer | FakeAnthropicServer) -> None:
    call = {"id": "toolu_1", **TOOL_CALL} if isinstance(server, FakeAnthropicServer) else TOOL_CALL
    server.reply(tool_calls=[call], prompt_tokens=40, completion_tokens=9)
    server.reply(ANSWER, prompt_tokens=60, completion_tokens=8)


def attr_json(span: SpanRecord, key: str) -> Any:
    return json.loads(span.attributes[key])


def check_run(spans: SpanList, calls: int, streamed: bool) -> SpanRecord:
    """The agent span, after checking the run's spans against the invariants."""
    spans.assert_one_llm_span_per_call(calls)
    agent = spans.by_kind("agent").one()
    assert agent.attributes["traceloop.entity.name"] == "weather_agent"
    assert attr_json(agent, "traceloop.entity.input") == {"args": [QUESTION], "kwargs": {}}
    assert attr_json(agent, "traceloop.entity.output") == ANSWER
    tool = spans.by_kind("tool").one()
    assert tool.attributes["traceloop.entity.name"] == "get_weather"
    assert attr_json(tool, "traceloop.entity.input") == {"args": [], "kwargs": {"city": "Paris"}}
    assert attr_json(tool, "traceloop.entity.output") == "Sunny, 24 C in Paris"
    assert parent(spans, tool) is agent
    first, second = spans.llm_spans()
    assert parent(spans, first) is agent and parent(spans, second) is agent
    assert (spans.llm(first).input_tokens, spans.llm(first).output_tokens) == (40, 9)
    assert spans.llm(first).output_messages[0].tool_calls[0]["name"] == "get_weather"
    assert spans.llm(second).output_text == ANSWER
    assert (spans.llm(second).input_tokens, spans.llm(second).output_tokens) == (60, 8)
    if streamed:
        spans.assert_stream_complete(second)
    return agent


@pytest.mark.parametrize("in_workflow", [False, True], ids=["bare", "workflow"])
@pytest.mark.parametrize("how", HOWS)
def test_one_trace_agent_tool_and_one_llm_span_per_model_call(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
    how: str,
    in_workflow: bool,
) -> None:
    status = require_instrumented("pydantic_ai")
    outcome = {o.name: o for o in status.instrument_report}["pydantic_ai"]
    assert "each model call is one LLM span" in outcome.reason, outcome
    script(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")
    run = tt.workflow(name="weather_assistant")(ask) if in_workflow else ask

    assert run(QUESTION, how) == ANSWER

    root = "weather_assistant.workflow" if in_workflow else "invoke_agent weather_agent"
    spans = one_trace(tfy_spans, root)
    agent = check_run(spans, len(llm.chat_requests()), streamed=how.startswith("run_stream"))
    assert (spans.parent(agent) is None) is not in_workflow
    # Pydantic AI passes openai.omit for unset parameters: no "Invalid type Omit" warnings
    assert not [r for r in caplog.records if r.name == "opentelemetry.attributes"]


def test_a_later_turn_records_its_own_prompt_as_the_agent_input(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("pydantic_ai")
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    agent = example.make_agent(
        OpenAIChatModel(
            "gpt-4o-mini", provider=OpenAIProvider(base_url=llm.base_url, api_key=API_KEY)
        )
    )
    llm.reply("Hello.")
    llm.reply("Still sunny.")
    first = agent.run_sync("Hi")
    agent.run_sync("And tomorrow?", message_history=first.all_messages())

    inputs = [attr_json(s, "traceloop.entity.input") for s in tfy_spans.by_kind("agent").sorted()]
    assert inputs == [{"args": ["Hi"], "kwargs": {}}, {"args": ["And tomorrow?"], "kwargs": {}}]
    assert len(tfy_spans.traces()) == 2  # two runs, two traces


def test_trace_content_off_leaves_no_prompt_output_or_tool_data(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    tt.init("framework-tests", console=False, trace_content=False)
    script(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    assert ask(QUESTION, "run_sync") == ANSWER

    assert len(tfy_spans.by_kind("agent")) == len(tfy_spans.by_kind("tool")) == 1
    tfy_spans.assert_absent(QUESTION, ANSWER, "Sunny, 24 C")


@pytest.fixture
def claude() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


@pytest.mark.parametrize("how", ["run_sync", "run_stream"])
def test_anthropic_model_one_llm_span_per_call(
    tfy_spans: CapturedSpans, claude: FakeAnthropicServer, how: str
) -> None:
    """The Anthropic SDK refuses Pydantic AI's first, non-streamed attempt (a request it expects
    to take over 10 minutes) before sending it; Pydantic AI streams instead. One span per call."""
    require_instrumented("pydantic_ai")
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    script(claude)
    provider = AnthropicProvider(base_url=claude.url, api_key="sk-ant-test")
    agent = example.make_agent(AnthropicModel("claude-sonnet-4-5", provider=provider))

    async def streamed() -> str:
        async with agent.run_stream(QUESTION) as result:
            return await result.get_output()

    output = agent.run_sync(QUESTION).output if how == "run_sync" else asyncio.run(streamed())

    assert output == ANSWER
    spans = one_trace(tfy_spans, "invoke_agent weather_agent")
    check_run(spans, len(claude.model_requests()), streamed=False)
    assert all(s.status != "ERROR" for s in spans), spans.tree()


def test_the_apps_own_instrumentation_settings_are_kept_and_mapped(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_instrumented("pydantic_ai")
    from pydantic_ai import Agent, InstrumentationSettings

    from truefoundry_tracing._frameworks._pydantic_ai import PydanticAIInstrumentor

    mine = InstrumentationSettings(include_binary_content=False)
    monkeypatch.setattr(Agent, "_instrument_default", mine)  # the app's, before init()
    PydanticAIInstrumentor()._instrument()  # what init() does then

    assert Agent._instrument_default is mine
    script(llm)
    assert example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")(QUESTION) == ANSWER
    check_run(one_trace(tfy_spans, "invoke_agent weather_agent"), 2, streamed=False)


def test_a_mapping_that_fails_never_reaches_the_app(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_instrumented("pydantic_ai")
    from truefoundry_tracing._frameworks import _pydantic_ai

    def broken(role: str, attrs: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(_pydantic_ai, "traceloop_attributes", broken)
    monkeypatch.setattr(_pydantic_ai, "_warned", set())
    script(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    assert ask(QUESTION, "run_sync") == ANSWER
    assert ask(QUESTION, "run_sync") != ""  # the default answer; reported once only

    warnings = [r for r in caplog.records if "mapping a Pydantic AI" in r.getMessage()]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]  # once per span role
    assert {w.getMessage().split(" span ")[0].rsplit(" ", 1)[1] for w in warnings} == {
        "agent",
        "tool",
    }
    assert len(tfy_spans.llm_spans()) == 3


def test_example_runs_offline_and_prints_two_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("pydantic_ai_agent")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    run = ["invoke_agent weather_agent", "openai.chat", "execute_tool get_weather", "openai.chat"]
    assert tree_names(err) == [*run, "weather_assistant.workflow", *run]
