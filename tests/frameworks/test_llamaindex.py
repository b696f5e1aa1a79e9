"""LlamaIndex under ``init()``: index documents and query them inside a ``@workflow``."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable

import pytest

pytest.importorskip(
    "llama_index.llms.openai", reason="LlamaIndex runs in the framework environments"
)

from _support import (
    API_KEY,
    EXAMPLES,
    load_example,
    one_trace,
    parent,
    require_instrumented,
    tree_names,
)
from llama_index.core import Document, Settings, VectorStoreIndex
from opentelemetry.trace import get_tracer

from truefoundry_tracing import workflow
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("llamaindex_query")
QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital of France."
QUERY_PATH = (
    "city_facts.workflow > RetrieverQueryEngine.workflow > RetrieverQueryEngine.task"
    " > CompactAndRefine.task > CompactAndRefine.task > CompactAndRefine.task"
    " > DefaultRefineProgram.task"
)


def test_query_engine_spans_and_one_llm_span_for_the_answer(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("llama_index")
    llm.reply(ANSWER, prompt_tokens=60, completion_tokens=6)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini", "text-embedding-3-small")

    assert ask(QUESTION) == ANSWER

    spans = one_trace(tfy_spans, "city_facts.workflow")
    tfy_spans.assert_tree(
        "city_facts.workflow > SentenceSplitter.workflow",
        "city_facts.workflow > OpenAIEmbedding.workflow",
        "city_facts.workflow > RetrieverQueryEngine.workflow > RetrieverQueryEngine.task"
        " > VectorIndexRetriever.task",
        QUERY_PATH + " > openai.chat",
    )
    assert [r.path.rsplit("/", 1)[-1] for r in llm.requests] == [
        "embeddings",
        "embeddings",
        "completions",
    ]

    # one chat span for the one chat call: llama-index leaves its OpenAI LLM to the OpenAI
    # instrumentation, and no duplicate comes from llama-index's own dispatcher spans
    chats = spans.llm_spans().where(lambda s: spans.llm(s).operation in ("chat", "llm.chat"))
    assert chats.names == ["openai.chat"]
    assert chats[0].kind == "CLIENT"
    assert parent(spans, chats[0]).name == "DefaultRefineProgram.task"
    view = spans.llm(chats[0])
    assert view.model == "gpt-4o-mini"
    assert view.input_messages[0].role == "system"
    assert QUESTION in (view.input_messages[-1].content or "")
    # the fake embeddings are hashes, so which document is retrieved is arbitrary
    assert any(doc in (view.input_messages[-1].content or "") for doc in example.DOCUMENTS)
    assert view.output_text == ANSWER
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (60, 6, 66)


def test_embedding_calls_are_llm_spans_with_their_model(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("llama_index")
    example.make_app(llm.base_url, API_KEY, "gpt-4o-mini", "text-embedding-3-small")(QUESTION)

    embeddings = tfy_spans.llm_spans().where(lambda s: tfy_spans.llm(s).operation == "embeddings")
    # the OpenAI instrumentation's own embeddings span is suppressed under llama-index's
    assert not tfy_spans.by_name("openai.embeddings")
    # 0.38 records the model as embedding.model_name only; _frameworks/_llamaindex adds the
    # GenAI attributes 0.62 records
    assert embeddings.names == ["OpenAIEmbedding.workflow", "OpenAIEmbedding.task"]
    assert {tfy_spans.llm(s).model for s in embeddings} == {"text-embedding-3-small"}
    assert all(tfy_spans.llm(s).input_tokens is None for s in embeddings)


def test_gateway_model_names_go_through_llama_index_own_llm_span(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("llama_index")
    llm.reply(ANSWER, prompt_tokens=60, completion_tokens=6)
    ask = example.make_app(
        llm.base_url, API_KEY, "openai-main/gpt-4o-mini", "openai-main/text-embedding-3-small"
    )

    assert ask(QUESTION) == ANSWER

    assert llm.chat_requests()[0].json["model"] == "openai-main/gpt-4o-mini"
    chats = tfy_spans.llm_spans().where(lambda s: tfy_spans.llm(s).operation == "chat")
    # the subclass is not llama-index's own OpenAI class, so llama-index traces the call
    # itself and the OpenAI instrumentation stays suppressed: still one span per call
    assert not tfy_spans.by_name("openai.chat")
    assert chats.names == ["GatewayOpenAI.task"], tfy_spans.tree()
    view = tfy_spans.llm(chats[0])
    assert view.model == "openai-main/gpt-4o-mini"
    assert (view.input_tokens, view.output_tokens) == (60, 6)


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("llamaindex_query")
    assert out.strip() == ANSWER
    names = tree_names(err)
    assert names[0] == "city_facts.workflow"
    assert names.count("openai.chat") == 1
    assert "RetrieverQueryEngine.workflow" in names


STREAM_PATH = (
    "RetrieverQueryEngine.workflow > RetrieverQueryEngine.task > CompactAndRefine.task"
    " > CompactAndRefine.task > CompactAndRefine.task > openai.chat"
)


def streaming_index(llm: FakeLLMServer) -> VectorStoreIndex:
    """The example's index, its LLM asking for a stream's token usage (as the agent example)."""
    llm.reply(ANSWER, prompt_tokens=60, completion_tokens=6)
    example.make_app(llm.base_url, API_KEY, "gpt-4o-mini", "text-embedding-3-small")
    Settings.llm.additional_kwargs = {"stream_options": {"include_usage": True}}
    return VectorStoreIndex.from_documents([Document(text=t) for t in example.DOCUMENTS])


@pytest.mark.parametrize("read", ["response_gen", "print_response_stream"])
@pytest.mark.parametrize("wrapped", [True, False], ids=["in-workflow", "bare"])
def test_streamed_query_is_one_trace_with_the_llm_span_under_the_synthesizer(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    capsys: pytest.CaptureFixture[str],
    read: str,
    wrapped: bool,
) -> None:
    require_instrumented("llama_index")
    index = streaming_index(llm)
    tfy_spans.clear()  # the index is built once, outside the run

    def ask(question: str) -> str:
        response = index.as_query_engine(similarity_top_k=1, streaming=True).query(question)
        if read == "response_gen":
            return "".join(response.response_gen)
        response.print_response_stream()
        return capsys.readouterr().out

    run = workflow(name="city_stream")(ask) if wrapped else ask
    assert run(QUESTION) == ANSWER

    root = "city_stream.workflow > " if wrapped else ""
    spans = one_trace(tfy_spans, (root or "RetrieverQueryEngine.workflow > ").split(" > ")[0])
    tfy_spans.assert_tree(
        root + STREAM_PATH,
        root + "RetrieverQueryEngine.workflow > RetrieverQueryEngine.task"
        " > VectorIndexRetriever.task",
    )
    assert len(llm.chat_requests()) == 1
    chats = spans.llm_spans().where(lambda s: spans.llm(s).operation in ("chat", "llm.chat"))
    assert chats.names == ["openai.chat"]
    chat = chats[0]
    view = spans.llm(chat)
    assert (view.model, view.output_text) == ("gpt-4o-mini", ANSWER)
    assert (view.input_tokens, view.output_tokens) == (60, 6)
    assert QUESTION in (view.input_messages[-1].content or "")
    tfy_spans.assert_stream_complete(chat)
    # the spans that waited for the stream ended after it, not before
    query = spans.one("RetrieverQueryEngine.workflow")
    assert query.end_ns >= chat.end_ns
    # and the app's context is its own again once query() returned
    with get_tracer("tests").start_as_current_span("after.query"):
        pass
    assert tfy_spans.parent(tfy_spans.one("after.query")) is None


def test_async_streamed_query_is_one_trace_with_the_llm_span_under_the_synthesizer(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("llama_index")
    index = streaming_index(llm)
    tfy_spans.clear()  # the index is built once, outside the run

    @workflow(name="city_stream")
    async def ask(question: str) -> str:
        engine = index.as_query_engine(similarity_top_k=1, streaming=True)
        response = await engine.aquery(question)
        return "".join([text async for text in response.async_response_gen()])

    assert asyncio.run(ask(QUESTION)) == ANSWER

    spans = one_trace(tfy_spans, "city_stream.workflow")
    tfy_spans.assert_tree("city_stream.workflow > " + STREAM_PATH)
    view = spans.llm(spans.one("openai.chat"))
    assert (view.output_text, view.input_tokens, view.output_tokens) == (ANSWER, 60, 6)
    tfy_spans.assert_stream_complete(spans.one("openai.chat"))
    # the spans that returned the response wait for its stream, as in a sync streamed query
    assert spans.one("RetrieverQueryEngine.workflow").end_ns >= spans.one("openai.chat").end_ns


# --- a FunctionAgent (workflow agent) with a tool call and a final answer ---------------------

agent_example = load_example("llamaindex_agent")
STEPS = [
    "FunctionAgent.init_run",
    "FunctionAgent.setup_agent",
    "FunctionAgent.run_agent_step",
    "FunctionAgent.parse_agent_output",
    "FunctionAgent.call_tool",
    "FunctionAgent.aggregate_tool_results",
    "FunctionAgent.setup_agent",
    "FunctionAgent.run_agent_step",
    "FunctionAgent.parse_agent_output",
]


def script_agent(llm: FakeLLMServer) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    llm.reply(tool_calls=[call], prompt_tokens=40, completion_tokens=9)
    llm.reply(agent_example.ANSWER, prompt_tokens=60, completion_tokens=8)


def no_detach_errors(caplog: pytest.LogCaptureFixture) -> None:
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "Failed to detach context" in m], messages
    assert not [m for m in messages if "Setting attribute on ended span" in m], messages


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("wrapped", [True, False], ids=["in-workflow", "bare"])
def test_function_agent_steps_tool_and_llm_spans_in_one_trace(
    tfy_spans: CapturedSpans,
    llm: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
    wrapped: bool,
) -> None:
    require_instrumented("llama_index")
    script_agent(llm)
    question = "What is the weather in Paris?"
    if wrapped:
        app = agent_example.make_app(llm.base_url, API_KEY, "gpt-4o-mini", stream=stream)
        answer = asyncio.run(app(question))
    else:
        agent = agent_example.make_agent(llm.base_url, API_KEY, "gpt-4o-mini")
        answer = asyncio.run(agent_example.ask(agent, question, stream=stream))

    assert answer == agent_example.ANSWER
    no_detach_errors(caplog)
    tfy_spans.assert_one_llm_span_per_call(len(llm.chat_requests()))
    assert len(llm.chat_requests()) == 2
    run = "weather_agent.workflow > FunctionAgent.workflow" if wrapped else "FunctionAgent.workflow"
    assert tfy_spans.root.name == run.split(" > ")[0]
    # every step is named after the step, not all "BaseWorkflowAgent.task"
    steps = tfy_spans.children(tfy_spans.one("FunctionAgent.workflow")).sorted()
    assert steps.names == STEPS
    assert {s.attributes["traceloop.entity.name"] for s in steps} == set(STEPS)
    tfy_spans.assert_tree(
        f"{run} > FunctionAgent.run_agent_step > openai.chat",
        f"{run} > FunctionAgent.call_tool > get_weather.tool",
    )
    first, second = tfy_spans.llm_spans().sorted()
    assert tfy_spans.llm(first).output_messages[0].tool_calls[0]["name"] == "get_weather"
    view = tfy_spans.llm(second)
    assert (view.output_text, view.input_tokens, view.output_tokens) == (
        agent_example.ANSWER,
        60,
        8,
    )
    tfy_spans.assert_stream_complete(second)


def test_function_agent_tool_span_has_the_arguments_and_the_result(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("llama_index")
    script_agent(llm)
    app = agent_example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")
    asyncio.run(app("What is the weather in Paris?"))

    tool = tfy_spans.one("get_weather.tool")
    assert tool.attributes["traceloop.span.kind"] == "tool"
    assert tool.attributes["traceloop.entity.name"] == "get_weather"
    assert json.loads(tool.attributes["traceloop.entity.input"]) == {"kwargs": {"city": "Paris"}}
    assert "Sunny in Paris, 24 C." in tool.attributes["traceloop.entity.output"]


def test_agent_example_runs_offline_with_named_steps_and_no_context_error(
    run_offline: Callable[[list[str]], subprocess.CompletedProcess[str]],
) -> None:
    ran = run_offline([str(EXAMPLES / "llamaindex_agent.py"), "--stream"])
    assert ran.stdout.strip() == agent_example.ANSWER
    assert "Failed to detach context" not in ran.stderr
    names = tree_names(ran.stderr)
    assert names[:2] == ["weather_agent.workflow", "FunctionAgent.workflow"]
    assert names.count("openai.chat") == 2 and names.count("get_weather.tool") == 1
    assert "BaseWorkflowAgent.task" not in names
