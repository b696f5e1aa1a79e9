"""Secrets never leave the process; the redaction hook reaches every attribute, JSON included.

Canary strings stand in for secrets: each test asserts they appear nowhere a user or a
collector could see them (logs, stdout/stderr, exception messages, reprs, OTLP bodies).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import truefoundry_tracing as tt
from truefoundry_tracing import task, workflow
from truefoundry_tracing._redact import (
    _BUILTIN_TOKENS,
    _HEADER_TOKENS,
    MARKER,
    Redactor,
    _builtin_token,
)
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, OTLPReceiver

CANARY_KEY = "tfy-canary-key-5b8e0c7d9a1f"

BUILTIN_SECRETS = [
    "Bearer abcdefghijklmnop0123",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUv",
    "AKIAABCDEFGHIJKLMNOP",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7",
    "xoxb-1234567890-abcdefghij",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "AIza" + "S" * 35,
]


@pytest.mark.parametrize("secret", BUILTIN_SECRETS)
def test_builtin_patterns_hide_common_key_formats(secret: str) -> None:
    out = Redactor().value("any", f"before {secret} after")
    assert out == f"before {MARKER} after"
    # the marker never carries any part of what it hides
    assert not any(secret[i : i + 6] in out for i in range(len(secret) - 5))


@pytest.mark.parametrize(
    "raw",
    [
        "{'Authorization': 'Bearer tfy-canary-key-5b8e0c7d9a1f', 'X-TFY-METADATA': '{}'}",
        '{"authorization": "tfy-canary-key-5b8e0c7d9a1f", "x-tfy-metadata": "{}"}',
        "{'api-key': 'tfy-canary-key-5b8e0c7d9a1f', 'cookie': 'tfy-canary-key-5b8e0c7d9a1f'}",
    ],
)
def test_header_dicts_lose_their_secret_values_and_keep_the_rest(raw: str) -> None:
    out = Redactor().value("gen_ai.headers", raw)
    assert CANARY_KEY not in out
    assert MARKER in out
    assert out.lower().count("metadata") == raw.lower().count("metadata")


def test_exact_secrets_are_hidden_even_without_a_known_shape() -> None:
    r = Redactor(secrets=["plain-secret-value"])
    assert r.value("k", "x plain-secret-value y") == f"x {MARKER} y"
    assert r.value("k", ("a", "plain-secret-value")) == ("a", MARKER)


def test_the_hook_sees_text_inside_json_as_written() -> None:
    seen: list[tuple[str, Any]] = []

    def hook(key: str, value: Any) -> Any:
        seen.append((key, value))
        return value.replace("4111 1111 1111 1111", "<card>") if isinstance(value, str) else value

    # ensure_ascii JSON, as instrumentations write it: the card sits next to escaped text
    messages = json.dumps([{"role": "user", "content": "pay with 4111 1111 1111 1111 — merci"}])
    out = Redactor(hook=hook).value("gen_ai.input.messages", messages)
    assert json.loads(out) == [{"role": "user", "content": "pay with <card> — merci"}]
    assert ("gen_ai.input.messages", "user") in seen


def test_a_failing_hook_hides_the_value_instead_of_breaking_export() -> None:
    def hook(key: str, value: Any) -> Any:
        raise RuntimeError("bug in user hook")

    r = Redactor(hook=hook)
    assert r.value("k", "text") == MARKER
    assert r.value("k", '{"a": "text"}') == MARKER


def test_hook_returning_none_drops_the_attribute(tfy_spans: CapturedSpans) -> None:
    tt.init(console=False, redact=lambda k, v: None if k == "traceloop.entity.input" else v)

    @task(name="dropper")
    def dropper(x: str) -> str:
        return x

    dropper("hello")
    span = tfy_spans.one("dropper.task")
    assert "traceloop.entity.input" not in span.attributes
    assert "traceloop.entity.output" in span.attributes


def mask_card(key: str, value: Any) -> Any:
    return value.replace("4111-1111", "XXXX") if isinstance(value, str) else value


def test_redact_hook_reaches_llm_messages_before_export(
    receiver: OTLPReceiver, llm: FakeLLMServer
) -> None:
    tt.init("redact", host=receiver.url, api_key=CANARY_KEY, disable_batch=True, redact=mask_card)
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-local-test", max_retries=0)

    @workflow(name="pay")
    def pay() -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "card 4111-1111 please"}],
        )
        return reply.choices[0].message.content or ""

    assert "4111-1111" in pay()  # the app itself sees the real text (FakeLLMServer echoes)
    tt.flush(timeout=5)
    spans = receiver.wait_for_spans(2)
    assert {s.name for s in spans} >= {"pay.workflow", "openai.chat"}
    for request in receiver.requests:
        assert b"4111-1111" not in request.body
        assert CANARY_KEY.encode() not in request.body
    assert any(b"XXXX" in r.body for r in receiver.requests)


def test_redact_false_turns_the_builtin_patterns_off(tfy_spans: CapturedSpans) -> None:
    tt.init(console=False, redact=False)

    @task(name="raw")
    def raw(x: str) -> str:
        return x

    raw(BUILTIN_SECRETS[1])
    assert BUILTIN_SECRETS[1] in str(tfy_spans.one("raw.task").attributes["traceloop.entity.input"])


def test_builtin_patterns_apply_to_decorated_inputs(tfy_spans: CapturedSpans) -> None:
    @task(name="leaky")
    def leaky(token: str) -> str:
        return "ok"

    leaky(BUILTIN_SECRETS[0])
    tfy_spans.assert_absent("abcdefghijklmnop0123")


# --------------------------------------------------------------------------------------------
# a canary key through every configuration path, over a whole run that includes failures
# --------------------------------------------------------------------------------------------

CANARY_RUN = """
import logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
import openai
import truefoundry_tracing as tt
from truefoundry_tracing import task, workflow

