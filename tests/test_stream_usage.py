"""Streamed OpenAI calls record the token usage the server streams, on both traceloop lines.

The real ``openai`` client, sync and async, streams from a local ``FakeLLMServer`` that, like
OpenAI, sends a final usage chunk only when asked (``stream_options={"include_usage": True}``).
On 0.62 the instrumentation reads that chunk itself; on 0.38 ``_shims.openai_stream_usage``
makes it (without the shim these tests fail there: the span has no token counts at all).
openai is imported before ``init()`` here, so the instrumentation is applied through the
deferred first-use path.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import truefoundry_tracing as tt
from truefoundry_tracing._shims import openai_stream_usage
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, ScriptedReply

OLD_LINE = openai_stream_usage.applies(
    importlib.metadata.version("opentelemetry-instrumentation-openai")
)
MESSAGES: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Count the tokens."},
]
ASK = {"stream": True, "stream_options": {"include_usage": True}}
# Numbers no word count of the messages would give, so they can only come from the server.
PROMPT, COMPLETION = 17, 5


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    # stream_usage=False: a usage chunk only when the request asks for one, as OpenAI does.
    with FakeLLMServer(stream_usage=False) as fake:
        yield fake


def _init(server: FakeLLMServer) -> None:
    tt.init(app_name="stream-usage", console=False, instruments=["openai"])
    server.queue(ScriptedReply("An answer.", prompt_tokens=PROMPT, completion_tokens=COMPLETION))


def _usage_chunks(chunks: list[Any]) -> list[tuple[int, int, int]]:
    return [
        (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens)
        for c in chunks
        if getattr(c, "usage", None) is not None
    ]


def _tokens(spans: CapturedSpans, name: str = "openai.chat") -> tuple[Any, Any, Any]:
    view = spans.llm(spans.one(name))
    return view.input_tokens, view.output_tokens, view.total_tokens


def _read_sync(client: openai.OpenAI, form: str) -> list[Any]:
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, **ASK)
    if form == "with":
        with stream as chunks:
            return list(chunks)
    return list(stream)


async def _read_async(client: openai.AsyncOpenAI, form: str) -> list[Any]:
    stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, **ASK)
    if form == "with":
        async with stream as chunks:
            return [c async for c in chunks]
    return [c async for c in stream]


@pytest.mark.parametrize("form", ["plain", "with"])
def test_sync_stream_records_the_usage_the_server_sent(
    tfy_spans: CapturedSpans, server: FakeLLMServer, form: str
) -> None:
    _init(server)
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        chunks = _read_sync(client, form)
    assert _usage_chunks(chunks) == [(PROMPT, COMPLETION, PROMPT + COMPLETION)]
    assert _tokens(tfy_spans) == (PROMPT, COMPLETION, PROMPT + COMPLETION)
    tfy_spans.assert_stream_complete()


@pytest.mark.parametrize("form", ["plain", "with"])
def test_async_stream_records_the_usage_the_server_sent(
    tfy_spans: CapturedSpans, server: FakeLLMServer, form: str
) -> None:
    _init(server)

    async def run() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="k", max_retries=0
        ) as client:
            return await _read_async(client, form)

    chunks = asyncio.run(run())
    assert _usage_chunks(chunks) == [(PROMPT, COMPLETION, PROMPT + COMPLETION)]
    assert _tokens(tfy_spans) == (PROMPT, COMPLETION, PROMPT + COMPLETION)


def test_stream_usage_uses_the_attribute_names_of_a_call_not_streamed(
    tfy_spans: CapturedSpans, server: FakeLLMServer
) -> None:
    _init(server)
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, **ASK))
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    streamed, plain = sorted(tfy_spans.by_name("openai.chat"), key=lambda s: s.start_ns)

    def usage_keys(span: Any) -> set[str]:
        return {k for k in span.attributes if "usage" in k and "tokens" in k}

    assert usage_keys(streamed) == usage_keys(plain)
    if OLD_LINE:
        assert usage_keys(streamed) == {
            "gen_ai.usage.prompt_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.total_tokens",
        }


def test_legacy_completion_stream_records_the_usage_the_server_sent(
    tfy_spans: CapturedSpans, server: FakeLLMServer
) -> None:
    _init(server)
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        chunks = list(client.completions.create(model="gpt-test", prompt="Say it.", **ASK))
    assert _usage_chunks(chunks) == [(PROMPT, COMPLETION, PROMPT + COMPLETION)]
    assert _tokens(tfy_spans, "openai.completion") == (PROMPT, COMPLETION, PROMPT + COMPLETION)


def test_a_stream_without_usage_records_no_tokens(
    tfy_spans: CapturedSpans, server: FakeLLMServer
) -> None:
    _init(server)
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        )
    assert _usage_chunks(chunks) == []
    assert _tokens(tfy_spans) == (None, None, None)


# --------------------------------------------------------------------------------------------
# 0.38 only: the shim itself
# --------------------------------------------------------------------------------------------

old_line_only = pytest.mark.skipif(not OLD_LINE, reason="the shim applies to the 0.38 line only")


@pytest.fixture
def estimate(monkeypatch: pytest.MonkeyPatch) -> int:
    """The instrumentation's tiktoken counting switched on, answering a fixed 999.

    tiktoken itself would download its encodings; only its count is replaced.
    """
    from opentelemetry.instrumentation.openai.shared import chat_wrappers
    from opentelemetry.instrumentation.openai.shared.config import Config

    monkeypatch.setattr(Config, "enrich_token_usage", True)
    monkeypatch.setattr(chat_wrappers, "get_token_count_from_string", lambda *_a: 999)
    return 999


@old_line_only
def test_server_usage_replaces_the_estimate_instead_of_adding_to_it(
    tfy_spans: CapturedSpans, server: FakeLLMServer, estimate: int
) -> None:
    _init(server)
    server.reply("No usage asked for this one.")
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, **ASK))
        list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))
    with_usage, without = sorted(tfy_spans.by_name("openai.chat"), key=lambda s: s.start_ns)
    assert _tokens_of(tfy_spans, with_usage) == (PROMPT, COMPLETION, PROMPT + COMPLETION)
    # No usage in the stream: the instrumentation's own estimate, as before.
    assert _tokens_of(tfy_spans, without) == (estimate, estimate, 2 * estimate)


def _tokens_of(spans: CapturedSpans, span: Any) -> tuple[Any, Any, Any]:
    view = spans.llm(span)
    return view.input_tokens, view.output_tokens, view.total_tokens


class _Counter:
    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def record(self, value: int, attributes: dict[str, Any]) -> None:
        self.records.append((value, attributes["gen_ai.token.type"]))


@old_line_only
def test_token_metric_is_recorded_once_from_the_usage(estimate: int) -> None:
    from opentelemetry.instrumentation.openai.shared import chat_wrappers
    from opentelemetry.trace import INVALID_SPAN

    assert openai_stream_usage.apply()
    counter = _Counter()
    request = {"model": "gpt-test", "messages": MESSAGES}
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    chat_wrappers._set_streaming_token_metrics(
        request, {"choices": [], "usage": usage}, INVALID_SPAN, counter, {"stream": True}
    )
    assert counter.records == [(3, "input"), (4, "output")]
    counter.records.clear()
    chat_wrappers._set_streaming_token_metrics(
        request, {"choices": [{"message": {"content": "Hi."}}]}, INVALID_SPAN, counter, {}
    )
    assert counter.records == [(estimate, "input"), (estimate, "output")]


@old_line_only
def test_apply_is_idempotent() -> None:
    from opentelemetry.instrumentation.openai.shared import chat_wrappers

    assert openai_stream_usage.apply()
    assert openai_stream_usage.apply()
    outer = chat_wrappers._accumulate_stream_items
    assert outer._self_wrapper is openai_stream_usage._chat_accumulate
    assert getattr(outer.__wrapped__, "_self_wrapper", None) is None  # wrapped once


@pytest.mark.skipif(OLD_LINE, reason="on 0.38 the shim applies")
def test_other_lines_are_left_alone() -> None:
    assert openai_stream_usage.apply() is False


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"usage": {"prompt_tokens": 2, "completion_tokens": 3}}, {"total_tokens": 5}),
        ({"usage": {"prompt_tokens": True}}, None),  # a bool is no count
        ({"usage": "garbage"}, None),
        ({"usage": None}, None),
        (object(), None),
        (None, None),
    ],
)
def test_unreadable_usage_is_ignored_never_raised(item: Any, expected: Any) -> None:
    response: dict[str, Any] = {}
    openai_stream_usage._keep_usage(item, response)
    if expected is None:
        assert "usage" not in response
    else:
        assert response["usage"].items() >= expected.items()
