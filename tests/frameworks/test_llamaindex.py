"""LlamaIndex under ``init()``: index documents and query them inside a ``@workflow``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest.importorskip(
    "llama_index.llms.openai", reason="LlamaIndex runs in the framework environments"
)

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


def test_embedding_calls_are_llm_spans_on_the_newest_line_only(
    tfy_spans: CapturedSpans, llm: FakeLLMServer
) -> None:
    require_instrumented("llama_index")
    example.make_app(llm.base_url, API_KEY, "gpt-4o-mini", "text-embedding-3-small")(QUESTION)

    embeddings = tfy_spans.llm_spans().where(lambda s: tfy_spans.llm(s).operation == "embeddings")
    # the OpenAI instrumentation's own embeddings span is suppressed under llama-index's
    assert not tfy_spans.by_name("openai.embeddings")
    if TL_038:
        assert len(embeddings) == 0  # 0.38: llama-index spans carry no model attributes
    else:
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
