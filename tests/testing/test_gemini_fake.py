"""The Gemini API stand-in, read as the wire (the real google-genai client is exercised in
tests/frameworks/test_google_genai.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from truefoundry_tracing.testing import FakeGeminiServer

ASK = {"contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}]}
MODEL = "/v1beta/models/gemini-2.5-flash"


KEY = {"x-goog-api-key": "test"}  # what google.genai.Client(api_key=...) sends


def post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    headers = KEY if headers is None else headers
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers["content-type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["content-type"], err.read().decode()


def test_a_stream_is_sse_chunks_with_running_usage_on_each_and_the_counts_on_the_last() -> None:
    with FakeGeminiServer() as server:
        server.reply("Paris is the capital.", prompt_tokens=4, completion_tokens=5)
        status, kind, text = post(server.url + MODEL + ":streamGenerateContent?alt=sse", ASK)
        assert server.model_requests()[0].query == "alt=sse"
    assert (status, kind) == (200, "text/event-stream")
    assert text.endswith("\r\n\r\n") and "event:" not in text
    chunks = [json.loads(line[6:]) for line in text.split("\r\n\r\n") if line]
    assert len(chunks) == 4  # one word each
    pieces = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks]
    assert "".join(pieces) == "Paris is the capital."
    assert all(c["candidates"][0]["content"]["role"] == "model" for c in chunks)
    assert chunks[0]["usageMetadata"] == {
        "promptTokenCount": 4,
        "candidatesTokenCount": 1,
        "totalTokenCount": 5,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
    }
    # Running totals (as gemini-2.5 streams them): adding the chunks' counts over-counts.
    running = [c["usageMetadata"]["candidatesTokenCount"] for c in chunks]
    assert running == [1, 2, 3, 5] and sum(running) > 5
    assert "finishReason" not in chunks[0]["candidates"][0]
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["candidatesTokenCount"] == 5
    assert last["usageMetadata"]["totalTokenCount"] == 9
    assert {c["responseId"] for c in chunks} == {last["responseId"]}
    assert last["modelVersion"] == "gemini-2.5-flash"


def test_function_calls_default_echo_and_errors() -> None:
    with FakeGeminiServer() as server:
        server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        _, _, call = post(server.url + MODEL + ":generateContent", ASK)
        _, _, echo = post(server.url + MODEL + ":generateContent", ASK)
        server.reply(status=429)
        status, _, error = post(server.url + MODEL + ":generateContent", ASK)
        missing, _, _ = post(server.url + MODEL + ":countTokens", ASK)
        assert len(server.model_requests()) == 3
    answer = json.loads(call)["candidates"][0]
    assert answer["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    ]
    assert answer["finishReason"] == "STOP"  # as the API answers a function call
    echoed = json.loads(echo)
    assert echoed["candidates"][0]["content"]["parts"][0]["text"] == "Echo: Capital of France?"
    assert echoed["usageMetadata"]["promptTokenCount"] == 3
    assert (status, json.loads(error)["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert missing == 404


def test_a_request_without_a_valid_key_is_refused_as_the_api_does() -> None:
    with FakeGeminiServer(api_key="right-key") as server:
        server.reply("Scripted.")
        url = server.url + MODEL + ":generateContent"
        no_key = post(url, ASK, {})
        wrong = post(url, ASK, {"x-goog-api-key": "wrong-key"})
        in_query = post(url + "?key=right-key", ASK, {})
    assert no_key[0] == 403
    assert json.loads(no_key[2])["error"]["status"] == "PERMISSION_DENIED"
    assert "unregistered callers" in json.loads(no_key[2])["error"]["message"]
    assert wrong[0] == 400
    assert json.loads(wrong[2])["error"] == {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
    }
    answer = json.loads(in_query[2])  # the refusals used no scripted reply
    assert answer["candidates"][0]["content"]["parts"] == [{"text": "Scripted."}]


def test_embeddings_answer_one_vector_per_request_and_use_no_scripted_reply() -> None:
    from truefoundry_tracing.testing._llm_server import fake_embedding

    url = "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    one = {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}}
    body = {"requests": [one, {**one, "outputDimensionality": 3}]}
    with FakeGeminiServer() as server:
        server.reply("kept for the next model call")
        status, _, text = post(server.url + url, body)
        assert server.model_requests() == []  # an embedding is not a generate call
        assert json.loads(post(server.url + MODEL + ":generateContent", ASK)[2])["candidates"][0][
            "content"
        ]["parts"] == [{"text": "kept for the next model call"}]
        refused = post(server.url + url, body, headers={})
        empty = post(server.url + url, {"requests": []})
        no_content = post(server.url + url, {"requests": [{"model": one["model"]}]})
    assert status == 200
    assert json.loads(text) == {
        "embeddings": [{"values": fake_embedding("hello")}, {"values": fake_embedding("hello", 3)}]
    }
    assert refused[0] == 403 and json.loads(refused[2])["error"]["status"] == "PERMISSION_DENIED"
    assert empty[0] == no_content[0] == 400
    assert json.loads(no_content[2])["error"]["status"] == "INVALID_ARGUMENT"
