"""LangChain under ``init()``: a ``prompt | ChatOpenAI`` chain inside a ``@workflow``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest.importorskip("langchain_openai", reason="LangChain runs in the framework environments")

from _support import (
    API_KEY,
    TL_038,
    load_example,
    one_trace,
    parent,
    require_instrumented,
    tree_names,
)

from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("langchain_chain")
PROMPT_SPAN = "ChatPromptTemplate.task" if TL_038 else "execute_task ChatPromptTemplate"


def test_chain_is_one_trace_with_one_llm_span_under_the_chain(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("langchain")
    llm.reply("The capital of France is Paris.", prompt_tokens=14, completion_tokens=6)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    assert ask("France") == "The capital of France is Paris."

    spans = one_trace(tfy_spans, "capital_question.workflow")
    tfy_spans.assert_tree(
        f"capital_question.workflow > RunnableSequence.workflow > {PROMPT_SPAN}",
        "capital_question.workflow > RunnableSequence.workflow > ChatOpenAI.chat",
    )
    assert spans.one("RunnableSequence.workflow").attributes["traceloop.span.kind"] == "workflow"
    assert spans.one(PROMPT_SPAN).attributes["traceloop.span.kind"] == "task"
    # the OpenAI instrumentation is suppressed under LangChain's model span: no duplicate
    calls = spans.llm_spans()
    assert calls.names == ["ChatOpenAI.chat"] and len(llm.chat_requests()) == 1
    assert calls[0].kind == "CLIENT"
    assert parent(spans, calls[0]).name == "RunnableSequence.workflow"

    view = spans.llm()
    assert view.model == "gpt-4o-mini"
    assert (view.input_messages[-1].role, view.input_messages[-1].content) == (
        "user",
        "What is the capital of France?",
    )
    assert view.output_text == "The capital of France is Paris."
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (14, 6, 20)


def test_system_prompt_is_part_of_the_llm_view(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("langchain")
    example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")("France")
    assert [(m.role, m.content) for m in tfy_spans.llm().input_messages] == [
        ("system", "You answer in one sentence."),
        ("user", "What is the capital of France?"),
    ]


def test_two_invocations_are_two_llm_spans(tfy_spans: CapturedSpans, llm: FakeLLMServer) -> None:
    require_instrumented("langchain")
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    ask("France")
    ask("Japan")

    traces = tfy_spans.traces()
    assert len(traces) == 2
    for trace, country in zip(traces, ["France", "Japan"], strict=True):
        (call,) = trace.llm_spans()
        assert trace.llm(call).input_messages[-1].content == f"What is the capital of {country}?"
    assert len(llm.chat_requests()) == 2


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("langchain_chain")
    assert out.strip() == "The capital of France is Paris."
    tree = tree_names(err)
    assert tree[tree.index("capital_question.workflow") :][:4] == [
        "capital_question.workflow",
        "RunnableSequence.workflow",
        PROMPT_SPAN,
        "ChatOpenAI.chat",
    ]
