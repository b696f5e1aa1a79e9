"""Property tests: configuration parsers and the collector-answer classifier on hostile input.

The parsers (``_config``) may only ever raise ``ConfigError`` (a ``ValueError``), never echo
the API key, and whatever they accept must be well formed. A bad variable raises only in strict
mode; otherwise it is set aside as a ``Problem`` naming it, and ``resolve()`` never raises.
The classifier (``_transport``) must never raise at all, whatever status and headers a
collector or proxy sends back.
``tests/test_settings.py`` already fuzzes four variables, the host and rate arguments and
TRACELOOP_HEADERS through ``resolve()``; this file covers the rest.
"""

from __future__ import annotations

import math
import socket
import ssl
import urllib.parse
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from truefoundry_tracing import ConfigError
from truefoundry_tracing._config import OPTIONS, Settings, parse_traceloop_headers, resolve
from truefoundry_tracing._instruments import KNOWN, check_names
from truefoundry_tracing._transport import (
    MAX_RETRY_AFTER,
    RETRYABLE_STATUS,
    Hints,
    classify_exception,
    classify_status,
)

KEY = "tfy-canary-key-Fz3Kd9Wq7"
URL = "https://tfy.example.com/api/otel/v1/traces"
HINTS = Hints(url=URL)
TOKEN_CHARS = "!#$%&'*+.^_`|~-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
CODES = {
    "accepted",
    "invalid_request",
    "dns",
    "refused",
    "timeout",
    "tls",
    "reset",
    "unauthorized",
    "forbidden",
    "not_found",
    "too_large",
    "rate_limited",
    "server_error",
    "http_error",
    "error",
}

bounded = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

text = st.text(max_size=40)
fragments = st.sampled_from(
    [
        "https://",
        "http://",
        "HTTP://",
        "ftp://",
        "//",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "[",
        "]",
        "@",
        "user:pw@",
        "acme.example.com",
        ".",
        "..",
        ":",
        ":4318",
        ":99999",
        ":-1",
        "/api/otel",
        "/v1/traces",
        "/",
        "?q=1",
        "#frag",
        "%",
        "%20",
        "%0D%0A",
        "%00",
        "\t",
        " ",
        "\n",
        "=",
        ",",
        ";",
        '"',
        "'",
        "Authorization",
        "Bearer ",
        "TFY-Tracing-Project",
        "…",
        "日本",
        "\u200b",
    ]
)
url_like = st.lists(st.one_of(fragments, text), max_size=7).map("".join)
with_key = st.lists(st.one_of(fragments, text, st.just(KEY)), max_size=7).map("".join)
ENV_VARS = sorted({var for option in OPTIONS for var in option.env})
# Only these carry the key; a key pasted into another variable is echoed like any other value.
KEY_VARS = {"TFY_API_KEY", "TRACELOOP_API_KEY", "TRACELOOP_HEADERS"}


def check_settings(s: Settings) -> None:
    """What every accepted configuration satisfies."""
    assert KEY not in repr(s)
    assert 0.0 <= s.sample_rate <= 1.0
    assert 0.0 < s.timeout <= 600.0
    url = s.traces_url
    if url is not None:
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.hostname, url
        assert not any(ch.isspace() for ch in url), url
        assert url.endswith("/v1/traces"), url
    for name, value in s.export_headers().items():
        assert name and not any(ch in name for ch in "\r\n\x00:"), name
        assert not any(ch in value for ch in "\r\n\x00"), name
    assert isinstance(s.app_name, str) and s.app_name.strip()


def resolve_env(env: dict[str, str]) -> Settings:
    """Strict mode raises only ConfigError without the key; without it, nothing raises."""
    try:
        resolve(env=env, strict=True)
    except ConfigError as exc:
        assert KEY not in str(exc)
    s = resolve(env=env)
    for problem in s.errors:
        assert problem.source in env, problem  # names the variable that was set aside
        assert KEY not in problem.message and KEY not in problem.fix
        assert problem.message.endswith(".")
    return s


# --------------------------------------------------------------------------------------------
# _config
# --------------------------------------------------------------------------------------------


@bounded
@given(raw=with_key)
@example(raw="Authorization=Bearer%20" + KEY + "%0D%0AX-Injected=1")
@example(raw=KEY + ":" + KEY + "=" + KEY)
def test_traceloop_headers_parser_accepts_only_well_formed_headers(raw: str) -> None:
    try:
        headers = parse_traceloop_headers(raw)
    except ConfigError as exc:
        assert KEY not in str(exc)
        return
    for name, value in headers.items():
        assert name and all(ch in TOKEN_CHARS for ch in name), name
        assert not any(ch in value for ch in "\r\n\x00")


