"""Gateway helpers: the X-TFY-* headers, metadata scopes, and the gateway OpenAI clients.

The clients are real ``openai`` clients talking to the local ``FakeLLMServer``, which records
every request; what is asserted is the exact header the gateway would get, and the spans the
app's trace shows (captured in memory, or decoded from real OTLP bytes by ``OTLPReceiver``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import truefoundry_tracing as tt
from truefoundry_tracing import gateway
from truefoundry_tracing._gateway import (
    MAX_VALUE_LENGTH,
    SPAN_ATTRIBUTE_PREFIX,
    record_on_span_start,
)
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, OTLPReceiver

TRACELOOP_VERSION = importlib.metadata.version("traceloop-sdk")
# 0.38.12's openai instrumentation does not make its span current while the request is sent.
OLD_LINE = tuple(int(p) for p in TRACELOOP_VERSION.split(".")[:2]) < (0, 40)
HEADERS_ATTR = "llm.headers" if OLD_LINE else "gen_ai.headers"
KEY = "tfy-gateway-key-Rt5Lm9Qe2"
MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]
MODEL = "openai-main/gpt-4o-mini"


def metadata_of(request: Any) -> dict[str, str]:
    raw = request.headers.get("x-tfy-metadata")
    assert raw is not None, f"no X-TFY-METADATA in {sorted(request.headers)}"
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


def gw_attrs(span: Any) -> dict[str, str]:
    return {
        k[len(SPAN_ATTRIBUTE_PREFIX) :]: v
        for k, v in span.attributes.items()
        if k.startswith(SPAN_ATTRIBUTE_PREFIX)
    }


@pytest.fixture
def traced(tfy_spans: CapturedSpans) -> CapturedSpans:
    """Tracing on, with the OpenAI instrumentation; spans captured in memory."""
    tt.init(app_name="gateway-test", console=False, instruments=["openai"])
    return tfy_spans


@pytest.fixture
def client(llm: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with gateway.openai_client(llm.base_url, api_key=KEY, max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(llm: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with gateway.async_openai_client(llm.base_url, api_key=KEY, max_retries=0) as c:
        yield c


# --------------------------------------------------------------------------------------------
# gateway_headers and parse_metadata
# --------------------------------------------------------------------------------------------


def test_headers_are_compact_json_with_string_values() -> None:
    assert tt.gateway_headers({"customer_id": "c-1", "feature": "search"}) == {
        "X-TFY-METADATA": '{"customer_id":"c-1","feature":"search"}'
    }


@pytest.mark.parametrize(("flag", "value"), [(True, "true"), (False, "false")])
def test_log_request_sets_the_legacy_key_and_wins(flag: bool, value: str) -> None:
    headers = tt.gateway_headers({"tfy_log_request": "maybe", "a": "b"}, log_request=flag)
    assert json.loads(headers["X-TFY-METADATA"]) == {"tfy_log_request": value, "a": "b"}
    assert tt.gateway_headers(log_request=flag) == {
        "X-TFY-METADATA": f'{{"tfy_log_request":"{value}"}}'
    }


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (True, {"enabled": True}),
        (False, {"enabled": False}),
        ("t:tracing-project:p", {"enabled": True, "tracing_project_fqn": "t:tracing-project:p"}),
        (
            {"enabled": True, "tracing_project_fqn": "t:tracing-project:p"},
            {"enabled": True, "tracing_project_fqn": "t:tracing-project:p"},
        ),
    ],
)
def test_logging_config_header(config: Any, expected: dict[str, Any]) -> None:
    headers = tt.gateway_headers(logging_config=config)
    assert list(headers) == ["X-TFY-LOGGING-CONFIG"]
    assert json.loads(headers["X-TFY-LOGGING-CONFIG"]) == expected


def test_nothing_asked_means_no_headers() -> None:
    assert tt.gateway_headers() == {}
    assert tt.gateway_headers({}) == {}


def test_non_ascii_is_escaped_so_the_header_is_ascii() -> None:
    value = tt.gateway_headers({"city": "Zürich ☃"})["X-TFY-METADATA"]
    assert value.isascii()
    assert tt.parse_metadata(value) == {"city": "Zürich ☃"}


def test_a_value_of_exactly_128_characters_is_accepted() -> None:
    assert tt.parse_metadata(tt.gateway_headers({"k": "x" * 128})["X-TFY-METADATA"]) == {
        "k": "x" * 128
    }


BAD_METADATA = [
    pytest.param({"plan": 3}, "'plan'", "type int", id="int-value"),
    pytest.param({"log": True}, "'log'", '"true"', id="bool-value"),
    pytest.param({"user": None}, "'user'", "NoneType", id="none-value"),
    pytest.param({"note": "x" * 129}, "'note'", "129 characters", id="129-chars"),
    pytest.param({"query": "line one\nline two"}, "'query'", "control character", id="newline"),
    pytest.param({"q": "a\x00b"}, "'q'", "control character", id="nul"),
    pytest.param({"bad\tkey": "v"}, "'bad\\tkey'", "control character", id="tab-in-key"),
    pytest.param({"": "v"}, "empty key", "empty key", id="empty-key"),
    pytest.param({1: "v"}, "(1)", "keys must be strings", id="int-key"),
    pytest.param(["customer_id", "c-1"], "dict", "not list", id="list"),
    pytest.param("customer_id=c-1", "dict", "not str", id="string"),
]


@pytest.mark.parametrize(("metadata", "names", "says"), BAD_METADATA)
def test_invalid_metadata_raises_value_error_naming_the_key(
    metadata: Any, names: str, says: str
) -> None:
    with pytest.raises(ValueError) as info:
        tt.gateway_headers(metadata)
    assert isinstance(info.value, tt.ConfigError)
    assert names in str(info.value)
    assert says in str(info.value)
    # The scope checks the same way.
    with pytest.raises(ValueError, match="gateway_metadata"), tt.gateway_metadata(metadata):
        pass


def test_error_messages_never_echo_the_value() -> None:
    with pytest.raises(ValueError) as info:
        tt.gateway_headers({"note": "secret-ish-" + "x" * 200})
    assert "secret-ish" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"log_request": "true"}, "log_request must be True or False"),
        ({"logging_config": 1}, "got int"),
        ({"logging_config": ""}, "tracing project FQN"),
        ({"logging_config": {"tracing_project_fqn": "t:p:x"}}, "'enabled' key"),
        ({"logging_config": {"enabled": True, "tracing_project_fqn": 3}}, "tracing_project_fqn"),
        ({"logging_config": {"enabled": True, "extra": object()}}, "cannot be written as JSON"),
    ],
)
def test_invalid_switches_raise(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(tt.ConfigError, match=says):
        tt.gateway_headers(**kwargs)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('{"a": 1}', "'a' has a value of type int"),
        ('["a"]', "not list"),
        ("null", "not NoneType"),
        ('{"a": "b"', "not valid JSON"),
        ("", "not valid JSON"),
        ('{"a": "b", "a": "c"}', "'a' twice"),
        ('{"a": {"b": "c"}}', "'a' has a value of type dict"),
        ('{"a": "\\ud800"}', "invalid Unicode"),
        ('{"a": "x\\ny"}', "control character"),
        (b"\xff\xfe", "not valid UTF-8"),
        ("[" * 100_000, "too deeply nested"),
        (42, "must be given as a string"),
    ],
)
def test_parse_metadata_rejects(value: Any, says: str) -> None:
    with pytest.raises(tt.ConfigError, match=says):
        tt.parse_metadata(value)


def test_parse_metadata_accepts_bytes_and_spaces() -> None:
    assert tt.parse_metadata(b' { "a" : "b" } ') == {"a": "b"}


# Property tests: the parser and validator raise ValueError or return valid metadata; nothing
# else ever escapes, and what gateway_headers writes parses back to the same dict.

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=140),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _valid(result: dict[str, str]) -> None:
    for key, value in result.items():
        assert isinstance(key, str) and key
        assert isinstance(value, str) and len(value) <= MAX_VALUE_LENGTH


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary())
def test_property_parse_arbitrary_input(raw: str | bytes) -> None:
    try:
        result = tt.parse_metadata(raw)
    except ValueError:
        return
    _valid(result)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_property_parse_arbitrary_json(value: Any) -> None:
    try:
        text = json.dumps(value)
    except ValueError:
        return
    try:
        result = tt.parse_metadata(text)
    except ValueError:
        return
    _valid(result)
    assert result == value


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.text(max_size=MAX_VALUE_LENGTH + 2)))
def test_property_headers_round_trip(metadata: dict[str, str]) -> None:
    try:
        headers = tt.gateway_headers(metadata)
    except ValueError:
        assert any(
            not k or len(v) > MAX_VALUE_LENGTH or not (k + v).isprintable()
            for k, v in metadata.items()
        )
        return
    if metadata:
        assert headers["X-TFY-METADATA"].isascii()
        assert tt.parse_metadata(headers["X-TFY-METADATA"]) == metadata


# --------------------------------------------------------------------------------------------
# the gateway client: exact headers, scopes, threads, asyncio tasks
# --------------------------------------------------------------------------------------------


def test_sync_call_carries_scoped_metadata_and_the_trace_id(
    traced: CapturedSpans, client: openai.OpenAI, llm: FakeLLMServer
) -> None:
    @tt.workflow(name="answer")
    def answer() -> None:
        with tt.gateway_metadata(customer_id="c-1", feature="search"):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)

    answer()
    request = llm.last_request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    root = traced.one("answer.workflow")
    llm_span = traced.one("openai.chat")
    assert llm_span.trace_id == root.trace_id
    assert request.headers["x-tfy-metadata"] == json.dumps(
        {"tfy_trace_id": root.trace_id, "customer_id": "c-1", "feature": "search"},
        separators=(",", ":"),
    )
    # What the gateway was told is on the app's trace: the scope on the span current when it
    # opened and on the LLM span on every line. Where the instrumentation makes its span current
    # while the request is sent, the span also gets the trace id the request carried.
    scoped = {"customer_id": "c-1", "feature": "search"}
    assert gw_attrs(root) == scoped
    assert gw_attrs(llm_span) == (scoped if OLD_LINE else metadata_of(request))


def test_sync_stream_carries_the_metadata(
    traced: CapturedSpans, client: openai.OpenAI, llm: FakeLLMServer
) -> None:
    llm.reply("streamed answer")
    with tt.gateway_metadata(customer_id="c-9"):
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "streamed answer"
    span = traced.one("openai.chat")
    traced.assert_stream_complete(span)
    assert metadata_of(llm.last_request) == {"tfy_trace_id": span.trace_id, "customer_id": "c-9"}


async def test_async_calls_streaming_and_not(
    traced: CapturedSpans, aclient: openai.AsyncOpenAI, llm: FakeLLMServer
) -> None:
    @tt.workflow(name="async_answer")
    async def answer() -> None:
        with tt.gateway_metadata(customer_id="c-2"):
            await aclient.chat.completions.create(model=MODEL, messages=MESSAGES)
            stream = await aclient.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True
            )
            async for _ in stream:
                pass

    await answer()
    root = traced.one("async_answer.workflow")
    assert [metadata_of(r) for r in llm.chat_requests()] == [
        {"tfy_trace_id": root.trace_id, "customer_id": "c-2"}
    ] * 2
    assert len(traced.by_name("openai.chat")) == 2
    assert {s.trace_id for s in traced} == {root.trace_id}
    assert llm.last_request.headers["x-stainless-async"].startswith("async")


def test_llm_spans_started_in_a_scope_carry_it_on_every_line(
    traced: CapturedSpans, llm: FakeLLMServer
) -> None:
    with gateway.openai_client(llm.base_url, api_key=KEY, trace_id=False, max_retries=0) as c:

        @tt.task(name="prepare")
        def prepare() -> None:
            # A span that is not an LLM call, even a client one, is left alone.
            tracer = trace.get_tracer("test")
            tracer.start_span("vector-db.query", kind=trace.SpanKind.CLIENT).end()

        @tt.workflow(name="scoped")
        def scoped() -> None:
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "0"}])
            with tt.gateway_metadata(customer_id="c-1", feature="search"):
                prepare()
                c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "1"}])
                with tt.gateway_metadata({"feature": "rerank"}):
                    stream = c.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": "2"}], stream=True
                    )
                    for _ in stream:
                        pass
                    c.embeddings.create(model="embed", input="3")
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "4"}])

        scoped()
    chats = traced.by_name("openai.chat")
    assert [r.json["messages"][0]["content"] for r in llm.chat_requests()] == [
        "0",
        "1",
        "2",
        "4",
    ]
    assert [gw_attrs(s) for s in sorted(chats, key=lambda s: s.start_ns)] == [
        {},
        {"customer_id": "c-1", "feature": "search"},
        {"customer_id": "c-1", "feature": "rerank"},
        {},
    ]
    assert gw_attrs(traced.one("openai.embeddings")) == {"customer_id": "c-1", "feature": "rerank"}
    assert gw_attrs(traced.one("prepare.task")) == {}
    assert gw_attrs(traced.one("vector-db.query")) == {}
    assert gw_attrs(traced.one("scoped.workflow")) == {"customer_id": "c-1", "feature": "rerank"}


async def test_async_llm_spans_carry_the_scope_of_their_task(
    traced: CapturedSpans, llm: FakeLLMServer
) -> None:
    async with gateway.async_openai_client(llm.base_url, api_key=KEY, trace_id=False) as client:

        async def call(tag: str) -> None:
            with tt.gateway_metadata(worker=tag):
                await asyncio.sleep(0.01)
                await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": tag}]
                )

        with tt.gateway_metadata(customer_id="c-4"):
            await asyncio.gather(*(call(f"a{i}") for i in range(4)))
    spans = traced.by_name("openai.chat")
    assert len(spans) == 4
    assert sorted(gw_attrs(s)["worker"] for s in spans) == ["a0", "a1", "a2", "a3"]
    assert {gw_attrs(s)["customer_id"] for s in spans} == {"c-4"}


def test_a_plain_openai_client_span_is_tagged_too(
    traced: CapturedSpans, openai_client: openai.OpenAI, llm: FakeLLMServer
) -> None:
    # The scope tags the calls made inside it; only the gateway clients also send the header.
    with tt.gateway_metadata(customer_id="c-6"):
        openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert gw_attrs(traced.one("openai.chat")) == {"customer_id": "c-6"}
    assert "x-tfy-metadata" not in llm.last_request.headers


def test_outside_a_scope_a_span_start_costs_one_lookup() -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"span.{name} was read outside a gateway_metadata block")

    record_on_span_start(Untouchable(), {})
    record_on_span_start(Untouchable(), {"workflow_name": "w"})


def test_nested_scopes_merge_inner_wins_and_unwind(
    traced: CapturedSpans, client: openai.OpenAI, llm: FakeLLMServer
) -> None:
    def call() -> dict[str, str]:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        md = metadata_of(llm.last_request)
        md.pop("tfy_trace_id")
        return md

    with tt.gateway_metadata(customer_id="c-1", feature="search") as outer:
        assert outer == {"customer_id": "c-1", "feature": "search"}
        assert call() == outer
        with tt.gateway_metadata({"feature": "rerank", "step-name": "2"}) as inner:
            assert inner == {"customer_id": "c-1", "feature": "rerank", "step-name": "2"}
            assert call() == inner
        assert call() == outer
    assert call() == {}


def test_precedence_trace_id_then_client_then_scope_then_call(
    traced: CapturedSpans, llm: FakeLLMServer
) -> None:
    with (
        gateway.openai_client(
            llm.base_url,
            api_key=KEY,
            metadata={"app": "bot", "team": "search", "tfy_trace_id": "from-client"},
            max_retries=0,
        ) as client,
        tt.gateway_metadata(team="ranking", customer_id="c-1"),
    ):
        client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            extra_headers=tt.gateway_headers({"customer_id": "c-7"}, log_request=True),
        )
    assert metadata_of(llm.last_request) == {
        "tfy_trace_id": "from-client",
        "app": "bot",
        "team": "ranking",
        "customer_id": "c-7",
        "tfy_log_request": "true",
    }


def test_threads_and_pools_started_inside_the_scope(
    traced: CapturedSpans, client: openai.OpenAI, llm: FakeLLMServer
) -> None:
    def call(tag: str) -> None:
        with tt.gateway_metadata(worker=tag):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": tag}])

    with tt.gateway_metadata(customer_id="c-3"):
        threads = [threading.Thread(target=call, args=(f"t{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(call, ["p0", "p1", "p2"]))
    seen = {r.json["messages"][0]["content"]: metadata_of(r) for r in llm.chat_requests()}
    assert set(seen) == {"t0", "t1", "t2", "p0", "p1", "p2"}
    for tag, md in seen.items():
        assert {k: v for k, v in md.items() if k != "tfy_trace_id"} == {
            "customer_id": "c-3",
            "worker": tag,
        }
    # A thread started outside the block does not see it.
    thread = threading.Thread(target=lambda: client.models.list())
    thread.start()
    thread.join()
    assert "x-tfy-metadata" not in llm.last_request.headers


async def test_asyncio_tasks_keep_their_own_scopes(
    traced: CapturedSpans, aclient: openai.AsyncOpenAI, llm: FakeLLMServer
) -> None:
    async def call(tag: str) -> None:
        with tt.gateway_metadata(worker=tag):
            await asyncio.sleep(0.01)  # let the tasks interleave inside their scopes
            await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": tag}]
            )

    with tt.gateway_metadata(customer_id="c-4"):
        await asyncio.gather(*(asyncio.create_task(call(f"a{i}")) for i in range(5)))
    seen = {r.json["messages"][0]["content"]: metadata_of(r) for r in llm.chat_requests()}
    assert len(seen) == 5
    for tag, md in seen.items():
        assert md["customer_id"] == "c-4" and md["worker"] == tag


@pytest.mark.slow
def test_threads_without_init(llm: FakeLLMServer) -> None:
    """A fresh process that never calls init(): the scope still reaches new threads."""
    script = textwrap.dedent(
        f"""
        import threading
        import truefoundry_tracing as tt
        from truefoundry_tracing import gateway

        client = gateway.openai_client({llm.base_url!r}, api_key="k" * 20, max_retries=0)
        with tt.gateway_metadata(customer_id="c-5"):
            t = threading.Thread(
                target=lambda: client.chat.completions.create(
                    model="m", messages=[{{"role": "user", "content": "hi"}}]
                )
            )
            t.start()
            t.join()
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_"))}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert metadata_of(llm.last_request) == {"customer_id": "c-5"}  # no trace: no trace id


