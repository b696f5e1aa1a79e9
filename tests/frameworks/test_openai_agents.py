"""OpenAI Agents SDK under ``init()``: one trace per run, one LLM span per model call, and
nothing sent to api.openai.com, on both model APIs, plain and streamed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("agents", reason="the OpenAI Agents SDK runs in the framework environments")

from _support import API_KEY, load_example, require_instrumented, tree_names

from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, FakeResponsesServer

example = load_example("openai_agents_weather")
ANSWER = "It is sunny in Paris, 24 C."
TOOL_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.fixture
def responses() -> FakeResponsesServer:
    with FakeResponsesServer() as server:
        yield server


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize("api", ["responses", "chat"])
def test_one_trace_agent_tool_and_one_complete_llm_span_per_model_call(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    responses: FakeResponsesServer,
    api: str,
    stream: bool,
) -> None:
    status = require_instrumented("openai_agents")
    outcome = {o.name: o for o in status.instrument_report}["openai_agents"]
    assert "off: the OpenAI Agents SDK's own trace export to api.openai.com" in outcome.reason
    server = responses if api == "responses" else llm
    server.reply(tool_calls=[TOOL_CALL], prompt_tokens=20, completion_tokens=5)
    server.reply(ANSWER, prompt_tokens=30, completion_tokens=7)
    ask = example.make_app(server.base_url, API_KEY, "gpt-4o-mini", api)

    assert asyncio.run(ask("What is the weather in Paris?", stream)) == ANSWER

    calls = len(server.model_requests() if api == "responses" else llm.chat_requests())
    assert calls == 2
    tfy_spans.assert_one_llm_span_per_call(calls)
    tfy_spans.assert_tree(
        "Agent Workflow > Weather.agent > get_weather.tool",
        "Agent Workflow > Weather.agent > llm",
    )
    first, second = tfy_spans.llm_spans()
    assert tfy_spans.parent(first).name == "Weather.agent"
    assert (tfy_spans.llm(first).input_tokens, tfy_spans.llm(second).output_tokens) == (20, 7)
    assert ANSWER in tfy_spans.llm(second).output_text


def test_the_sdk_keeps_no_exporter_of_its_own() -> None:
    require_instrumented("openai_agents")
    from agents.tracing import get_trace_provider
    from agents.tracing.processors import default_processor

    processors = get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]
    assert default_processor() not in processors
    assert len(processors) == 1  # traceloop's, feeding this library's pipeline


def test_example_runs_offline_and_prints_two_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    require_instrumented("openai_agents")  # the tree below needs its agent and tool spans
    out, err = run_example("openai_agents_weather")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    run = ["Agent Workflow", "Weather.agent", "openai.response", "get_weather.tool"]
    assert tree_names(err) == [*run, "openai.response"] * 2


def test_without_an_instrumentation_the_sdk_tracing_is_off(
    fresh_python: Callable[..., dict[str, Any]],
) -> None:
    """traceloop 0.38 ships no Agents SDK instrumentation: its traces would only go to
    api.openai.com, so init() switches the SDK's tracing off and says so."""
    data = fresh_python(
        """
        import os, truefoundry_tracing as tt
        st = tt.init("agents", console=False)
        o = {o.name: o for o in st.instrument_report}["openai_agents"]
        print(json.dumps({"state": o.state, "reason": o.reason,
                          "env": os.environ.get("OPENAI_AGENTS_DISABLE_TRACING")}))
        """
    )
    if data["state"] == "unavailable":
        assert data["env"] == "true"
        assert "off: the OpenAI Agents SDK's own trace export" in data["reason"]
    else:
        assert data["env"] is None  # traced through traceloop's processor instead
