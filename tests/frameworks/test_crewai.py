"""CrewAI under ``init()``: a one-agent, one-task crew inside a ``@workflow``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest.importorskip("crewai", reason="CrewAI runs in the framework environments")

from _support import API_KEY, load_example, one_trace, parent, require_instrumented, tree_names

from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("crewai_crew")
ANSWER = "Paris is the capital of France."
TASK_SPAN = "What is the capital of France?.task"


def test_crew_task_agent_and_one_llm_span_under_the_agent(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("crewai")
    llm.reply(
        f"Thought: I know this.\nFinal Answer: {ANSWER}", prompt_tokens=70, completion_tokens=12
    )
    run = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    assert run() == ANSWER

    spans = one_trace(tfy_spans, "geography_crew.workflow")
    tfy_spans.assert_tree(
        f"geography_crew.workflow > crewai.workflow > {TASK_SPAN} > Geographer.agent > openai.chat"
    )
    assert spans.one(TASK_SPAN).attributes["traceloop.span.kind"] == "task"
    assert spans.one("Geographer.agent").attributes["traceloop.span.kind"] == "agent"

    calls = spans.llm_spans()
    assert calls.names == ["openai.chat"] and len(llm.chat_requests()) == 1
    assert parent(spans, calls[0]).name == "Geographer.agent"
    view = spans.llm()
    assert view.model == "gpt-4o-mini"
    assert view.input_messages[0].role == "system"
    assert "Geographer" in (view.input_messages[0].content or "")
    assert "What is the capital of France?" in (view.input_messages[-1].content or "")
    assert ANSWER in view.output_text
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (70, 12, 82)


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("crewai_crew")
    assert out.strip() == ANSWER
    assert tree_names(err) == [
        "geography_crew.workflow",
        "crewai.workflow",
        TASK_SPAN,
        "Geographer.agent",
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