def test_trace_id_can_be_switched_off(traced: CapturedSpans, llm: FakeLLMServer) -> None:
    with gateway.openai_client(llm.base_url, api_key=KEY, trace_id=False) as client:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert "x-tfy-metadata" not in llm.last_request.headers
        with tt.gateway_metadata(a="b"):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert metadata_of(llm.last_request) == {"a": "b"}
    assert len(traced.by_name("openai.chat")) == 2


def test_no_trace_id_for_a_trace_that_is_not_recorded(
    llm: FakeLLMServer, client: openai.OpenAI
) -> None:
    tt.init(app_name="gateway-test", console=False, instruments=["openai"], sample_rate=0.0)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert "x-tfy-metadata" not in llm.last_request.headers


def test_logging_config_and_fixed_metadata_on_every_request(
    traced: CapturedSpans, llm: FakeLLMServer
) -> None:
    with gateway.openai_client(
        llm.base_url,
        api_key=KEY,
        metadata={"app": "bot"},
        logging_config="t:tracing-project:p",
        default_headers={"X-Team": "search"},
        trace_id=False,
    ) as client:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    for request in llm.requests:
        assert request.headers["x-tfy-logging-config"] == (
            '{"enabled":true,"tracing_project_fqn":"t:tracing-project:p"}'
        )
        assert request.headers["x-tfy-metadata"] == '{"app":"bot"}'
        assert request.headers["x-team"] == "search"
    assert [r.path for r in llm.requests] == ["/v1/chat/completions", "/v1/embeddings"]