KEY = {key!r}
kwargs = {kwargs}
status = tt.init("canary", disable_batch=True, timeout=2, **kwargs)
print(repr(status)); print(status.describe()); print(status.headers)

@task
def step(text):
    return text.upper()

@workflow(name="canary_run")
def run():
    step("hello")
    client = openai.OpenAI(base_url=os.environ["LLM_URL"], api_key="sk-local-test", max_retries=0)
    client.chat.completions.create(
        model="m", messages=[{{"role": "user", "content": "hi"}}],
        extra_headers={{"Authorization": "Bearer " + KEY, "X-Api-Key": KEY}},
    )
    raise ValueError("app error")

try:
    run()
except ValueError as exc:
    print("caught", exc)

# a configuration error made with the key in force
try:
    tt.init("canary", sample_rate=7, **kwargs)
except tt.ConfigError as exc:
    print("config error:", exc)
try:
    tt.init("canary", host="http://collector.example.com", api_key=KEY)
except tt.ConfigError as exc:
    print("config error:", exc)
tt.flush(timeout=3)
print(repr(tt.status()))
tt.shutdown(timeout=3)
"""

PATHS = {
    "argument": ({"host": "RECEIVER", "api_key": "KEY"}, {}),
    "TFY_API_KEY": ({}, {"TFY_HOST": "RECEIVER", "TFY_API_KEY": "KEY"}),
    "TRACELOOP_API_KEY": ({}, {"TRACELOOP_BASE_URL": "RECEIVER", "TRACELOOP_API_KEY": "KEY"}),
    "TRACELOOP_HEADERS": (
        {},
        {"TRACELOOP_BASE_URL": "RECEIVER", "TRACELOOP_HEADERS": "Authorization=Bearer KEY"},
    ),
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("answer", [200, 401])
@pytest.mark.slow
def test_canary_key_never_appears_anywhere(
    receiver: OTLPReceiver, llm: FakeLLMServer, path: str, answer: int
) -> None:
    if answer != 200:
        receiver.respond_with(answer)
    arg_template, env_template = PATHS[path]

    def fill(value: str) -> str:
        return value.replace("RECEIVER", receiver.url).replace("KEY", CANARY_KEY)

    kwargs = {k: fill(v) for k, v in arg_template.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_"))}
    env.update({k: fill(v) for k, v in env_template.items()})
    env["LLM_URL"] = llm.base_url
    with tempfile.TemporaryDirectory() as tmp:
        script = pathlib.Path(tmp, "canary.py")
        script.write_text(textwrap.dedent(CANARY_RUN.format(key=CANARY_KEY, kwargs=kwargs)))
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "caught app error" in proc.stdout
    assert proc.stdout.count("config error:") == 2
    output = proc.stdout + proc.stderr
    assert CANARY_KEY not in output
    assert CANARY_KEY[-4:] in output  # the masked form does show, so a user can tell keys apart
    assert receiver.requests, "nothing was exported"
    # Only the Authorization header carries the key; no body does.
    for request in receiver.requests:
        assert CANARY_KEY.encode() not in request.body
        assert request.headers.get("authorization") == f"Bearer {CANARY_KEY}"
    names = {span.name for r in receiver.requests for span in r.spans}
    assert {"canary_run.workflow", "step.task", "openai.chat"} <= names
    # the LLM call reached the model with its headers intact: redaction is for spans only
    (call,) = llm.requests
    assert call.headers.get("x-api-key") == CANARY_KEY


def test_header_values_with_line_breaks_are_refused_at_configuration() -> None:
    for bad in ("Bearer a\r\nX-Evil: 1", "a\nb"):
        with pytest.raises(tt.ConfigError) as info:
            tt.init(host="http://127.0.0.1:9", headers={"X-Team": bad})
        assert "X-Team" in str(info.value)
        assert bad not in str(info.value)
    with pytest.raises(tt.ConfigError, match="TRACELOOP_HEADERS"):
        from truefoundry_tracing._settings import resolve

        resolve(env={"TRACELOOP_HEADERS": "Authorization=Bearer a%0D%0AX-Evil: 1"}, strict=True)


def test_a_key_over_plain_http_to_a_remote_host_is_refused_unless_allowed() -> None:
    with pytest.raises(tt.ConfigError) as info:
        tt.init(host="http://collector.example.com", api_key=CANARY_KEY)
    message = str(info.value)
    assert "allow_insecure" in message and "TFY_TRACING_ALLOW_INSECURE" in message
    assert CANARY_KEY not in message
    status = tt.init(
        host="http://collector.example.com", api_key=CANARY_KEY, allow_insecure=True, timeout=1
    )
    assert status.traces_url == "http://collector.example.com/api/otel/v1/traces"
    tt.shutdown(timeout=0.5)


# --------------------------------------------------------------------------------------------
# the fast path (token pre-check, clean-value cache) never changes the answer
# --------------------------------------------------------------------------------------------

FAST_SECRET = "tfy-Key-0123456789abcdef"
# Pieces of every built-in pattern, header name and the configured secret, in both cases, so
# generated text often comes close to (or lands on) something that must be redacted.
_PIECES = [
    "Bearer ",
    "bearer\t",
    "sk-",
    "sk-proj-",
    "AKIA",
    "ghp_",
    "gho_",
    "xoxb-",
    "eyJ",
    ".eyJ",
    "AIza",
    "Authorization",
    "x-api-key",
    "api_key",
    "Cookie",
    "access-token",
    "PASSWORD",
    '": "',
    "': '",
    "=",
    "'",
    '"',
    "\\",
    FAST_SECRET,
    FAST_SECRET.upper(),
    "\u212a",  # Kelvin sign: matches "k" when a pattern ignores case
    "\u017f",  # long s: matches "s" when a pattern ignores case
    "\u0130",
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "ABCDEFGHIJKLMNOP",
    " ",
]
_HEADERS = ["authorization", "x-api-key", "apikey", "cookie", "set-cookie", "x-auth-token"]
_HEADERS += ["access_token", "password", "proxy-authorization", "x-tfy-api-key", "api-key"]
_HEADERS += ["secret", "subscription-key", "auth-token", "token"]
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_case = st.sampled_from([str.lower, str.upper, str.title])
header_values = st.builds(
    lambda name, case, q1, sep, q2, value: f"{q1}{case(name)}{q1}{sep}{q2}{value}{q2}",
    st.sampled_from(_HEADERS),
    _case,
    st.sampled_from(["", '"', "'"]),
    st.sampled_from([": ", "=", ":"]),
    st.sampled_from(['"', "'"]),
    st.text(_ALNUM, max_size=10),
)
secret_shapes = st.builds(
    lambda prefix, case, body: case(prefix) + body,
    st.sampled_from(["Bearer ", "sk-", "sk-ant-", "AKIA", "ghp_", "ghs_", "ghr_", "xoxp-"]),
    _case,
    st.text(_ALNUM, min_size=8, max_size=40),
)
texts = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(max_size=12), header_values, secret_shapes),
    max_size=10,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_fast_path_agrees_with_the_full_scan(text: str) -> None:
    redactor = Redactor(secrets=[FAST_SECRET])
    assert redactor._text(text) == redactor._scrub(text)
    assert redactor._text(text) == redactor._scrub(text)  # again, now maybe from the cache


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdefgh12345678",
        '{"api_key": "hunter2-hunter2"}',
        "sk-proj-abcdefghijklmnop1234",
        "AKIAABCDEFGHIJKLMNOP",
        "ghp_" + "a" * 36,
        "ghs_" + "b" * 36,
        "xoxb-1234567890-abc",
        "eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.abcdefghijkl",
        "AIza" + "B" * 35,
        f"the key is {FAST_SECRET}",
    ],
)
def test_each_kind_of_secret_is_still_redacted(text: str) -> None:
    redactor = Redactor(secrets=[FAST_SECRET])
    for _ in range(2):  # the second time the clean-value cache is warm
        assert MARKER in redactor.value("attr", text)


def test_clean_values_stay_identical_objects() -> None:
    redactor = Redactor(secrets=[FAST_SECRET])
    text = '{"args": [1, "plain words"], "kwargs": {}}'
    assert redactor.value("traceloop.entity.input", text) is text
    assert redactor.attributes({"k": text, "n": 3}, drop_content=False) is None


def test_the_clean_cache_stays_bounded() -> None:
    redactor = Redactor()
    for i in range(5000):
        redactor.value("k", f"value {i} \u00e9")  # non-ASCII: goes through the full scan
    assert len(redactor._clean) <= 1024


@pytest.mark.parametrize(
    "text", ['{"secret": "hunter22"}', "{'Subscription-Key': 'abcdef'}", 'x-auth-token="abc"']
)
def test_every_header_name_of_the_pattern_passes_the_screen(text: str) -> None:
    redactor = Redactor()
    assert redactor.value("k", text) == redactor._scrub(text) != text
    assert redactor.attributes({"k": text}, drop_content=False) == {"k": redactor._scrub(text)}


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("abceghijkloprstuxyz_-. AKIBXZ"), max_size=40))
def test_the_grouped_token_test_matches_testing_each_token(text: str) -> None:
    lowered = text.lower()
    assert _builtin_token(lowered) == any(t in lowered for t in _BUILTIN_TOKENS + _HEADER_TOKENS)


attribute_values = st.one_of(
    texts,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.one_of(texts, st.integers()), max_size=3).map(tuple),
    st.lists(texts, max_size=2),  # not what OpenTelemetry stores, but it must not slip through
)


def _value_by_value(redactor: Redactor, attrs: dict[str, Any]) -> dict[str, Any]:
    """What redaction makes of each value on its own, through the full scan."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str):
            value = redactor._scrub(value)
        elif isinstance(value, (tuple, list)):
            value = tuple(redactor._scrub(v) if isinstance(v, str) else v for v in value)
        out[key] = value
    return out


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), attribute_values, max_size=5))
def test_a_span_screened_at_once_is_redacted_as_value_by_value(attrs: dict[str, Any]) -> None:
    redactor = Redactor(secrets=[FAST_SECRET])
    expected = _value_by_value(redactor, attrs)
    for _ in range(2):  # the second time the clean-value cache is warm
        out = redactor.attributes(attrs, drop_content=False)
        assert (attrs if out is None else out) == expected
        if out is None:
            assert redactor.all_clean(attrs.values()) or expected == attrs


def test_a_value_of_a_str_subclass_is_still_screened() -> None:
    class Text(str):
        pass

    redactor = Redactor()
    out = redactor.attributes(
        {"a": "task", "k": Text("Bearer abcdefghijklmnop")}, drop_content=False
    )
    assert out == {"a": "task", "k": MARKER}
