"""Agno under ``init()``: one trace per run (plain, streamed, async; agents, teams, workflows,
a paused run continued), with agent and tool spans, one complete LLM span per model call under
the agent that made it, and nothing sent to Agno's telemetry, on both traceloop lines."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("agno", reason="Agno runs in the framework environments")

from _support import (
    API_KEY,
    EXAMPLES,
    TL_038,
    load_example,
    parent,
    require_instrumented,
    tree_names,
)

import truefoundry_tracing as tt
from truefoundry_tracing import workflow
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("agno_agent")
QUESTION = "What is the weather in Paris?"
ANSWER = "It is sunny in Paris, 24 C."
TOOL_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.fixture(autouse=True)
def _agno_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``AGNO_TELEMETRY`` as a user's shell has it (unset); what init() sets is undone after."""
    monkeypatch.setenv("AGNO_TELEMETRY", "")
    monkeypatch.delenv("AGNO_TELEMETRY")
    yield


def script(llm: FakeLLMServer) -> None:
    llm.reply(tool_calls=[TOOL_CALL], prompt_tokens=20, completion_tokens=5)
    llm.reply(ANSWER, prompt_tokens=30, completion_tokens=7)


def run(agent: Any, mode: str, content: str = "RunContent") -> str:
    """One run of ``agent`` in ``mode``; returns the answer text (of a stream: the text of
    its ``content`` events; a team's stream carries its members' events too)."""

    def text(event: Any) -> str:
        return str(event.content or "") if getattr(event, "event", None) == content else ""

    if mode == "run":
        return str(agent.run(QUESTION).content)
    if mode == "arun":
        return str(asyncio.run(agent.arun(QUESTION)).content)
    if mode == "stream":
        return "".join(text(e) for e in agent.run(QUESTION, stream=True))

    async def astream() -> str:
        return "".join([text(e) async for e in agent.arun(QUESTION, stream=True)])

    return asyncio.run(astream())


def check_agent_run(spans: CapturedSpans, llm: FakeLLMServer, path: str) -> None:
    """The agent's span (the last of ``path`` from the root) holds its two model calls and
    its tool call, each complete."""
    agent_span = path.rpartition(" > ")[2]
    calls = len(llm.chat_requests())
    assert calls == 2
    spans.assert_one_llm_span_per_call(calls)
    spans.assert_tree(f"{path} > openai.chat", f"{path} > get_weather.tool")
    first, second = spans.llm_spans()
    assert {parent(spans, first).name, parent(spans, second).name} == {agent_span}
    asked = spans.llm(first)
    assert asked.model == "gpt-4o-mini" and (asked.input_tokens, asked.output_tokens) == (20, 5)
    assert [c["name"] for m in asked.output_messages for c in m.tool_calls] == ["get_weather"]
    assert QUESTION in (asked.input_messages[-1].content or "")
    answered = spans.llm(second)
    assert answered.output_text == ANSWER
    assert (answered.input_tokens, answered.output_tokens) == (30, 7)
    tool = spans.one("get_weather.tool")
    assert tool.attributes["traceloop.span.kind"] == "tool"
    assert tool.attributes["traceloop.entity.name"] == "get_weather"
    assert json.loads(tool.attributes["traceloop.entity.input"]) == {"city": "Paris"}
    assert json.loads(tool.attributes["traceloop.entity.output"]) == "Sunny, 24 C in Paris"
    assert parent(spans, tool).name == agent_span
    agent = spans.one(agent_span)
    assert agent.attributes["traceloop.span.kind"] == "agent"
    assert json.loads(agent.attributes["traceloop.entity.input"]) == QUESTION
    assert json.loads(agent.attributes["traceloop.entity.output"]) == ANSWER
    assert not any(k.startswith("gen_ai.usage") for k in agent.attributes)  # counted once


@pytest.mark.parametrize("in_workflow", [False, True], ids=["bare", "in-workflow"])
@pytest.mark.parametrize("mode", ["run", "stream", "arun", "astream"])
def test_one_trace_agent_tool_and_one_llm_span_per_model_call(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, mode: str, in_workflow: bool
) -> None:
    require_instrumented("agno")
    script(llm)
    agent = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")

    @workflow(name="weather_app")
    def app() -> str:
        return run(agent, mode)

    assert (app() if in_workflow else run(agent, mode)) == ANSWER

    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    path = "weather_app.workflow > Weather.agent" if in_workflow else "Weather.agent"
    check_agent_run(tfy_spans, llm, path)
    if mode in ("stream", "astream"):
        for call in tfy_spans.llm_spans():
            tfy_spans.assert_stream_complete(call)
    if in_workflow:
        for span in tfy_spans.descendants(tfy_spans.root):
            assert span.attributes["traceloop.workflow.name"] == "weather_app", span.name