def test_an_invalid_header_of_the_call_is_sent_unchanged_and_logged_once(
    traced: CapturedSpans,
    client: openai.OpenAI,
    llm: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    for _ in range(2):
        with tt.gateway_metadata(a="b"):
            client.chat.completions.create(
                model=MODEL, messages=MESSAGES, extra_headers={"X-TFY-METADATA": '{"n": 1}'}
            )
    assert llm.last_request.headers["x-tfy-metadata"] == '{"n": 1}'
    notes = [r.getMessage() for r in caplog.records if "X-TFY-METADATA" in r.getMessage()]
    assert len(notes) == 1 and "'n' has a value of type int" in notes[0]


@pytest.mark.parametrize(
    "metadata",
    [{"user": 42}, {"note": "x" * 129}, {"q": "a\nb"}, ["a"]],
    ids=["int", "129-chars", "newline", "list"],
)
def test_invalid_metadata_sends_nothing(
    traced: CapturedSpans, client: openai.OpenAI, llm: FakeLLMServer, metadata: Any
) -> None:
    with pytest.raises(ValueError), tt.gateway_metadata(metadata):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(ValueError):
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers=tt.gateway_headers(metadata)
        )
    with pytest.raises(ValueError):
        gateway.openai_client(llm.base_url, api_key=KEY, metadata=metadata)
    assert llm.requests == []
    assert len(traced) == 0


