"""Google GenAI (google-genai) under ``init()``: one LLM span per model call when the SDK runs
Python functions itself (automatic function calling), under an agent span with a tool span per
function, one trace with or without ``@workflow``; a stream recorded whole, sync and async."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("google.genai", reason="google-genai runs in the framework environments")

from _support import TL_038, load_example, parent, tree_names
from google import genai
from google.genai import types

import truefoundry_tracing as tt
from truefoundry_tracing.testing import CapturedSpans, FakeGeminiServer, SpanList, SpanRecord

example = load_example("google_genai_tools")
MODEL = "gemini-2.5-flash"
ANSWER = "It is sunny in Paris, 24 C."
STREAMED = "Paris is the capital of France."
AFC = "automatic_function_calling.agent"


@pytest.fixture
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer() as server:
        yield server


def client(server: FakeGeminiServer) -> genai.Client:
    return example.make_client(server.url, "gemini-test-key")


def instrumented() -> tt.TracingStatus:
    """init() with the defaults: google-genai is traced on both lines (traceloop's
    instrumentation corrected on 0.62, this library's on 0.38), never skipped."""
    status = tt.init("framework-tests", console=False)
    outcome = {o.name: o for o in status.instrument_report}["google_generativeai"]
    assert outcome.active and "each model call is one LLM span" in outcome.reason, outcome
    return status


def script_tool_run(server: FakeGeminiServer) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    server.reply(tool_calls=[call], prompt_tokens=20, completion_tokens=5)
    server.reply(ANSWER, prompt_tokens=30, completion_tokens=8)


def check_tool_run(spans: SpanList, first: SpanRecord, second: SpanRecord) -> None:
    """The two model calls of one automatic-function-calling run, each complete, and the tool."""
    agent = parent(spans, first)
    assert agent.name == AFC and parent(spans, second) is agent
    call = spans.llm(first)
    assert call.output_messages[0].tool_calls == (
        {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
    )
    assert (call.input_tokens, call.output_tokens) == (20, 5)
    answer = spans.llm(second)
    assert answer.output_text == ANSWER
    assert (answer.input_tokens, answer.output_tokens) == (30, 8)
    assert "Sunny, 24 C in Paris" in json.dumps([m.content for m in answer.input_messages])
    tool = spans.one(kind="tool")
    assert parent(spans, tool) is agent and tool.name == "get_weather.tool"
    assert json.loads(tool.attributes["traceloop.entity.input"])["kwargs"] == {"city": "Paris"}
    assert json.loads(tool.attributes["traceloop.entity.output"]) == "Sunny, 24 C in Paris"
    assert json.loads(agent.attributes["traceloop.entity.output"]) == ANSWER


def check_stream(spans: SpanList, streamed: SpanRecord) -> None:
    spans.assert_stream_complete(streamed)
    view = spans.llm(streamed)
    assert view.output_text == STREAMED  # not " France.", the last chunk
    assert (view.input_tokens, view.output_tokens) == (6, 6)
    assert view.finish_reasons == ("stop",)


def test_chat_with_a_function_and_a_stream_in_a_workflow(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    script_tool_run(gemini)
    gemini.reply(STREAMED, prompt_tokens=6, completion_tokens=6)
    ask = example.make_app(gemini.url, "gemini-test-key", MODEL)

    assert ask("What is the weather in Paris?") == (ANSWER, STREAMED)

    tfy_spans.assert_tree(f"weather_assistant.workflow > {AFC} > get_weather.tool")
    tfy_spans.assert_one_llm_span_per_call(len(gemini.model_requests()))
    first, second, streamed = tfy_spans.llm_spans()
    check_tool_run(tfy_spans, first, second)
    assert parent(tfy_spans, streamed).name == "weather_assistant.workflow"
    check_stream(tfy_spans, streamed)


def test_without_a_workflow_each_run_is_one_trace(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    script_tool_run(gemini)
    gemini.reply(STREAMED, prompt_tokens=6, completion_tokens=6)
    gc = client(gemini)  # kept: a client closes its connections when collected
    models = gc.models
    config = types.GenerateContentConfig(tools=[example.get_weather])

    reply = models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)
    chunks = models.generate_content_stream(model=MODEL, contents="Capital of France?")
    assert (reply.text, "".join(c.text or "" for c in chunks)) == (ANSWER, STREAMED)

    run, stream = tfy_spans.traces()
    run.assert_one_llm_span_per_call(2)
    assert run.root.name == AFC
    check_tool_run(run, *run.llm_spans())
    stream.assert_one_llm_span_per_call(1)
    check_stream(stream, stream.root)


def test_async_runs_and_a_streamed_chat_turn_that_calls_a_function(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    script_tool_run(gemini)
    script_tool_run(gemini)
    gemini.reply(STREAMED, prompt_tokens=6, completion_tokens=6)
    gc = client(gemini)
    aio = gc.aio
    config = types.GenerateContentConfig(tools=[example.get_weather])

    async def main() -> tuple[str | None, str, str]:
        reply = await aio.models.generate_content(model=MODEL, contents="Weather?", config=config)
        chat = aio.chats.create(model=MODEL, config=config)
        turn = "".join([c.text or "" async for c in await chat.send_message_stream("Weather?")])
        chunks = await aio.models.generate_content_stream(model=MODEL, contents="Capital?")
        return reply.text, turn, "".join([c.text or "" async for c in chunks])

    assert asyncio.run(main()) == (ANSWER, ANSWER, STREAMED)

    run, turn, stream = tfy_spans.traces()
    for one in (run, turn):
        one.assert_one_llm_span_per_call(2)
        check_tool_run(one, *one.llm_spans())
    assert all(one.llm(s).streaming for s in turn.llm_spans())
    stream.assert_one_llm_span_per_call(1)
    check_stream(stream, stream.root)


def test_a_function_decorated_with_tool_gives_one_tool_span(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    script_tool_run(gemini)
    gc = client(gemini)
    config = types.GenerateContentConfig(tools=[tt.tool(example.get_weather)])
    reply = gc.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)
    assert reply.text == ANSWER
    tfy_spans.assert_one_llm_span_per_call(2)
    assert parent(tfy_spans, tfy_spans.one(kind="tool")).name == AFC  # the decorator's, alone


def test_a_stream_read_halfway_still_ends_its_span(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    gemini.reply(STREAMED, prompt_tokens=6, completion_tokens=6)
    gc = client(gemini)
    chunks = gc.models.generate_content_stream(model=MODEL, contents="Capital?")
    assert next(iter(chunks)).text == "Paris"
    chunks.close()
    assert tfy_spans.llm().output_text == "Paris"
    assert tfy_spans.one().status != "ERROR"  # the app stopped reading: not an error


def test_a_stream_the_api_refuses_is_an_error_span(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    gemini.reply(status=429, content="Resource has been exhausted.")
    gc = client(gemini)
    with pytest.raises(genai.errors.ClientError, match="exhausted"):
        list(gc.models.generate_content_stream(model=MODEL, contents="Capital?"))
    failed = tfy_spans.llm_spans().one()
    assert failed.status == "ERROR" and "exhausted" in (failed.status_message or "")


EMBED_MODEL = "gemini-embedding-001"
TEXTS = ["What is your name?", "What is your favourite colour?"]


def check_embedding(spans: SpanList, span: SpanRecord, size: int) -> None:
    assert span.name == f"embed_content {EMBED_MODEL}"
    view = spans.llm(span)
    assert view.operation in ("embeddings", "embedding") and view.model == EMBED_MODEL
    assert [m.content for m in view.input_messages] == TEXTS
    assert span.attributes["gen_ai.embeddings.dimension.count"] == size
    assert view.input_tokens is None  # the Gemini API counts no tokens for embeddings


def test_an_embedding_call_is_one_llm_span_in_the_run_s_trace(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    gc = client(gemini)

    @tt.workflow(name="index")
    def index() -> list[list[float]]:
        config = types.EmbedContentConfig(output_dimensionality=16)
        result = gc.models.embed_content(model=EMBED_MODEL, contents=TEXTS, config=config)
        return [e.values or [] for e in result.embeddings or []]

    vectors = index()
    assert [len(v) for v in vectors] == [16, 16]
    tfy_spans.assert_one_llm_span_per_call(1)
    assert len(tfy_spans.traces()) == 1
    embedded = tfy_spans.llm_spans().one()
    assert parent(tfy_spans, embedded).name == "index.workflow"
    check_embedding(tfy_spans, embedded, 16)


def test_an_async_embedding_call_and_a_refused_one(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()

    async def embed(key: str) -> None:
        gc = example.make_client(gemini.url, key)
        await gc.aio.models.embed_content(model=EMBED_MODEL, contents=TEXTS)

    asyncio.run(embed("gemini-test-key"))
    check_embedding(tfy_spans, tfy_spans.llm_spans().one(), 8)
    tfy_spans.clear()
    gemini.api_key = "the-right-key"
    with pytest.raises(genai.errors.ClientError, match="API key not valid"):
        asyncio.run(embed("a-wrong-key"))
    failed = tfy_spans.llm_spans().one()
    assert failed.status == "ERROR" and "API key not valid" in (failed.status_message or "")
    assert "a-wrong-key" not in json.dumps(failed.attributes)


def test_a_framework_that_records_the_call_itself_gets_no_second_llm_span(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    """traceloop's key for it (LlamaIndex sets it around the model calls it records): the
    provider's spans step aside on both lines, as traceloop's provider instrumentations do."""
    from opentelemetry import context

    instrumented()
    gc = client(gemini)
    token = context.attach(context.set_value("suppress_language_model_instrumentation", True))
    try:
        gc.models.embed_content(model=EMBED_MODEL, contents=TEXTS)
        assert gc.models.generate_content(model=MODEL, contents="Hi").text == "Echo: Hi"
    finally:
        context.detach(token)
    assert len(gemini.requests) == 2 and tfy_spans.llm_spans().names == []


def test_traceloop_0_38_traces_google_genai_with_this_librarys_instrumentation() -> None:
    """0.38's instrumentation wraps only the old google-generativeai SDK: this library's
    records google-genai there, so no gap is reported (0.62: traceloop's, corrected)."""
    status = instrumented()
    by_name = {o.name: o for o in status.instrument_report}
    assert "google-genai" not in by_name  # no "not traced" gap on either line
    from truefoundry_tracing._instrument_table import KNOWN

    ours = KNOWN["google_generativeai"].package == "truefoundry-tracing"
    assert ours == TL_038
    from truefoundry_tracing.cli._doctor import run_doctor

    assert not any(n.startswith("google-genai is not traced") for n in run_doctor(env={}).notes)


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("google_genai_tools")
    assert out.split("\n")[:2] == [ANSWER, "Bring sunglasses."]
    assert tree_names(err) == [
        "weather_assistant.workflow",
        AFC,
        f"generate_content {MODEL}",
        "get_weather.tool",
        f"generate_content {MODEL}",
        f"generate_content {MODEL}",
    ]


def test_a_streamed_run_that_calls_a_function_is_one_trace(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    instrumented()
    script_tool_run(gemini)
    gc = client(gemini)
    config = types.GenerateContentConfig(tools=[example.get_weather])

    chunks = gc.models.generate_content_stream(model=MODEL, contents="Weather?", config=config)
    assert "".join(c.text or "" for c in chunks) == ANSWER

    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    tfy_spans.assert_one_llm_span_per_call(2)
    assert tfy_spans.root.name == AFC
    check_tool_run(tfy_spans, *tfy_spans.llm_spans())
    assert all(tfy_spans.llm(s).streaming for s in tfy_spans.llm_spans())


def test_a_streamed_run_left_early_ends_its_spans_with_what_was_read(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    """Sync and async: the agent span ends when the app stops reading, without an error, with
    the text read so far; so does the model call's span."""
    instrumented()
    gemini.reply(STREAMED)
    gemini.reply(STREAMED)
    gc = client(gemini)
    config = types.GenerateContentConfig(tools=[example.get_weather])
    chunks = gc.models.generate_content_stream(model=MODEL, contents="Capital?", config=config)
    assert next(iter(chunks)).text == "Paris"
    chunks.close()

    async def main() -> None:
        stream = await gc.aio.models.generate_content_stream(
            model=MODEL, contents="Capital?", config=config
        )
        async for chunk in stream:
            assert chunk.text == "Paris"
            break
        await stream.aclose()

    asyncio.run(main())

    assert len(tfy_spans.traces()) == 2, tfy_spans.tree()
    for trace in tfy_spans.traces():
        assert trace.root.name == AFC and trace.root.status != "ERROR"
        assert json.loads(trace.root.attributes["traceloop.entity.output"]) == "Paris"
        assert trace.llm().output_text == "Paris"


def test_a_streamed_run_the_api_refuses_is_an_error_on_both_spans(
    tfy_spans: CapturedSpans, gemini: FakeGeminiServer
) -> None:
    """Sync and async: the agent span and the model call's span are errors, under one trace."""
    instrumented()
    config = types.GenerateContentConfig(tools=[example.get_weather])
    gc = client(gemini)

    async def main() -> list[types.GenerateContentResponse]:
        chunks = await gc.aio.models.generate_content_stream(
            model=MODEL, contents="Capital?", config=config
        )
        return [c async for c in chunks]

    for read in (
        lambda: list(gc.models.generate_content_stream(model=MODEL, contents="?", config=config)),
        lambda: asyncio.run(main()),
    ):
        gemini.reply(status=429, content="Resource has been exhausted.")
        with pytest.raises(genai.errors.ClientError, match="exhausted"):
            read()

    assert len(tfy_spans.traces()) == 2, tfy_spans.tree()
    for trace in tfy_spans.traces():
        run = trace.root
        assert run.name == AFC and "exhausted" in (run.status_message or "")
        assert run.status == "ERROR" and [e.name for e in run.events] == ["exception"]
        assert json.loads(run.attributes["traceloop.entity.output"]) == ""  # nothing was read
        failed = trace.llm_spans().one()
        assert failed.status == "ERROR" and parent(trace, failed) is run
