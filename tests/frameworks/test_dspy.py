"""DSPy under ``init()``: this library's own instrumentation gives a span per module and tool
call and one LLM span per model call, on DSPy 3's default engine (its own HTTP, which no
provider instrumentation sees) and with ``engine="litellm"`` (LiteLLM's span on 0.62)."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Callable

import pytest

pytest.importorskip("dspy", reason="DSPy runs in the framework environments")

import dspy
from _support import API_KEY, TL_038, load_example, one_trace, parent, tree_names

import truefoundry_tracing as tt
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, SpanRecord

example = load_example("dspy_react")
ANSWER = example.ANSWER
MODEL = "gpt-4o-mini"


def require_dspy() -> tt.TracingStatus:
    status = tt.init("framework-tests", console=False)
    outcome = {o.name: o for o in status.instrument_report}["dspy"]
    assert outcome.active and "not traced" not in outcome.reason, outcome
    return status


def script_react(llm: FakeLLMServer) -> None:
    think = {"next_thought": "Look it up.", "next_tool_name": "get_weather"}
    llm.reply(example.fields(**think, next_tool_args='{"city": "Paris"}'), prompt_tokens=50)
    llm.reply(
        example.fields(next_thought="Done.", next_tool_name="finish", next_tool_args="{}"),
        prompt_tokens=70,
        completion_tokens=8,
    )
    llm.reply(example.fields(reasoning="The tool says sunny.", answer=ANSWER))


def io(span: SpanRecord, key: str) -> object:
    return json.loads(span.attributes[f"traceloop.entity.{key}"])


def test_react_is_one_trace_with_module_tool_and_one_llm_span_per_call(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_dspy()
    script_react(llm)
    agent = dspy.ReAct("question -> answer", tools=[example.get_weather], max_iters=4)
    with dspy.context(lm=example.make_lm(llm.base_url, API_KEY, MODEL)):
        assert agent(question="Weather in Paris?").answer == ANSWER

    spans = one_trace(tfy_spans, "ReAct.agent")
    tfy_spans.assert_one_llm_span_per_call(len(llm.chat_requests()))
    tfy_spans.assert_tree(
        "ReAct.agent > Predict.task > dspy.chat",
        "ReAct.agent > get_weather.tool",
        "ReAct.agent > finish.tool",
        "ReAct.agent > ChainOfThought.task > Predict.task > dspy.chat",
    )
    react = spans.one("ReAct.agent")
    assert react.attributes["traceloop.span.kind"] == "agent"
    assert io(react, "input") == {"args": [], "kwargs": {"question": "Weather in Paris?"}}
    assert io(react, "output")["answer"] == ANSWER  # type: ignore[index]
    tool = spans.one("get_weather.tool")
    assert (io(tool, "input"), io(tool, "output")) == (
        {"city": "Paris"},
        "Sunny, 24 C in Paris",
    )
    first = tfy_spans.llm_spans()[0]
    assert parent(tfy_spans, first).name == "Predict.task"
    view = tfy_spans.llm(first)
    assert (view.model, view.input_tokens) == (MODEL, 50)
    assert "Weather in Paris?" in view.input_messages[-1].content  # type: ignore[operator]
    assert "get_weather" in view.output_text


def test_inside_a_workflow_and_async_calls_are_one_trace(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_dspy()
    llm.reply(example.fields(reasoning="It is France's capital.", answer="Paris"))
    lm = example.make_lm(llm.base_url, API_KEY, MODEL)
    program = dspy.ChainOfThought("question -> answer")

    @tt.workflow(name="geography")
    async def ask(question: str) -> str:
        with dspy.context(lm=lm):
            return str((await program.acall(question=question)).answer)

    assert asyncio.run(ask("Capital of France?")) == "Paris"

    one_trace(tfy_spans, "geography.workflow")
    tfy_spans.assert_tree("geography.workflow > ChainOfThought.task > Predict.task > dspy.chat")
    tfy_spans.assert_one_llm_span_per_call(1)


def test_a_streamed_answer_is_one_trace_with_the_whole_text(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_dspy()
    llm.reply(example.fields(answer="Bring sunglasses."), prompt_tokens=12, completion_tokens=3)

    tip = example.stream_tip(example.make_lm(llm.base_url, API_KEY, MODEL), "A tip?")

    assert tip == "Bring sunglasses."
    assert llm.last_request.json["stream"] is True
    one_trace(tfy_spans, "Predict.task")
    tfy_spans.assert_one_llm_span_per_call(1)
    tfy_spans.assert_stream_complete()
    view = tfy_spans.llm()
    assert "Bring sunglasses." in view.output_text
    assert (view.input_tokens, view.output_tokens) == (12, 3)


def test_a_model_calls_tool_calls_are_on_its_llm_span(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_dspy()
    call = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    llm.reply(tool_calls=[call], prompt_tokens=30, completion_tokens=5)
    tool = {"name": "get_weather", "parameters": {"type": "object"}}
    lm = example.make_lm(llm.base_url, API_KEY, MODEL)
    with warnings.catch_warnings():  # messages= is deprecated for DSPy 3.5, still supported
        warnings.simplefilter("ignore", DeprecationWarning)
        lm(
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[{"type": "function", "function": tool}],
        )

    tfy_spans.assert_one_llm_span_per_call(1)
    answer = tfy_spans.llm().output_messages[0]
    assert answer.finish_reason == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in answer.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


def test_trace_content_false_records_no_prompt_answer_or_arguments(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    tt.init("framework-tests", console=False, trace_content=False)
    script_react(llm)
    agent = dspy.ReAct("question -> answer", tools=[example.get_weather], max_iters=4)
    with dspy.context(lm=example.make_lm(llm.base_url, API_KEY, MODEL)):
        assert agent(question="Secret question?").answer == ANSWER

    assert len(tfy_spans.llm_spans()) == 3 and tfy_spans.llm(tfy_spans.llm_spans()[0]).input_tokens
    tfy_spans.assert_absent("Secret question?", "Look it up.", "Sunny, 24 C")


def test_the_report_has_no_gap_and_the_metadata_download_is_off(
    llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    with caplog.at_level(logging.WARNING, logger="truefoundry_tracing"):
        status = require_dspy()
    outcome = {o.name: o for o in status.instrument_report}["dspy"]
    assert "off: DSPy's download of its model metadata" in outcome.reason
    assert "one LLM span: dspy.chat, or in its place the provider's" in outcome.reason
    assert not [r for r in caplog.records if "dspy" in r.getMessage()]
    from truefoundry_tracing.cli._doctor import run_doctor

    assert not [n for n in run_doctor(env={}).notes if n.startswith("dspy")]


def test_engine_litellm_gives_one_llm_span_per_call(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    status = require_dspy()
    llm.reply(example.fields(answer="Paris"), prompt_tokens=30, completion_tokens=5)
    lm = dspy.LM(
        f"openai/{MODEL}", api_base=llm.base_url, api_key=API_KEY, engine="litellm", cache=False
    )
    with dspy.context(lm=lm):
        assert dspy.Predict("question -> answer")(question="Capital of France?").answer == "Paris"

    tfy_spans.assert_one_llm_span_per_call(1)
    call = tfy_spans.llm_spans()[0]
    assert parent(tfy_spans, call).name == "Predict.task"
    litellm = {o.name: o for o in status.instrument_report}["litellm"]
    # LiteLLM's instrumentation ships with traceloop 0.62 only; on 0.38 ours is the record
    assert call.name == ("dspy.chat" if TL_038 else "litellm.chat"), litellm
    assert tfy_spans.llm(call).input_tokens == 30


def test_a_failing_instrumentation_never_breaks_the_program(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_dspy()
    from truefoundry_tracing._frameworks import _dspy

    def broken(*_args: object) -> None:
        raise ValueError("tracing bug")

    monkeypatch.setattr(_dspy, "response_attributes", broken)
    llm.reply(example.fields(answer="Paris"))
    with (
        caplog.at_level(logging.WARNING, logger="truefoundry_tracing"),
        dspy.context(lm=example.make_lm(llm.base_url, API_KEY, MODEL)),
    ):
        assert dspy.Predict("question -> answer")(question="Capital?").answer == "Paris"

    said = [r.getMessage() for r in caplog.records if "dspy instrumentation" in r.getMessage()]
    assert len(said) == 1 and "ValueError: tracing bug" in said[0], said
    tfy_spans.assert_tree("Predict.task > dspy.chat")  # the spans still end, in one trace


def test_example_runs_offline_and_prints_its_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("dspy_react")
    assert out.split("\n")[:2] == [ANSWER, "Bring sunglasses."]
    assert tree_names(err) == [
        "weather_assistant.workflow",
        "ReAct.agent",
        "Predict.task",
        "dspy.chat",
        "get_weather.tool",
        "Predict.task",
        "dspy.chat",
        "finish.tool",
        "ChainOfThought.task",
        "Predict.task",
        "dspy.chat",
        "Predict.task",
        "dspy.chat",
    ]