def test_http_client_for_other_sdks(traced: CapturedSpans, llm: FakeLLMServer) -> None:
    with (
        openai.OpenAI(
            base_url=llm.base_url,
            api_key=KEY,
            http_client=gateway.http_client(metadata={"sdk": "plain"}),
            max_retries=0,
        ) as client,
        tt.gateway_metadata(customer_id="c-6"),
    ):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    span = traced.one("openai.chat")
    assert metadata_of(llm.last_request) == {
        "tfy_trace_id": span.trace_id,
        "sdk": "plain",
        "customer_id": "c-6",
    }


async def test_async_http_client_keeps_the_callers_hooks(
    traced: CapturedSpans, llm: FakeLLMServer
) -> None:
    seen: list[str] = []

    async def mine(request: httpx.Request) -> None:
        seen.append(request.url.path)

    http = httpx.AsyncClient(event_hooks={"request": [mine]})
    async with gateway.async_openai_client(
        llm.base_url, api_key=KEY, http_client=http, trace_id=False
    ) as client:
        with tt.gateway_metadata(a="b"):
            await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert seen == ["/v1/chat/completions"]
    assert metadata_of(llm.last_request) == {"a": "b"}
    async with gateway.async_http_client(metadata={"x": "y"}, trace_id=False) as http2:
        await http2.get(llm.base_url + "/models")
    assert metadata_of(llm.last_request) == {"x": "y"}