header_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123-", min_size=1
)
# Values HTTP can carry: Latin-1 (anything else is refused, tested separately).
header_values = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=30).filter(
    lambda v: v == v.strip().strip("\"'").strip() and not any(c in v for c in "\r\n\x00")
)


@bounded
@given(headers=st.dictionaries(header_names, header_values, max_size=5), spaced=st.booleans())
def test_traceloop_headers_round_trip_percent_encoded_values(
    headers: dict[str, str], spaced: bool
) -> None:
    raw = (", " if spaced else ",").join(
        f"{name}={urllib.parse.quote(value, safe='')}" for name, value in headers.items()
    )
    assert parse_traceloop_headers(raw) == headers


@bounded
@given(
    values=st.fixed_dictionaries(
        {}, optional={v: with_key if v in KEY_VARS else url_like for v in ENV_VARS}
    )
)
@example(values={"TFY_TRACING_TIMEOUT": "1e-320", "TFY_TRACING_SAMPLE_RATE": "-0.0"})
@example(values={"TFY_TRACING_TIMEOUT": "inf", "TFY_TRACING_SAMPLE_RATE": "nan"})
@example(values={"TRACELOOP_HEADERS": f"Authorization=Bearer {KEY}\u2028"})
def test_every_variable_at_once_raises_only_config_error(values: dict[str, str]) -> None:
    check_settings(resolve_env({"TFY_API_KEY": KEY, **values}))


BOOLEAN_VARS = sorted(
    var
    for option in OPTIONS
    if option.name in {"disable_batch", "trace_content", "console", "enabled", "allow_insecure"}
    for var in option.env
)


@bounded
@given(
    var=st.sampled_from(BOOLEAN_VARS),
    raw=st.one_of(text, st.sampled_from(["TRUE", " on ", "0", "No"])),
)
def test_boolean_variables_are_booleans_or_a_config_error(var: str, raw: str) -> None:
    s = resolve_env({var: raw})
    option = next(o for o in OPTIONS if var in o.env)
    value = getattr(s, option.name)
    assert isinstance(value, bool)
    if s.errors:
        assert var in s.errors[0].message
        # The default (console's is computed), until the variable is fixed.
        assert value is option.value or option.value is None
    if raw.strip():
        assert s.sources[option.name] == var


@bounded
@given(which=st.sampled_from(["host", "endpoint"]), raw=url_like)
@example(which="host", raw="https://acme.example.com/api/otel/v1/traces/")
@example(which="endpoint", raw="http://[::1]:4318")
def test_accepted_urls_are_well_formed_and_normalizing_them_again_changes_nothing(
    which: str, raw: str
) -> None:
    try:
        s = resolve(env={}, **{which: raw})
    except ConfigError:
        return
    check_settings(s)
    again = resolve(env={}, **{which: getattr(s, which)})
    assert getattr(again, which) == getattr(s, which)
    assert again.traces_url == s.traces_url


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    text,
    st.binary(max_size=8),
    st.complex_numbers(max_magnitude=2),
    st.lists(st.integers(), max_size=2),
)


@bounded
@given(rate=numbers, timeout=numbers)
@example(rate=float("nan"), timeout=float("nan"))
@example(rate=Decimal("NaN"), timeout=Decimal("-0"))
@example(rate=Fraction(1, 3), timeout=b"2.5")
def test_rates_and_timeouts_of_any_type_are_validated(rate: Any, timeout: Any) -> None:
    for option, value in (("sample_rate", rate), ("timeout", timeout)):
        try:
            s = resolve(env={}, **{option: value})
        except ConfigError as exc:
            assert option in str(exc)
            continue
        check_settings(s)
        assert math.isfinite(getattr(s, option))


names = st.one_of(st.sampled_from(sorted(KNOWN)), text, st.sampled_from(["OpenAI", " openai ", ""]))
instrument_values = st.one_of(
    names,
    st.lists(st.one_of(names, st.none(), st.integers(), st.lists(names, max_size=1)), max_size=4),
    st.integers(),
    st.dictionaries(names, names, max_size=2),
)


@bounded
@given(value=instrument_values, from_env=st.booleans())
def test_instrument_lists_yield_known_names_or_a_config_error(value: Any, from_env: bool) -> None:
    try:
        if from_env:
            items = value if isinstance(value, list) else [value]
            raw = ",".join(map(str, items))
            s = resolve_env({"TFY_TRACING_INSTRUMENTS": raw})
        else:
            s = resolve(instruments=value, env={})
        if s.instruments is not None:
            assert all(isinstance(n, str) and n == n.strip().lower() and n for n in s.instruments)
            assert set(check_names(s.instruments)) <= set(KNOWN)
    except ConfigError:
        pass


