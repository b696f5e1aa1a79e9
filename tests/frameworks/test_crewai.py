"""CrewAI under ``init()``: a one-agent crew with a tool call and a final answer, plain and
streamed, inside a ``@workflow`` and bare: one trace, a tool span, one LLM span per call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest.importorskip("crewai", reason="CrewAI runs in the framework environments")

from _support import API_KEY, load_example, parent, require_instrumented, tree_names

from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("crewai_crew")
ANSWER = example.ANSWER
TASK_SPAN = "What is the weather in Paris?.task"
CREW_PATH = f"crewai.workflow > {TASK_SPAN} > Forecaster.agent"


def script(llm: FakeLLMServer) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    llm.reply(tool_calls=[call], prompt_tokens=70, completion_tokens=12)
    llm.reply(ANSWER, prompt_tokens=90, completion_tokens=9)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_tool_call_and_answer_in_one_trace_under_the_workflow(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, stream: bool
) -> None:
    require_instrumented("crewai")
    script(llm)
    run = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini", stream=stream)

    assert ANSWER in run()

    # one trace: a streamed crew's run used to be a second trace beside an empty crewai.workflow
    tfy_spans.assert_one_llm_span_per_call(len(llm.chat_requests()))
    assert len(llm.chat_requests()) == 2
    tfy_spans.assert_tree(
        f"weather_crew.workflow > {CREW_PATH} > openai.chat",
        f"weather_crew.workflow > {CREW_PATH} > get_weather.tool",
    )
    assert tfy_spans.by_name("crewai.workflow").names == ["crewai.workflow"]
    first, second = tfy_spans.llm_spans().sorted()
    assert [parent(tfy_spans, s).name for s in (first, second)] == ["Forecaster.agent"] * 2
    assert tfy_spans.llm(first).output_messages[0].tool_calls[0]["name"] == "get_weather"
    view = tfy_spans.llm(second)
    assert (view.model, view.output_text) == ("gpt-4o-mini", ANSWER)
    assert (view.input_tokens, view.output_tokens) == (90, 9)
    if stream:
        assert all(tfy_spans.llm(s).streaming for s in (first, second))
        tfy_spans.assert_stream_complete(second)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_bare_crew_run_is_one_trace_rooted_at_the_crew(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, stream: bool
) -> None:
    require_instrumented("crewai")
    script(llm)
    crew = example.make_crew(llm.base_url, API_KEY, "gpt-4o-mini", stream=stream)

    assert ANSWER in example.kickoff(crew)

    tfy_spans.assert_one_llm_span_per_call(2)
    assert tfy_spans.root.name == "crewai.workflow", tfy_spans.tree()
    tfy_spans.assert_tree(f"{CREW_PATH} > get_weather.tool")


def test_the_tool_span_has_the_arguments_and_the_result(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("crewai")
    script(llm)
    example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")()

    tool = tfy_spans.one("get_weather.tool")
    assert tool.attributes["traceloop.span.kind"] == "tool"
    assert tool.attributes["traceloop.entity.name"] == "get_weather"
    assert tool.attributes["traceloop.entity.input"] == '{"city": "Paris"}'
    assert tool.attributes["traceloop.entity.output"] == '"Sunny in Paris, 24 C."'
    # the tool ran between the two model calls, under the agent that called it
    first, second = tfy_spans.llm_spans().sorted()
    assert first.end_ns <= tool.start_ns <= tool.end_ns <= second.start_ns
    assert parent(tfy_spans, tool).name == "Forecaster.agent"


def test_a_structured_tool_invoked_directly_is_one_tool_span(tfy_spans: CapturedSpans) -> None:
    require_instrumented("crewai")
    structured = example.get_weather.to_structured_tool()  # what CrewAI's text protocol runs

    assert structured.invoke({"city": "Oslo"}) == "Sunny in Oslo, 24 C."

    tool = tfy_spans.one("get_weather.tool")
    assert tool.attributes["traceloop.entity.input"] == '{"city": "Oslo"}'
    assert tool.attributes["traceloop.entity.output"] == '"Sunny in Oslo, 24 C."'


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("crewai_crew")
    assert ANSWER in out
    assert tree_names(err) == [
        "weather_crew.workflow",
        "crewai.workflow",
        TASK_SPAN,
        "Forecaster.agent",
        "openai.chat",
        "get_weather.tool",
        "openai.chat",
    ]


def test_init_turns_crewai_telemetry_off_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREWAI_DISABLE_TELEMETRY", raising=False)
    monkeypatch.delenv("CREWAI_TRACING_ENABLED", raising=False)
    status = require_instrumented("crewai")
    import os

    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert os.environ["CREWAI_TRACING_ENABLED"] == "false"
    reason = {o.name: o for o in status.instrument_report}["crewai"].reason
    assert "off: CrewAI's anonymous telemetry (CREWAI_DISABLE_TELEMETRY=true)" in reason


def test_a_user_choice_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREWAI_DISABLE_TELEMETRY", "false")
    status = require_instrumented("crewai")
    reason = {o.name: o for o in status.instrument_report}["crewai"].reason
    assert "on: CrewAI's anonymous telemetry (CREWAI_DISABLE_TELEMETRY=false is set)" in reason