# --------------------------------------------------------------------------------------------
# secrets in extra_headers never reach an exported span; the metadata stays readable
# --------------------------------------------------------------------------------------------

CANARIES = {
    "Authorization": "Bearer canary-auth-Zq81Lm",
    "api-key": "canary-apikey-Wp27Xc",
    "X-Api-Key": "canary-xapikey-Hb63Ny",
    "Cookie": "session=canary-cookie-Ks40Fd",
    "Proxy-Authorization": "Basic canary-proxy-Tu55Je",
    "X-Client-Secret": "canary-secret-Gd19Qa",
    "Private-Token": "canary-private-Mc72Rv",
    "Ocp-Apim-Subscription-Key": "canary-azure-Yf38Pw",
}


def test_secrets_in_extra_headers_never_leave_the_process(
    receiver: OTLPReceiver, llm: FakeLLMServer
) -> None:
    tt.init(
        app_name="gateway-secrets",
        host=receiver.url,
        api_key=KEY,
        disable_batch=True,
        console=False,
        instruments=["openai"],
    )
    with gateway.openai_client(llm.base_url, api_key=KEY, max_retries=0) as client:

        @tt.workflow(name="leaky")
        def leaky() -> None:
            with tt.gateway_metadata(customer_id="c-8"):
                client.chat.completions.create(
                    model=MODEL,
                    messages=MESSAGES,
                    extra_headers={
                        **CANARIES,
                        **tt.gateway_headers({"feature": "search", "token_budget": "5"}),
                    },
                )
                stream = client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True, extra_headers=dict(CANARIES)
                )
                for _ in stream:
                    pass

        leaky()
    assert tt.flush(timeout=5)
    spans = receiver.wait_for_spans(3)
    # The calls really carried the secrets to the server; none of them left in a span.
    assert llm.chat_requests()[0].headers["api-key"] == CANARIES["api-key"]
    for request in receiver.requests:
        for secret in (*CANARIES.values(), KEY):
            token = secret.split()[-1].split("=")[-1]
            assert token.encode() not in request.body
    llm_spans = [s for s in spans if s.name == "openai.chat"]
    assert len(llm_spans) == 2
    headers = llm_spans[0].attributes[HEADERS_ATTR]
    assert "[REDACTED]" in headers
    assert '\'X-TFY-METADATA\': \'{"feature":"search","token_budget":"5"}\'' in headers  # readable
    assert headers.count("[REDACTED]") == len(CANARIES)
    root = next(s for s in spans if s.name == "leaky.workflow")
    assert gw_attrs(root) == {"customer_id": "c-8"}
    # The LLM spans, decoded from the OTLP request, carry the scope on every line.
    assert [gw_attrs(s)["customer_id"] for s in llm_spans] == ["c-8", "c-8"]


