"""The redactor's fast path (token pre-check, clean-value cache) never changes its answer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truefoundry_tracing._redact import MARKER, Redactor

SECRET = "tfy-Key-0123456789abcdef"
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
    SECRET,
    SECRET.upper(),
    "\u212a",  # Kelvin sign: matches "k" when a pattern ignores case
    "\u017f",  # long s: matches "s" when a pattern ignores case
    "\u0130",
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "ABCDEFGHIJKLMNOP",
    " ",
]
_HEADERS = ["authorization", "x-api-key", "apikey", "cookie", "set-cookie", "x-auth-token"]
_HEADERS += ["access_token", "password", "proxy-authorization", "x-tfy-api-key", "api-key"]
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
    redactor = Redactor(secrets=[SECRET])
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
        f"the key is {SECRET}",
    ],
)
def test_each_kind_of_secret_is_still_redacted(text: str) -> None:
    redactor = Redactor(secrets=[SECRET])
    for _ in range(2):  # the second time the clean-value cache is warm
        assert MARKER in redactor.value("attr", text)


def test_clean_values_stay_identical_objects() -> None:
    redactor = Redactor(secrets=[SECRET])
    text = '{"args": [1, "plain words"], "kwargs": {}}'
    assert redactor.value("traceloop.entity.input", text) is text
    assert redactor.attributes({"k": text, "n": 3}, drop_content=False) is None


def test_the_clean_cache_stays_bounded() -> None:
    redactor = Redactor()
    for i in range(5000):
        redactor.value("k", f"value {i} \u00e9")  # non-ASCII: goes through the full scan
    assert len(redactor._clean) <= 1024