@pytest.mark.parametrize("mode", ["run", "stream", "arun", "astream"])
def test_a_team_delegating_to_a_member_is_one_trace(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, mode: str
) -> None:
    require_instrumented("agno")
    from agno.team import Team

    member = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
    member.id = "weather"
    leader = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini").model
    team = Team(name="Desk", members=[member], model=leader)
    delegate = {"member_id": "weather", "task": QUESTION}
    llm.reply(tool_calls=[{"name": "delegate_task_to_member", "arguments": delegate}])
    script(llm)
    llm.reply("The desk says: sunny.")

    assert run(team, mode, "TeamRunContent") == "The desk says: sunny."

    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    tfy_spans.assert_one_llm_span_per_call(len(llm.chat_requests()))
    tfy_spans.assert_tree(
        "Desk.team > delegate_task_to_member.tool > Weather.agent > get_weather.tool",
        "Desk.team > openai.chat",
    )
    team_span = tfy_spans.one("Desk.team")
    assert team_span.attributes["traceloop.span.kind"] == "agent"
    assert json.loads(team_span.attributes["traceloop.entity.output"]) == "The desk says: sunny."
    delegation = tfy_spans.one("delegate_task_to_member.tool")
    assert json.loads(delegation.attributes["traceloop.entity.input"]) == delegate
    assert json.loads(delegation.attributes["traceloop.entity.output"]) == ANSWER
    assert [parent(tfy_spans, s).name for s in tfy_spans.llm_spans()] == [
        "Desk.team",
        "Weather.agent",
        "Weather.agent",
        "Desk.team",
    ]


@pytest.mark.parametrize("mode", ["run", "stream", "arun", "astream"])
def test_an_agno_workflow_is_one_trace_named_after_it(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, mode: str
) -> None:
    require_instrumented("agno")
    from agno.workflow import Step, Workflow

    forecaster = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
    writer = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
    writer.name, writer.tools = "Writer", []
    report = Workflow(
        name="Report",
        steps=[Step(name="forecast", agent=forecaster), Step(name="write", agent=writer)],
    )
    script(llm)
    llm.reply("Report: sunny.")

    run(report, mode, "")  # a workflow's stream has no text events of its own

    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    tfy_spans.assert_one_llm_span_per_call(len(llm.chat_requests()))
    tfy_spans.assert_tree(
        "Report.workflow > Weather.agent > get_weather.tool", "Report.workflow > Writer.agent"
    )
    root = tfy_spans.one("Report.workflow")
    assert root.attributes["traceloop.span.kind"] == "workflow"
    assert json.loads(root.attributes["traceloop.entity.output"]) == "Report: sunny."
    for span in tfy_spans.descendants(root):
        assert span.attributes["traceloop.workflow.name"] == "Report", span.name
    writer_span = tfy_spans.one("Writer.agent")
    assert writer_span.status != "ERROR", tfy_spans.tree()
    assert json.loads(writer_span.attributes["traceloop.entity.output"]) == "Report: sunny."


@pytest.mark.parametrize("stream", [False, True], ids=["continue_run", "streamed"])
def test_a_run_paused_for_confirmation_and_its_continuation(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, stream: bool
) -> None:
    require_instrumented("agno")
    from agno.tools import tool

    agent = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
    agent.tools = [tool(requires_confirmation=True)(example.get_weather)]
    script(llm)
    paused = agent.run(QUESTION)
    assert paused.is_paused
    for requirement in paused.active_requirements:
        requirement.confirm()

    if stream:
        answer = "".join(
            str(e.content or "")
            for e in agent.continue_run(run_response=paused, stream=True)
            if getattr(e, "event", None) == "RunContent"
        )
    else:
        answer = str(agent.continue_run(run_response=paused).content)

    assert answer == ANSWER
    first, then = sorted(tfy_spans.traces(), key=lambda trace: trace.root.start_ns)
    first.assert_tree("Weather.agent > openai.chat")
    first.assert_one_llm_span_per_call(1)
    then.assert_tree("Weather.agent > get_weather.tool", "Weather.agent > openai.chat")
    then.assert_one_llm_span_per_call(1)
    assert first.root.attributes["agno.run.id"] == then.root.attributes["agno.run.id"]
    resumed = json.loads(then.root.attributes["traceloop.entity.input"])
    assert resumed == {"continue_run": paused.run_id, "input": None}
    assert json.loads(then.root.attributes["traceloop.entity.output"]) == ANSWER


