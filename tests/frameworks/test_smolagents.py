"""smolagents under ``init()``: this library's own instrumentation gives each run one trace
(agent > step > model call and tool calls), plain and ``run(stream=True)``, inside a
``@workflow`` or not, with one LLM span per model call (the OpenAI instrumentation's)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

pytest.importorskip("smolagents", reason="smolagents runs in the framework environments")

from _support import API_KEY, load_example, one_trace, parent, require_instrumented, tree_names

from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, SpanList

example = load_example("smolagents_agent")
ANSWER = "Sunny, 24 C."
MODEL = "gpt-4o-mini"


def script(llm: FakeLLMServer) -> None:
    llm.reply(
        tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        prompt_tokens=40,
        completion_tokens=9,
    )
    llm.reply(
        tool_calls=[{"id": "call_2", "name": "final_answer", "arguments": {"answer": ANSWER}}],
        prompt_tokens=60,
        completion_tokens=8,
    )


def io(span: object, key: str) -> object:
    return json.loads(span.attributes[f"traceloop.entity.{key}"])  # type: ignore[attr-defined]


def check_run(spans: SpanList, llm: FakeLLMServer, root: str) -> None:
    """The agent run's spans: one trace, agent > step > (model call, tool call)."""
    ordered = one_trace(spans, root)
    spans.assert_one_llm_span_per_call(len(llm.chat_requests()))
    agent_chain = (
        "ToolCallingAgent.agent"
        if root == "ToolCallingAgent.agent"
        else f"{root} > ToolCallingAgent.agent"
    )
    spans.assert_tree(
        f"{agent_chain} > step_1.task > openai.chat",
        f"{agent_chain} > step_1.task > get_weather.tool",
        f"{agent_chain} > step_2.task > final_answer.tool",
    )
    agent = ordered.one("ToolCallingAgent.agent")
    assert agent.attributes["traceloop.span.kind"] == "agent"
    assert (io(agent, "input"), io(agent, "output")) == ("What is the weather in Paris?", ANSWER)
    first, second = spans.llm_spans()
    assert [parent(spans, s).name for s in (first, second)] == ["step_1.task", "step_2.task"]
    called = spans.llm(first).output_messages[0].tool_calls
    assert [(c["name"], json.loads(c["arguments"])) for c in called] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert (spans.llm(second).input_tokens, spans.llm(second).output_tokens) == (60, 8)
    tool = ordered.one("get_weather.tool")
    assert parent(spans, tool).name == "step_1.task"
    assert io(tool, "input") == {"city": "Paris"}
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert io(tool, "output") == "Sunny, 24 C in Paris"
    assert io(ordered.one("final_answer.tool"), "output") == ANSWER


