"""The Anthropic Messages and OpenAI Responses stand-ins, read as the wire (the real clients
are exercised in tests/frameworks)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from truefoundry_tracing.testing import FakeAnthropicServer, FakeResponsesServer

# What the real clients send: anthropic.Anthropic(api_key=...) and openai.OpenAI(api_key=...).
ANTHROPIC = {"x-api-key": "test", "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": "Bearer test"}


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


ASK = {"model": "claude-x", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi there"}]}


def test_anthropic_stream_sends_usage_as_the_api_does() -> None:
    with FakeAnthropicServer() as server:
        server.reply("Paris is sunny.", prompt_tokens=9, completion_tokens=4)
        status, text = post(server.url + "/v1/messages", {**ASK, "stream": True}, ANTHROPIC)
    got = events(text)
    assert status == 200
    assert [e["type"] for e in got][:3] == ["message_start", "content_block_start", "ping"]
    assert got[0]["message"]["usage"]["output_tokens"] == 1  # the placeholder
    assert got[-2]["usage"] == {"output_tokens": 4} and got[-1]["type"] == "message_stop"
    deltas = [e["delta"]["text"] for e in got if e["type"] == "content_block_delta"]
    assert "".join(deltas) == "Paris is sunny."


def test_anthropic_tool_use_default_echo_and_errors() -> None:
    with FakeAnthropicServer() as server:
        server.reply(tool_calls=[{"id": "toolu_1", "name": "f", "arguments": {"x": 1}}])
        _, text = post(server.url + "/v1/messages", ASK, ANTHROPIC)
        _, echo = post(server.url + "/v1/messages", ASK, ANTHROPIC)
        server.reply(status=429)
        status, error = post(server.url + "/v1/messages", ASK, ANTHROPIC)
        assert len(server.model_requests()) == 3
    tool = json.loads(text)
    assert tool["stop_reason"] == "tool_use"
    assert tool["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}}
    ]
    assert json.loads(echo)["content"][0]["text"] == "Echo: Hi there"
    assert json.loads(echo)["usage"]["input_tokens"] == 2
    assert (status, json.loads(error)["error"]["type"]) == (429, "rate_limit_error")


@pytest.mark.parametrize("stream", [False, True])
def test_responses_text_function_calls_and_usage(stream: bool) -> None:
    with FakeResponsesServer() as server:
        server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        body = {"model": "gpt-4o-mini", "input": [{"role": "user", "content": "Weather?"}]}
        status, text = post(server.base_url + "/responses", {**body, "stream": stream}, OPENAI)
    assert status == 200
    response = events(text)[-1]["response"] if stream else json.loads(text)
    call = response["output"][0]
    assert (call["type"], call["name"], json.loads(call["arguments"])) == (
        "function_call",
        "get_weather",
        {"city": "Paris"},
    )
    assert response["usage"]["input_tokens"] == 1
    if stream:
        assert events(text)[0]["type"] == "response.created"


NO_VERSION = "anthropic-version: header is required"


def test_anthropic_refuses_what_the_api_refuses_before_using_a_reply() -> None:
    with FakeAnthropicServer(api_key="right-key") as server:
        server.reply("Scripted.")
        url = server.url + "/v1/messages"
        no_key = post(url, ASK, {"anthropic-version": "2023-06-01"})
        wrong = post(url, ASK, {**ANTHROPIC, "x-api-key": "wrong-key"})
        no_version = post(url, ASK, {"x-api-key": "right-key"})
        ok = post(url, ASK, {**ANTHROPIC, "x-api-key": "right-key"})
        oauth = post(url, ASK, {"authorization": "Bearer right-key", "anthropic-version": "1"})
    refused = [(status, json.loads(text)["error"]) for status, text in (no_key, wrong, no_version)]
    assert refused == [
        (401, {"type": "authentication_error", "message": "x-api-key header is required"}),
        (401, {"type": "authentication_error", "message": "invalid x-api-key"}),
        (
            400,
            {"type": "invalid_request_error", "message": "anthropic-version: header is required"},
        ),
    ]
    assert json.loads(ok[1])["content"][0]["text"] == "Scripted."  # the refusals used no reply
    assert oauth[0] == 200


def test_responses_refuses_a_missing_or_wrong_key_as_openai_does() -> None:
    openai = pytest.importorskip("openai")
    body = {"model": "gpt-4o-mini", "input": "Hi"}
    with FakeResponsesServer(api_key="right-key") as server:
        no_key = post(server.base_url + "/responses", body, {})
        azure = post(server.base_url + "/responses", body, {"api-key": "right-key"})
        client = openai.OpenAI(base_url=server.base_url, api_key="wrong-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as refused:
            client.responses.create(model="gpt-4o-mini", input="Hi")
    assert no_key[0] == 401 and "No API key was provided" in no_key[1]
    assert azure[0] == 200
    assert refused.value.code == "invalid_api_key"
