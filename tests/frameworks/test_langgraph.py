"""LangGraph under ``init()``: a tool-calling agent graph inside a ``@workflow``."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

pytest.importorskip("langgraph", reason="LangGraph runs in the framework environments")

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

example = load_example("langgraph_agent")


def node(name: str) -> str:
    return f"{name}.task" if TL_038 else f"execute_task {name}"


TOOL_SPAN = "population.tool" if TL_038 else "execute_tool population"
GRAPH = "LangGraph.workflow" if TL_038 else "invoke_agent LangGraph > LangGraph.workflow"


def script(llm: FakeLLMServer) -> None:
    llm.reply(
        tool_calls=[{"name": "population", "arguments": {"city": "Paris"}}],
        prompt_tokens=9,
        completion_tokens=4,
    )
    llm.reply("Paris has about 2.1 million inhabitants.", prompt_tokens=21, completion_tokens=8)


def test_agent_graph_nodes_tool_and_one_llm_span_per_model_call(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("langchain")
    script(llm)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    assert ask("How many people live in Paris?") == "Paris has about 2.1 million inhabitants."

    spans = one_trace(tfy_spans, "city_agent.workflow")
    tfy_spans.assert_tree(
        f"city_agent.workflow > {GRAPH} > {node('agent')} > ChatOpenAI.chat",
        f"city_agent.workflow > {GRAPH} > {node('tools')} > {TOOL_SPAN}",
    )
    assert len(spans.by_name(node("agent"))) == 2
    assert spans.one(TOOL_SPAN).attributes["traceloop.span.kind"] == "tool"

    calls = spans.llm_spans()
    assert calls.names == ["ChatOpenAI.chat", "ChatOpenAI.chat"]
    assert len(llm.chat_requests()) == 2
    assert [parent(spans, c).name for c in calls] == [node("agent"), node("agent")]
    assert parent(spans, calls[0]) is not parent(spans, calls[1])

    first, second = (spans.llm(c) for c in calls)
    assert first.model == second.model == "gpt-4o-mini"
    assert first.input_messages[-1].content == "How many people live in Paris?"
    # traceloop 0.38 reads them from additional_kwargs, where langchain-openai 1.x no longer
    # puts them, and maps no role to LangChain's ToolMessage: _frameworks/_langchain038 adds both
    assert first.output_messages[0].role == "assistant"
    (call,) = first.output_messages[0].tool_calls
    assert call["name"] == "population"
    arguments = call["arguments"]
    assert (json.loads(arguments) if isinstance(arguments, str) else arguments) == {"city": "Paris"}
    (asked,) = second.input_messages[
        -2
    ].tool_calls  # the assistant turn, in the second call's input
    assert asked["name"] == "population"
    assert second.input_messages[-1].role == "tool"
    assert second.input_messages[-1].content == "2.1 million"
    assert second.output_text == "Paris has about 2.1 million inhabitants."
    assert [(v.input_tokens, v.output_tokens, v.total_tokens) for v in (first, second)] == [
        (9, 4, 13),
        (21, 8, 29),
    ]


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("langgraph_agent")
    assert out.strip() == "Paris has about 2.1 million inhabitants."
    names = tree_names(err)
    assert names[0] == "city_agent.workflow"
    assert names.count("ChatOpenAI.chat") == 2
    assert TOOL_SPAN in names