UNSENDABLE = [
    pytest.param({"api_key": "tfy-key-\u2026abcd1234"}, id="api-key-with-ellipsis"),
    pytest.param({"tracing_project": "tenant:tracing-project:caf\u00e9-\u65e5"}, id="project-cjk"),
    pytest.param({"headers": {"X-Team": "\u65e5\u672c"}}, id="header-value-cjk"),
    pytest.param({"headers": {"X-Team\r\nX-Injected": "1"}}, id="header-name-with-crlf"),
    pytest.param({"host": "https://.example.com"}, id="host-empty-label"),
    pytest.param({"host": "https://exa%mple.com"}, id="host-percent"),
]


@pytest.mark.parametrize("kwargs", UNSENDABLE)
def test_whatever_resolve_accepts_can_be_sent(kwargs: dict[str, Any]) -> None:
    args = {"host": "https://tfy.example.com", "api_key": KEY, **kwargs}
    try:
        s = resolve(env={}, **args)
    except ConfigError as exc:
        assert KEY not in str(exc)
        return
    assert s.traces_url is not None
    request = requests.Request("POST", s.traces_url, headers=s.export_headers()).prepare()
    for value in request.headers.values():
        assert isinstance(value, bytes) or value.encode("latin-1")


# --------------------------------------------------------------------------------------------
# _transport
# --------------------------------------------------------------------------------------------

retry_after_values = st.one_of(
    text,
    with_key,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(
        [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 9999 07:28:00 GMT",
            "Mon, 99 Foo 2015 99:99:99 GMT",
            "Sun, 06 Nov 1994 08:49:37 +9999",
            "Thu, 01 Jan 1970 00:00:00 -0000",
            "1e999",
            "-0",
            "0x10",
            "\u0661\u0662",  # Arabic-Indic digits: float() reads them
        ]
    ),
)
header_maps = st.dictionaries(
    st.one_of(
        st.sampled_from(["Retry-After", "retry-after", "RETRY-AFTER", "WWW-Authenticate"]), text
    ),
    st.one_of(retry_after_values, st.just(f"Bearer {KEY}")),
    max_size=4,
)


@bounded
@given(
    status=st.one_of(st.sampled_from(sorted(RETRYABLE_STATUS)), st.integers(-(2**31), 2**31)),
    headers=header_maps,
)
@example(status=429, headers={"Retry-After": "nan"})
@example(status=429, headers={"Retry-After": "Wed, 31 Feb 2015 07:28:00 GMT"})
@example(status=503, headers={"retry-after": "Wed, 21 Oct 9999 07:28:00 GMT"})
def test_classify_status_never_raises_and_bounds_retry_after(
    status: int, headers: dict[str, str]
) -> None:
    verdict = classify_status(status, headers, HINTS)
    assert verdict.code in CODES and verdict.status == status
    assert verdict.ok == (200 <= status < 300)
    assert verdict.retryable == (status in RETRYABLE_STATUS)
    if verdict.retry_after is not None:
        assert verdict.retryable
        assert 0.0 <= verdict.retry_after <= MAX_RETRY_AFTER
    assert URL in verdict.message and KEY not in verdict.message
    assert verdict.message.rstrip().endswith(".")


def _unicode_error(message: str) -> BaseException:
    return UnicodeEncodeError("latin-1", message or "x", 0, 1, "ordinal not in range(256)")


exception_types = st.sampled_from(
    [
        OSError,
        ConnectionError,
        ConnectionResetError,
        ConnectionRefusedError,
        BrokenPipeError,
        TimeoutError,
        socket.timeout,
        socket.gaierror,
        ssl.SSLError,
        ssl.SSLCertVerificationError,
        ValueError,
        RuntimeError,
        KeyError,
        requests.exceptions.ConnectionError,
        requests.exceptions.SSLError,
        requests.exceptions.ReadTimeout,
        requests.exceptions.InvalidHeader,
        requests.exceptions.InvalidURL,
        _unicode_error,
    ]
)


@bounded
@given(outer=exception_types, inner=st.one_of(st.none(), exception_types), message=with_key)
def test_classify_exception_never_raises_nor_echoes_the_error_text(
    outer: Any, inner: Any, message: str
) -> None:
    exc: BaseException = outer(message)
    if inner is not None:
        exc.__cause__ = inner(message)
    verdict = classify_exception(exc, HINTS)
    assert verdict.code in CODES - {"accepted"}
    assert not verdict.ok and verdict.status is None
    assert URL in verdict.message
    assert KEY not in verdict.message
    assert verdict.retryable == (verdict.code not in {"invalid_request", "tls"})