def test_a_run_is_one_trace_agent_steps_tools_and_one_llm_span_per_call(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("smolagents")
    script(llm)
    agent = example.make_agent(llm.base_url, API_KEY, MODEL)

    assert agent.run("What is the weather in Paris?") == ANSWER

    check_run(tfy_spans, llm, "ToolCallingAgent.agent")


def test_a_streamed_run_inside_a_workflow_is_one_trace(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("smolagents")
    script(llm)
    agent = example.make_agent(llm.base_url, API_KEY, MODEL)
    agent.stream_outputs = True  # the model's tokens stream too, not only the steps

    from truefoundry_tracing import workflow

    @workflow(name="weather_assistant")
    def ask(question: str) -> object:
        return list(agent.run(question, stream=True))[-1].output

    assert ask("What is the weather in Paris?") == ANSWER

    check_run(tfy_spans, llm, "weather_assistant.workflow")
    for span in tfy_spans.llm_spans():
        assert tfy_spans.llm(span).streaming
    assert all(r.json.get("stream") for r in llm.chat_requests())


def test_a_code_agent_traces_the_code_it_runs_and_the_tools_the_code_calls(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("smolagents")
    from smolagents import CodeAgent, LogLevel, OpenAIServerModel

    llm.reply('Look it up.\n<code>\nprint(get_weather(city="Paris"))\n</code>')
    llm.reply(f'Done.\n<code>\nfinal_answer("{ANSWER}")\n</code>')
    model = OpenAIServerModel(model_id=MODEL, api_base=llm.base_url, api_key=API_KEY)
    agent = CodeAgent(tools=[example.get_weather], model=model, verbosity_level=LogLevel.OFF)

    assert agent.run("What is the weather in Paris?") == ANSWER

    spans = one_trace(tfy_spans, "CodeAgent.agent")
    tfy_spans.assert_one_llm_span_per_call(2)
    tfy_spans.assert_tree(
        "CodeAgent.agent > step_1.task > openai.chat",
        "CodeAgent.agent > step_1.task > python_interpreter.tool > get_weather.tool",
        "CodeAgent.agent > step_2.task > python_interpreter.tool > final_answer.tool",
    )
    code = spans.by_name("python_interpreter.tool")[0]
    assert io(code, "input") == {"code": 'print(get_weather(city="Paris"))'}
    assert io(code, "output")["logs"] == "Sunny, 24 C in Paris\n"  # type: ignore[index]
    # a positional argument in the code is recorded by the tool input's name
    assert io(spans.one("final_answer.tool"), "input") == {"answer": ANSWER}


def test_a_planning_step_and_a_managed_agent_nest_in_the_run(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("smolagents")
    from smolagents import LogLevel, OpenAIServerModel, ToolCallingAgent

    llm.reply("1. Ask the expert.\n<end_plan>")
    llm.reply(tool_calls=[{"name": "expert", "arguments": {"task": "What is 6*7?"}}])
    for _agent in range(2):
        llm.reply(tool_calls=[{"name": "final_answer", "arguments": {"answer": "42"}}])
    model = OpenAIServerModel(model_id=MODEL, api_base=llm.base_url, api_key=API_KEY)
    quiet = {"model": model, "verbosity_level": LogLevel.OFF}
    expert = ToolCallingAgent(tools=[], name="expert", description="Knows arithmetic.", **quiet)
    boss = ToolCallingAgent(tools=[], managed_agents=[expert], planning_interval=5, **quiet)

    assert boss.run("What is 6*7?") == "42"

    one_trace(tfy_spans, "ToolCallingAgent.agent")
    tfy_spans.assert_one_llm_span_per_call(4)
    tfy_spans.assert_tree(
        "ToolCallingAgent.agent > planning.task > openai.chat",
        "ToolCallingAgent.agent > step_1.task > expert.agent > step_1.task > final_answer.tool",
    )
    assert "Ask the expert." in str(io(tfy_spans.one("planning.task"), "output"))


def test_a_failing_instrumentation_never_breaks_the_run(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_instrumented("smolagents")
    from truefoundry_tracing._frameworks import _spans

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("tracing bug")

    monkeypatch.setattr(_spans.Entity, "start", broken)
    script(llm)
    with caplog.at_level(logging.WARNING, logger="truefoundry_tracing"):
        answer = example.make_agent(llm.base_url, API_KEY, MODEL).run("Weather?")

    assert answer == ANSWER
    said = [r.getMessage() for r in caplog.records if "smolagents instrumentation" in r.message]
    assert len(said) == 1 and "RuntimeError: tracing bug" in said[0], said
    assert [s.name for s in tfy_spans] == ["openai.chat", "openai.chat"]


def test_example_runs_offline_and_prints_its_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("smolagents_agent")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    run = ["step_1.task", "openai.chat", "get_weather.tool"]
    run += ["step_2.task", "openai.chat", "final_answer.tool"]
    names = tree_names(err)
    agent = ["ToolCallingAgent.agent", *run]
    assert names == ["weather_assistant.workflow", *agent, *agent]