# --------------------------------------------------------------------------------------------
# where the gateway is, and with which key
# --------------------------------------------------------------------------------------------


def test_url_and_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFY_HOST", "https://tfy.example.com/")
    monkeypatch.setenv("TFY_API_KEY", KEY)
    with gateway.openai_client() as client:
        assert str(client.base_url) == "https://tfy.example.com/api/llm/"
        assert client.api_key == KEY
    monkeypatch.setenv("TFY_GATEWAY_URL", "https://gateway.example.ai/openai/")
    with gateway.openai_client() as client:
        assert str(client.base_url) == "https://gateway.example.ai/openai/"
    with gateway.openai_client("https://arg.example.com/api/llm", api_key="other-key") as c:
        assert str(c.base_url) == "https://arg.example.com/api/llm/"
        assert c.api_key == "other-key"


def test_url_and_key_from_init_arguments() -> None:
    tt.init(host="https://init.example.com", api_key=KEY, console=False, instruments=["openai"])
    with gateway.openai_client() as client:
        assert str(client.base_url) == "https://init.example.com/api/llm/"
        assert client.api_key == KEY


def test_traceloop_variables_of_the_seed_work_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELOOP_BASE_URL", "https://seed.example.com/api/otel")
    monkeypatch.setenv("TRACELOOP_HEADERS", f"Authorization=Bearer {KEY}")
    with gateway.openai_client() as client:
        assert str(client.base_url) == "https://seed.example.com/api/llm/"
        assert client.api_key == KEY


