"""FakeLLMServer driven end to end by the real ``openai`` client (no mocks)."""

from __future__ import annotations

import base64
import doctest
import http.client
import json
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from truefoundry_tracing.testing._llm_server import (
    FakeLLMServer,
    RecordedRequest,
    ScriptedReply,
    count_tokens,
    fake_embedding,
)

USER: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the weather in Paris?"}
]
WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
AUTH = {"Authorization": "Bearer test-key"}
WITH_USAGE: Any = {"include_usage": True}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture
def client(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as cli:
        yield cli


@pytest.fixture
async def aclient(server: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key="test-key", max_retries=0
    ) as cli:
        yield cli


def raw_request(
    server: FakeLLMServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """Send one request with the stdlib client; return (status, headers, parsed JSON body)."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path, body=body, headers={**AUTH, **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(data)
    finally:
        conn.close()


# ------------------------------------------------------------------------------ chat, sync


def test_chat_default_reply_is_deterministic_echo(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "Hello there"}]},
        ],
    )
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.model == "gpt-4o"
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: Hello there"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    # 2 + 2 + 2 + 2 words of prompt; "Echo: Hello there" is 3 words.
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (8, 3)
    assert answer.usage.total_tokens == 11


def test_echo_is_truncated_and_handles_missing_user_message(client: openai.OpenAI) -> None:
    long = "x" * 500
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": long}])
    assert answer.choices[0].message.content == "Echo: " + "x" * 200 + "..."
    answer = client.chat.completions.create(
        model="m", messages=[{"role": "system", "content": "only a system prompt"}]
    )
    assert answer.choices[0].message.content == "Echo: (no user message)"


def test_chat_scripted_content_and_token_counts(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.reply("It is sunny.", prompt_tokens=42, completion_tokens=7, finish_reason="length")
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert answer.choices[0].message.content == "It is sunny."
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (42, 7)
    assert answer.usage.total_tokens == 49


def test_replies_are_consumed_fifo_then_default(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.reply("one")
    server.queue(ScriptedReply("two"), ScriptedReply("three"))
    assert server.pending_replies == 3
    got = [
        client.chat.completions.create(model="m", messages=USER).choices[0].message.content
        for _ in range(4)
    ]
    assert got == ["one", "two", "three", "Echo: What is the weather in Paris?"]
    assert server.pending_replies == 0


def test_chat_streaming_reassembles_scripted_text(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    text = "The weather in Paris is sunny and 24 degrees."
    server.reply(text)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, stream_options=WITH_USAGE
        )
    )
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in with_choices if c.choices[0].delta.content]
    assert len(pieces) == len(text.split())  # one chunk per word
    assert "".join(pieces) == text
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id}
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == count_tokens(text)
    assert usage_chunk.usage.prompt_tokens == count_tokens("What is the weather in Paris?")


def test_stream_usage_chunk_only_when_asked_like_openai(client: openai.OpenAI) -> None:
    plain = list(client.chat.completions.create(model="m", messages=USER, stream=True))
    assert all(c.choices and c.usage is None for c in plain)
    asked = list(
        client.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert asked[-1].choices == [] and asked[-1].usage is not None
    assert asked[-1].usage.total_tokens > 0
    legacy = list(client.completions.create(model="m", prompt="Say hi", stream=True))
    assert all(c.choices and c.usage is None for c in legacy)


def test_stream_usage_forced_like_a_gateway_that_always_sends_it() -> None:
    with (
        FakeLLMServer(stream_usage=True) as gateway,
        openai.OpenAI(base_url=gateway.base_url, api_key="k", max_retries=0) as cli,
    ):
        chunks = list(cli.chat.completions.create(model="m", messages=USER, stream=True))
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.prompt_tokens == count_tokens(USER[0]["content"])  # type: ignore[typeddict-item]


def test_raw_sse_wire_format(server: FakeLLMServer) -> None:
    server.reply("a b")
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    body = json.dumps(
        {"model": "m", "messages": USER, "stream": True, "stream_options": WITH_USAGE}
    )
    conn.request("POST", "/v1/chat/completions", body=body, headers=AUTH)
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type", "").startswith("text/event-stream")
    assert resp.getheader("Transfer-Encoding") == "chunked"
    events = resp.read().decode().split("\n\n")
    conn.close()
    assert events[-1] == ""
    assert all(e.startswith("data: ") for e in events[:-1])
    assert events[-2] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert [p["choices"][0]["delta"] for p in payloads[:3]] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "a"},
        {"content": " b"},
    ]
    assert payloads[3]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert payloads[4]["choices"] == []
    assert payloads[4]["usage"]["completion_tokens"] == 2


# ------------------------------------------------------------------------------ tool calls


def test_tool_calls_non_streaming(server: FakeLLMServer, client: openai.OpenAI) -> None:
    server.reply(tool_calls=[WEATHER_CALL, {"name": "get_time", "arguments": '{"tz": "CET"}'}])
    answer = client.chat.completions.create(model="m", messages=USER)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2
    assert [c.type for c in calls] == ["function", "function"]
    first, second = (c.function for c in calls)  # type: ignore[union-attr]
    assert first.name == "get_weather"
    assert json.loads(first.arguments) == WEATHER_CALL["arguments"]
    assert (second.name, second.arguments) == ("get_time", '{"tz": "CET"}')
    assert all(c.id.startswith("call_") for c in calls)
    assert calls[0].id != calls[1].id


def test_tool_calls_streaming_deltas_reassemble(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    openai_shaped = {
        "id": "call_custom",
        "type": "function",
        "function": {"name": "lookup", "arguments": {"q": "a fairly long query string"}},
    }
    server.reply("Let me check.", tool_calls=[WEATHER_CALL, openai_shaped])
    calls: dict[int, dict[str, str]] = {}
    text = ""
    finish = None
    for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for tc in delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            if tc.function is not None:
                entry["name"] += tc.function.name or ""
                entry["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert text == "Let me check."
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == WEATHER_CALL["arguments"]
    assert calls[0]["id"].startswith("call_")
    assert calls[1] == {
        "id": "call_custom",
        "name": "lookup",
        "arguments": json.dumps({"q": "a fairly long query string"}),
    }


# ---------------------------------------------------------------- other endpoints


def test_legacy_completions(server: FakeLLMServer, client: openai.OpenAI) -> None:
    done = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert done.object == "text_completion"
    assert done.choices[0].text == "Echo: Say hi"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.prompt_tokens == 2

    server.reply("Hi there, friend")
    chunks = list(
        client.completions.create(
            model="m", prompt="Say hi", stream=True, stream_options=WITH_USAGE
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hi there, friend"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert server.last_request.path == "/v1/completions"


def test_embeddings(server: FakeLLMServer, client: openai.OpenAI) -> None:
    one = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert one.model == "text-embedding-3-small"
    assert len(one.data) == 1 and len(one.data[0].embedding) == 8
    assert one.data[0].embedding == fake_embedding("hello")
    many = client.embeddings.create(model="e", input=["hello", "world", "hello"])
    vectors = [d.embedding for d in many.data]
    assert [d.index for d in many.data] == [0, 1, 2]
    assert vectors[0] == vectors[2] == one.data[0].embedding
    assert vectors[1] != vectors[0]
    assert many.usage.prompt_tokens == 3
    wide = client.embeddings.create(model="e", input="hello", dimensions=32)
    assert len(wide.data[0].embedding) == 32
    tokens = client.embeddings.create(model="e", input=[[1, 2, 3]])
    assert tokens.data[0].embedding == fake_embedding("[1,2,3]")


def test_embeddings_base64_decodes_to_the_float_vector(server: FakeLLMServer) -> None:
    body = json.dumps({"model": "e", "input": "hello", "encoding_format": "base64"})
    status, _, answer = raw_request(server, "POST", "/v1/embeddings", body.encode())
    assert status == 200
    raw = base64.b64decode(answer["data"][0]["embedding"])
    assert list(struct.unpack("<8f", raw)) == fake_embedding("hello")


def test_models_lists_default_and_seen_models(server: FakeLLMServer, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
    client.chat.completions.create(model="gpt-4o", messages=USER)
    client.embeddings.create(model="text-embedding-3-small", input="x")
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert [m.id for m in client.models.list()] == [
        "gpt-4o-mini",
        "gpt-4o",
        "text-embedding-3-small",
    ]


# ------------------------------------------------------------------------ recording


def test_requests_are_recorded_with_headers_and_body(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    metadata = json.dumps({"tfy_log_request": "true", "team": "search"})
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        temperature=0.2,
        extra_headers={"X-TFY-METADATA": metadata, "X-TFY-LOGGING-CONFIG": "{}"},
    )
    client.models.list()
    reqs = server.requests
    assert [(r.method, r.path) for r in reqs] == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]
    chat = server.chat_requests()
    assert len(chat) == 1
    req = chat[0]
    assert isinstance(req, RecordedRequest)
    assert req.headers["authorization"] == "Bearer test-key"
    assert req.headers["x-tfy-metadata"] == metadata
    assert req.headers["x-tfy-logging-config"] == "{}"
    assert req.json == json.loads(req.body)
    assert req.json["messages"] == USER
    assert req.json["temperature"] == 0.2
    assert server.last_request.path == "/v1/models"
    assert server.last_request.json is None


def test_requests_is_a_snapshot_and_clear_forgets(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    with pytest.raises(AssertionError, match="not received any request"):
        _ = server.last_request
    client.chat.completions.create(model="m", messages=USER)
    snapshot = server.requests
    server.reply("queued but never used")
    client.models.list()
    assert len(snapshot) == 1 and len(server.requests) == 2
    server.clear()
    assert server.requests == [] and server.pending_replies == 0
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]


@pytest.mark.parametrize("prefix", ["/api/llm", "/api/llm/api/inference/openai", ""])
def test_any_path_prefix_reaches_the_endpoints(server: FakeLLMServer, prefix: str) -> None:
    with openai.OpenAI(base_url=server.url + prefix, api_key="k", max_retries=0) as cli:
        server.reply("via gateway")
        answer = cli.chat.completions.create(model="openai-main/gpt-4o", messages=USER)
        assert answer.choices[0].message.content == "via gateway"
        assert cli.embeddings.create(model="e", input="x").data[0].embedding
    assert server.chat_requests()[0].path == prefix + "/chat/completions"
    assert server.last_request.path == prefix + "/embeddings"


# --------------------------------------------------------------------------- errors


def test_scripted_429_surfaces_as_rate_limit_error(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.fail(429, message="slow down", headers={"Retry-After": "0"})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=USER)
    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "0"
    assert err.body == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    # The failure was used up: the next call succeeds.
    assert client.chat.completions.create(model="m", messages=USER).choices


def test_client_retries_past_a_429_with_retry_after(server: FakeLLMServer) -> None:
    server.fail(429, headers={"Retry-After": "0", "Retry-After-Ms": "10"})
    server.reply("after retry")
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=1) as cli:
        answer = cli.chat.completions.create(model="m", messages=USER)
    assert answer.choices[0].message.content == "after retry"
    assert len(server.chat_requests()) == 2


def test_scripted_500_surfaces_as_internal_server_error(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.fail(500, times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="m", messages=USER, stream=True)
        assert info.value.status_code == 500
        assert "Simulated error 500" in info.value.message
    assert client.chat.completions.create(model="m", messages=USER).choices


def test_broken_stream_raises_in_the_client_loop(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.break_stream(after_chunks=2, content="one two three four five")
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["one", " two"]
    # The server is still healthy afterwards.
    assert client.chat.completions.create(model="m", messages=USER).choices


def test_break_stream_on_non_streaming_call_drops_the_connection(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.reply("never sent", break_stream_after=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=USER)


def test_delay_triggers_client_timeout(server: FakeLLMServer) -> None:
    server.reply("late", delay=0.5)
    with (
        openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=0.1) as cli,
        pytest.raises(openai.APITimeoutError),
    ):
        cli.chat.completions.create(model="m", messages=USER)


def test_bad_json_body_is_a_400_and_the_server_survives(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    status, headers, answer = raw_request(
        server, "POST", "/v1/chat/completions", b'{"model": "m", "messages": [', {}
    )
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert answer["error"]["type"] == "invalid_request_error"
    assert "parse the JSON body" in answer["error"]["message"]
    assert server.last_request.body == b'{"model": "m", "messages": ['
    assert server.last_request.json is None
    for body in (b"[1, 2]", b"\xff\xfe\x00garbage", b""):
        assert raw_request(server, "POST", "/v1/chat/completions", body)[0] == 400
    assert raw_request(server, "POST", "/v1/embeddings", b'{"input": 42}')[0] == 400
    assert raw_request(server, "POST", "/v1/chat/completions", b'{"model": "m"}')[0] == 400
    assert client.chat.completions.create(model="m", messages=USER).choices


def test_bad_request_does_not_consume_a_scripted_reply(
    server: FakeLLMServer, client: openai.OpenAI
) -> None:
    server.reply("kept")
    assert raw_request(server, "POST", "/v1/chat/completions", b"nope")[0] == 400
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content
    assert server.pending_replies == 0


def test_unknown_path_and_wrong_method(server: FakeLLMServer, client: openai.OpenAI) -> None:
    status, _, answer = raw_request(server, "POST", "/v1/images/generations", b"{}")
    assert status == 404
    assert answer["error"] == {
        "message": "Invalid URL (POST /v1/images/generations)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    status, _, answer = raw_request(server, "GET", "/v1/chat/completions")
    assert status == 405
    with pytest.raises(openai.NotFoundError):
        client.images.generate(prompt="a cat")


def test_missing_or_wrong_key_gets_openais_401(server: FakeLLMServer) -> None:
    body = json.dumps({"model": "m", "messages": USER}).encode()
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/v1/chat/completions", body=body)
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    conn.close()
    assert resp.status == 401
    assert answer["error"]["type"] == "invalid_request_error"
    assert "Authorization" in answer["error"]["message"]
    # An Azure-style api-key header counts as a key.
    assert (
        raw_request(server, "GET", "/v1/models", headers={"Authorization": "", "api-key": "k"})[0]
        == 200
    )
    with (
        FakeLLMServer(api_key="right-key") as strict,
        openai.OpenAI(base_url=strict.base_url, api_key="wrong-key", max_retries=0) as cli,
    ):
        with pytest.raises(openai.AuthenticationError) as info:
            cli.chat.completions.create(model="m", messages=USER)
        assert info.value.code == "invalid_api_key"
        assert "wrong-key" not in str(info.value.body)
        cli.api_key = "right-key"
        assert cli.chat.completions.create(model="m", messages=USER).choices


def test_missing_model_is_a_400_and_unknown_models_a_404_when_listed(
    server: FakeLLMServer,
) -> None:
    status, _, answer = raw_request(
        server, "POST", "/v1/chat/completions", json.dumps({"messages": USER}).encode()
    )
    assert (status, answer["error"]["type"]) == (400, "invalid_request_error")
    assert "model" in answer["error"]["message"]
    status, _, answer = raw_request(
        server, "POST", "/v1/chat/completions", json.dumps({"model": "m"}).encode()
    )
    assert (status, answer["error"]["param"]) == (400, "messages")
    with (
        FakeLLMServer(models=["gpt-4o-mini"]) as listed,
        openai.OpenAI(base_url=listed.base_url, api_key="k", max_retries=0) as cli,
    ):
        assert cli.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
        with pytest.raises(openai.NotFoundError) as info:
            cli.chat.completions.create(model="gpt-5-typo", messages=USER)
        assert info.value.code == "model_not_found"
        assert "gpt-5-typo" in info.value.message


def test_chunked_request_body_is_read(server: FakeLLMServer) -> None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    body = json.dumps({"model": "m", "messages": USER}).encode()
    conn.request("POST", "/v1/chat/completions", body=iter([body[:10], body[10:]]), headers=AUTH)
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    conn.close()
    assert resp.status == 200
    assert answer["choices"][0]["message"]["content"].startswith("Echo: What is")
    assert server.last_request.headers["transfer-encoding"] == "chunked"
    assert server.last_request.body == body


# ------------------------------------------------------------------------- concurrency


def test_concurrent_requests_from_threads(server: FakeLLMServer, client: openai.OpenAI) -> None:
    results: dict[int, str | None] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            stream = i % 2 == 0
            messages: list[ChatCompletionMessageParam] = [
                {"role": "user", "content": f"question {i}"}
            ]
            if stream:
                text = ""
                for c in client.chat.completions.create(model="m", messages=messages, stream=True):
                    if c.choices:
                        text += c.choices[0].delta.content or ""
                results[i] = text
            else:
                answer = client.chat.completions.create(model="m", messages=messages)
                results[i] = answer.choices[0].message.content
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    assert results == {i: f"Echo: question {i}" for i in range(16)}
    assert len(server.chat_requests()) == 16


def test_scripting_is_thread_safe(server: FakeLLMServer, client: openai.OpenAI) -> None:
    def script(i: int) -> None:
        for j in range(10):
            server.reply(f"{i}-{j}")

    threads = [threading.Thread(target=script, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.pending_replies == 40
    seen = {
        client.chat.completions.create(model="m", messages=USER).choices[0].message.content
        for _ in range(40)
    }
    assert seen == {f"{i}-{j}" for i in range(4) for j in range(10)}


# ------------------------------------------------------------------------------ async


async def test_async_chat_and_stream(server: FakeLLMServer, aclient: openai.AsyncOpenAI) -> None:
    server.reply("async hello")
    answer = await aclient.chat.completions.create(model="m", messages=USER)
    assert answer.choices[0].message.content == "async hello"

    server.reply("streamed async answer")
    text = ""
    usage = None
    stream = await aclient.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options=WITH_USAGE
    )
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == "streamed async answer"
    assert usage is not None and usage.completion_tokens == 3


async def test_async_errors(server: FakeLLMServer, aclient: openai.AsyncOpenAI) -> None:
    server.fail(429, headers={"Retry-After": "0"})
    with pytest.raises(openai.RateLimitError):
        await aclient.chat.completions.create(model="m", messages=USER)
    server.break_stream(after_chunks=1)
    stream = await aclient.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            pass


# -------------------------------------------------------------------------- lifecycle


def test_lifecycle_and_urls() -> None:
    server = FakeLLMServer()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.base_url == server.url + "/v1"
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        # An idle keep-alive connection does not keep stop() from finishing.
        with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as cli:
            cli.models.list()
            server.stop()
            assert not server.running
            with pytest.raises(openai.APIConnectionError):
                cli.models.list()
        server.stop()  # idempotent
        server.start()  # restartable
        assert raw_request(server, "GET", "/v1/models")[0] == 200
    finally:
        server.stop()


def test_scripted_reply_validation() -> None:
    with pytest.raises(ValueError, match="status"):
        ScriptedReply(status=99)
    with pytest.raises(ValueError, match="break_stream_after"):
        ScriptedReply(break_stream_after=-1)
    with pytest.raises(ValueError, match="delay"):
        ScriptedReply(delay=-1)
    with pytest.raises(ValueError, match="name"):
        ScriptedReply(tool_calls=[{"arguments": {}}])
    with pytest.raises(TypeError):
        ScriptedReply(tool_calls={"name": "x"})  # type: ignore[arg-type]
    server = FakeLLMServer()
    with pytest.raises(ValueError, match="error status"):
        server.fail(200)
    with pytest.raises(ValueError, match="times"):
        server.fail(500, times=0)
    with pytest.raises(TypeError):
        server.queue("not a reply")  # type: ignore[arg-type]
    reply = ScriptedReply(tool_calls=[WEATHER_CALL], headers={"X-A": "1"})
    assert isinstance(reply.tool_calls, tuple) and reply.headers == {"X-A": "1"}


def test_http10_client_gets_a_close_delimited_stream(server: FakeLLMServer) -> None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps({"model": "m", "messages": USER, "stream": True}).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer k\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, events = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert events.endswith(b"data: [DONE]\n\n")


def test_docstring_examples_run() -> None:
    from truefoundry_tracing.testing import _llm_server, _llm_types, _openai_api

    attempted = 0
    for module in (_llm_server, _llm_types, _openai_api):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 20