def test_with_trace_content_off_no_input_or_output_is_recorded(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("agno")
    tt.init("framework-tests", console=False, trace_content=False)
    script(llm)

    assert run(example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini"), "stream") == ANSWER

    assert sorted(tfy_spans.names) == sorted(
        ["Weather.agent", "get_weather.tool"] + 2 * ["openai.chat"]
    )
    for span in tfy_spans:
        assert "traceloop.entity.input" not in span.attributes, span.name
        assert "traceloop.entity.output" not in span.attributes, span.name


def test_the_apps_own_error_reaches_it_unchanged(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("agno")
    from agno.media.storage.base import AsyncMediaStorage

    async def stub(*_args: Any, **_kwargs: Any) -> Any:
        return None

    storage = type(
        "AsyncStorage",
        (AsyncMediaStorage,),
        dict.fromkeys(AsyncMediaStorage.__abstractmethods__, stub),
    )
    agent = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
    agent.media_storage = storage()

    with pytest.raises(ValueError, match="Cannot use sync run"):
        agent.run(QUESTION)  # Agno refuses a sync run with async media storage

    span = tfy_spans.one("Weather.agent")
    assert span.status == "ERROR"
    assert [e.name for e in span.events] == ["exception"]


def test_a_stream_left_early_ends_its_span(tfy_spans: CapturedSpans, llm: FakeLLMServer) -> None:
    require_instrumented("agno")
    script(llm)
    agent = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
    stream = agent.run(QUESTION, stream=True)
    next(stream)
    stream.close()

    assert tfy_spans.names.count("Weather.agent") == 1  # ended, so captured


def test_an_async_stream_left_early_ends_its_span_without_an_error(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("agno")
    script(llm)
    agent = example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")

    async def main() -> None:
        stream = agent.arun(QUESTION, stream=True)
        await stream.__anext__()
        await stream.aclose()

    asyncio.run(main())

    span = tfy_spans.one("Weather.agent")  # ended, so captured
    assert span.status != "ERROR"
    assert "agno.run.id" in span.attributes


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_streamed_run_that_ends_in_an_error_event_is_an_error_span(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, mode: str
) -> None:
    """Agno reports a failed model call in the stream (``RunError``), not as an exception."""
    require_instrumented("agno")
    llm.reply(status=400, content="bad request")

    run(example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini"), mode)

    span = tfy_spans.one("Weather.agent")
    assert span.status == "ERROR" and span.status_message == "bad request"
    assert not span.events  # no exception: Agno did not raise
    assert "traceloop.entity.output" not in span.attributes
    assert "agno.run.id" in span.attributes


def test_init_turns_agno_telemetry_off_and_says_so() -> None:
    status = require_instrumented("agno")
    import os

    assert os.environ["AGNO_TELEMETRY"] == "false"
    reason = {o.name: o for o in status.instrument_report}["agno"].reason
    assert "off: Agno's telemetry to os-api.agno.com" in reason
    assert "(AGNO_TELEMETRY=false)" in reason


def test_a_user_choice_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGNO_TELEMETRY", "true")
    status = require_instrumented("agno")
    reason = {o.name: o for o in status.instrument_report}["agno"].reason
    assert "on: Agno's telemetry to os-api.agno.com" in reason
    assert "(AGNO_TELEMETRY=true is set)" in reason


def test_evals_and_agentos_send_no_telemetry_either(
    run_offline: Callable[[list[str]], Any],
) -> None:
    """Agno's evals and AgentOS ignore AGNO_TELEMETRY; their posts are dropped too. The child
    process runs under the network guard: a post that left would fail this test."""
    program = textwrap.dedent(
        """
        import truefoundry_tracing as tt
        tt.init("agno-telemetry", console=False)
        from agno.api.api import api
        from agno.api.evals import EvalRunCreate, create_eval_run_telemetry
        from agno.api.os import OSLaunch, log_os_telemetry
        create_eval_run_telemetry(EvalRunCreate(run_id="r", eval_type="accuracy", data={}))
        log_os_telemetry(OSLaunch(os_id="os", data={}))
        api._dispatcher.close(5.0)  # what Agno does at exit: send what is queued
        print("done")
        """
    )
    assert run_offline(["-c", program]).stdout.strip() == "done"


@pytest.mark.skipif(TL_038, reason="traceloop-sdk 0.38 ships no Agno instrumentation")
def test_traceloops_own_agno_instrumentation_is_taken_out(
    run_offline: Callable[[list[str]], Any],
) -> None:
    """An app that also applied traceloop's (``Traceloop.init()`` does) gets one span per run
    and per tool call, not two."""
    program = textwrap.dedent(
        f"""
        from opentelemetry.instrumentation.agno import AgnoInstrumentor
        AgnoInstrumentor().instrument()
        import truefoundry_tracing as tt
        from truefoundry_tracing.testing import FakeLLMServer, capture_spans
        tt.init("agno-twice", console=False)
        import sys
        sys.path.insert(0, {str(EXAMPLES)!r})
        from agno_agent import make_app
        with FakeLLMServer() as llm, capture_spans() as spans:
            llm.reply(tool_calls=[{TOOL_CALL!r}])
            llm.reply("Sunny.")
            make_app(llm.base_url, "sk-test", "gpt-4o-mini")("Weather?", True)
        print(sorted(spans.names))
        """
    )
    out = run_offline(["-c", program]).stdout.strip()
    assert out == str(sorted(["Weather.agent", "get_weather.tool", "openai.chat", "openai.chat"]))


def test_example_runs_offline_and_prints_two_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("agno_agent")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    one = ["Weather.agent", "openai.chat", "get_weather.tool", "openai.chat"]
    assert tree_names(err) == one * 2