@pytest.mark.parametrize(
    ("env", "kwargs", "says"),
    [
        ({}, {}, "the gateway's URL is not set"),
        ({"TFY_HOST": "https://tfy.example.com"}, {}, "no API key for the gateway"),
        ({"TFY_GATEWAY_URL": "gateway.example.com"}, {"api_key": KEY}, "TFY_GATEWAY_URL"),
        ({}, {"base_url": "http://gateway.example.com/api/llm", "api_key": KEY}, "plain http"),
        ({}, {"base_url": "https://g.example.com", "api_key": "a\nb"}, "line break"),
    ],
)
def test_configuration_errors_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any], says: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for factory in (gateway.openai_client, gateway.async_openai_client):
        with pytest.raises(tt.ConfigError, match=says) as info:
            factory(**kwargs)
        assert KEY not in str(info.value)


def test_insecure_gateway_allowed_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFY_TRACING_ALLOW_INSECURE", "true")
    with gateway.openai_client("http://gateway.internal/api/llm", api_key=KEY) as client:
        assert client.base_url.host == "gateway.internal"


def test_missing_openai_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # makes "import openai" fail
    for factory in (gateway.openai_client, gateway.async_openai_client):
        with pytest.raises(tt.MissingDependencyError) as info:
            factory("https://g.example.com", api_key=KEY)
        assert "pip install 'truefoundry-tracing[openai]'" in str(info.value)
    with gateway.http_client() as http:  # falls back to plain httpx
        assert type(http) is httpx.Client
