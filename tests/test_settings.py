"""The settings resolver: every option from argument, environment and default, with ``sources``.

``resolve()`` is pure (it reads the ``env`` mapping it is given), so these tests are fast and
need no network. Precedence: argument > ``TFY_*`` > ``TRACELOOP_*`` > default; an empty or
blank variable counts as unset. ``ConfigError`` messages name the setting and never carry the
API key.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from truefoundry_tracing import ConfigError
from truefoundry_tracing._config import (
    OPTIONS,
    Settings,
    mask_secret,
    parse_traceloop_headers,
    resolve,
)

KEY = "tfy-canary-key-7Q2xV9mZ"  # no character the built-in parsers treat specially
PROJECT = "tenant:tracing-project:demo"


def _resolve(env: dict[str, str] | None = None, **kwargs: Any) -> Settings:
    return resolve(env=env or {}, **kwargs)


def _config_error(env: dict[str, str], **kwargs: Any) -> ConfigError:
    """The error a bad variable raises in strict mode; without it, the same words are logged."""
    with pytest.raises(ConfigError) as info:
        _resolve(dict(env), strict=True, **kwargs)
    lenient = _resolve(dict(env), **kwargs)  # never raises for a variable
    assert [str(info.value) in p.message for p in lenient.errors] == [True]
    assert "Until" in lenient.errors[0].message
    return info.value


# --------------------------------------------------------------------------------------------
# every option: argument vs each environment variable vs default
# --------------------------------------------------------------------------------------------

# option -> (argument, expected from argument, [(variable, raw value, expected)], default)
# Each variable has a distinct raw value, so "which source won" is visible in the value too.
TABLE: dict[str, tuple[Any, Any, list[tuple[str, str, Any]], Any]] = {
    "app_name": (
        "  arg-app ",
        "arg-app",
        [("TFY_TRACING_APP", "tfy-app", "tfy-app"), ("OTEL_SERVICE_NAME", "otel-app", "otel-app")],
        "python-app",
    ),
    "host": (
        "https://arg.example.com/",
        "https://arg.example.com",
        [
            ("TFY_HOST", "https://tfy.example.com", "https://tfy.example.com"),
            ("TFY_BASE_URL", "https://base.example.com/", "https://base.example.com"),
            ("TRACELOOP_BASE_URL", "https://tl.example.com/api/otel", "https://tl.example.com"),
        ],
        None,
    ),
    "api_key": (
        "arg-key-0123456789",
        "arg-key-0123456789",
        [
            ("TFY_API_KEY", "tfy-key-0123456789", "tfy-key-0123456789"),
            ("TRACELOOP_API_KEY", "tl-key-0123456789", "tl-key-0123456789"),
            (
                "TRACELOOP_HEADERS",
                "Authorization=Bearer%20hdr-key-0123456789",
                "hdr-key-0123456789",
            ),
        ],
        None,
    ),
    "tracing_project": (
        "t:tracing-project:arg",
        "t:tracing-project:arg",
        [
            ("TFY_TRACING_PROJECT", "t:tracing-project:tfy", "t:tracing-project:tfy"),
            (
                "TRACELOOP_HEADERS",
                "TFY-Tracing-Project=t:tracing-project:tl",
                "t:tracing-project:tl",
            ),
        ],
        None,
    ),
    "endpoint": (
        "https://arg.example.com:4318",
        "https://arg.example.com:4318/v1/traces",
        [
            (
                "TFY_TRACING_ENDPOINT",
                "https://ep.example.com:4318/",
                "https://ep.example.com:4318/v1/traces",
            ),
            (
                "TRACELOOP_BASE_URL",
                "https://tl.example.com:4318",
                "https://tl.example.com:4318/v1/traces",
            ),
        ],
        None,
    ),
    "headers": (
        {"X-Extra": "arg"},
        {"X-Extra": "arg"},
        [("TRACELOOP_HEADERS", "X-Extra=env", {"X-Extra": "env"})],
        {},
    ),
    "disable_batch": (True, True, [("TFY_TRACING_DISABLE_BATCH", "yes", True)], False),
    "trace_content": (
        False,
        False,
        [("TFY_TRACING_TRACE_CONTENT", "0", False), ("TRACELOOP_TRACE_CONTENT", "false", False)],
        True,
    ),
    "sample_rate": (0.25, 0.25, [("TFY_TRACING_SAMPLE_RATE", "0.5", 0.5)], 1.0),
    "console": (False, False, [("TFY_TRACING_CONSOLE", "off", False)], True),
    "instruments": (
        ["OpenAI", " anthropic "],
        ("openai", "anthropic"),
        [("TFY_TRACING_INSTRUMENTS", "openai, langchain", ("openai", "langchain"))],
        None,
    ),
    "enabled": (False, False, [("TFY_TRACING_ENABLED", "FALSE", False)], True),
    "allow_insecure": (True, True, [("TFY_TRACING_ALLOW_INSECURE", "on", True)], False),
    "timeout": (2.5, 2.5, [("TFY_TRACING_TIMEOUT", "3", 3.0)], 5.0),
    "handle_sigterm": (False, False, [("TFY_TRACING_HANDLE_SIGTERM", "off", False)], True),
    "strict": (True, True, [("TFY_TRACING_STRICT", "yes", True)], False),
}

ENV_CASES = [
    pytest.param(option, var, raw, expected, id=f"{option}-{var}")
    for option, (_, _, envs, _) in TABLE.items()
    for var, raw, expected in envs
]


def test_table_covers_every_option_and_its_variables() -> None:
    """The table above is the documented one: same options, same variables, same order."""
    documented = {opt.name: opt.env for opt in OPTIONS if opt.env}
    assert {name: tuple(v for v, _, _ in TABLE[name][2]) for name in TABLE} == documented


@pytest.mark.parametrize("option", list(TABLE))
def test_default(option: str) -> None:
    s = _resolve()
    if option == "app_name":  # the script's name; under a test runner, a generic one
        assert isinstance(s.app_name, str) and s.app_name.strip()
    else:
        assert getattr(s, option) == TABLE[option][3]
    assert s.sources[option] == "default"


def test_default_destination_is_console_and_nothing_is_sent() -> None:
    s = _resolve()
    assert s.destination == "console"
    assert s.traces_url is None
    assert s.export_headers() == {}
    assert s.exporter is None and s.redact is None and dict(s.resource_attributes) == {}
    assert {s.sources[k] for k in ("exporter", "redact", "resource_attributes")} == {"default"}
    assert s.warnings == ()


@pytest.mark.parametrize("option", list(TABLE))
def test_argument(option: str) -> None:
    arg, expected, _, _ = TABLE[option]
    s = _resolve(**{option: arg})
    assert getattr(s, option) == expected
    assert s.sources[option] == "argument"


@pytest.mark.parametrize(("option", "var", "raw", "expected"), ENV_CASES)
def test_each_variable_alone(option: str, var: str, raw: str, expected: Any) -> None:
    s = _resolve({var: raw})
    assert getattr(s, option) == expected
    assert s.sources[option] == var


@pytest.mark.parametrize(("option", "var", "raw", "expected"), ENV_CASES)
def test_argument_beats_each_variable(option: str, var: str, raw: str, expected: Any) -> None:
    arg, from_arg, _, _ = TABLE[option]
    s = _resolve({var: raw}, **{option: arg})
    if option == "headers":  # extra headers merge; the argument wins for the same name
        assert s.headers == from_arg
    else:
        assert getattr(s, option) == from_arg
    assert s.sources[option] == "argument"


@pytest.mark.parametrize("option", [o for o in TABLE if len(TABLE[o][2]) > 1])
def test_first_variable_wins_when_all_are_set(option: str) -> None:
    envs = TABLE[option][2]
    s = _resolve({var: raw for var, raw, _ in envs})
    var, _, expected = envs[0]
    assert getattr(s, option) == expected
    assert s.sources[option] == var


@pytest.mark.parametrize(("option", "var", "raw", "expected"), ENV_CASES)
@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_variable_counts_as_unset(
    option: str, var: str, raw: str, expected: Any, blank: str
) -> None:
    s = _resolve({var: blank})
    assert s.sources[option] == "default"
    assert getattr(s, option) == getattr(_resolve(), option)


def test_empty_tfy_variable_falls_through_to_traceloop() -> None:
    s = _resolve(
        {"TFY_HOST": "", "TFY_API_KEY": " ", "TRACELOOP_BASE_URL": "https://a.io/api/otel"}
    )
    assert (s.host, s.sources["host"]) == ("https://a.io", "TRACELOOP_BASE_URL")
    assert s.sources["api_key"] == "default"


def test_reads_os_environ_when_no_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFY_HOST", "https://env.example.com")
    monkeypatch.setenv("TFY_API_KEY", KEY)
    s = resolve()
    assert s.traces_url == "https://env.example.com/api/otel/v1/traces"
    assert (s.sources["host"], s.sources["api_key"]) == ("TFY_HOST", "TFY_API_KEY")


@pytest.mark.slow
def test_default_app_name_is_the_script_name(tmp_path: Any) -> None:
    script = tmp_path / "support_bot.py"
    script.write_text(
        "from truefoundry_tracing._config import resolve\nprint(resolve(env={}).app_name)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "support_bot"


# --------------------------------------------------------------------------------------------
# precedence across the TFY_* and TRACELOOP_* families
# --------------------------------------------------------------------------------------------


def test_tfy_beats_traceloop_for_every_shared_option() -> None:
    s = _resolve(
        {
            "TFY_HOST": "https://tfy.example.com",
            "TRACELOOP_BASE_URL": "https://tl.example.com/api/otel",
            "TFY_API_KEY": "tfy-key-0123456789",
            "TRACELOOP_API_KEY": "tl-key-0123456789",
            "TFY_TRACING_PROJECT": "t:tracing-project:tfy",
            "TRACELOOP_HEADERS": "Authorization=Bearer hdr-key-0123456789,"
            "TFY-Tracing-Project=t:tracing-project:tl",
            "TFY_TRACING_TRACE_CONTENT": "true",
            "TRACELOOP_TRACE_CONTENT": "false",
        }
    )
    assert s.traces_url == "https://tfy.example.com/api/otel/v1/traces"
    assert s.api_key == "tfy-key-0123456789"
    assert s.tracing_project == "t:tracing-project:tfy"
    assert s.trace_content is True
    assert s.sources["trace_content"] == "TFY_TRACING_TRACE_CONTENT"


def test_arguments_beat_everything() -> None:
    env = {
        "TFY_HOST": "https://tfy.example.com",
        "TRACELOOP_BASE_URL": "https://tl.example.com:4318",
        "TFY_API_KEY": "tfy-key-0123456789",
        "TRACELOOP_HEADERS": "Authorization=Bearer hdr-key-0123456789",
    }
    s = _resolve(env, host="https://arg.example.com", api_key=KEY, tracing_project=PROJECT)
    assert s.traces_url == "https://arg.example.com/api/otel/v1/traces"
    assert s.endpoint is None  # TRACELOOP_BASE_URL as an endpoint must not beat host=
    assert s.export_headers() == {"Authorization": f"Bearer {KEY}", "TFY-Tracing-Project": PROJECT}
    assert s.warnings == ()


def test_traceloop_api_key_beats_the_key_in_traceloop_headers() -> None:
    s = _resolve(
        {
            "TRACELOOP_API_KEY": "tl-key-0123456789",
            "TRACELOOP_HEADERS": "Authorization=Bearer hdr-key-0123456789",
        }
    )
    assert (s.api_key, s.sources["api_key"]) == ("tl-key-0123456789", "TRACELOOP_API_KEY")


# --------------------------------------------------------------------------------------------
# host and endpoint
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "https://acme.truefoundry.cloud",
        "https://acme.truefoundry.cloud/",
        "https://acme.truefoundry.cloud///",
        "https://acme.truefoundry.cloud/api/otel",
        "https://acme.truefoundry.cloud/api/otel/",
        "https://acme.truefoundry.cloud/api/otel/v1/traces",
        "https://acme.truefoundry.cloud/api/otel/v1/traces/",
        "  https://acme.truefoundry.cloud/  ",
    ],
)
def test_host_is_normalized(raw: str) -> None:
    for s in (_resolve(host=raw), _resolve({"TFY_HOST": raw})):
        assert s.host == "https://acme.truefoundry.cloud"
        assert s.traces_url == "https://acme.truefoundry.cloud/api/otel/v1/traces"
        assert s.destination == "truefoundry"
        assert s.console is False


def test_host_keeps_a_path_prefix() -> None:
    s = _resolve(host="https://acme.example.com/tfy/")
    assert s.traces_url == "https://acme.example.com/tfy/api/otel/v1/traces"


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("http://localhost:4318", "http://localhost:4318/v1/traces"),
        ("http://localhost:4318/", "http://localhost:4318/v1/traces"),
        ("http://localhost:4318/v1/traces", "http://localhost:4318/v1/traces"),
        ("http://localhost:4318/v1/traces/", "http://localhost:4318/v1/traces"),
        ("https://otel.example.com/custom/base", "https://otel.example.com/custom/base/v1/traces"),
    ],
)
def test_endpoint_appends_v1_traces_unless_present(raw: str, url: str) -> None:
    for s in (_resolve(endpoint=raw), _resolve({"TFY_TRACING_ENDPOINT": raw})):
        assert s.endpoint == url
        assert s.traces_url == url
        assert s.destination == "otlp"


def test_endpoint_wins_over_host() -> None:
    s = _resolve(host="https://acme.example.com", endpoint="https://collector.example.com")
    assert s.traces_url == "https://collector.example.com/v1/traces"
    assert s.destination == "otlp"
    s = _resolve(
        {"TFY_HOST": "https://acme.example.com", "TFY_TRACING_ENDPOINT": "http://[::1]:4318"}
    )
    assert s.traces_url == "http://[::1]:4318/v1/traces"


def test_exporter_wins_over_everything() -> None:
    class Exporter:
        def export(self, spans: Any) -> None: ...
        def shutdown(self) -> None: ...

    exporter = Exporter()
    s = _resolve(
        host="https://acme.example.com", endpoint="https://c.example.com", exporter=exporter
    )
    assert s.destination == "exporter"
    assert s.traces_url is None
    assert s.exporter is exporter
    assert s.sources["exporter"] == "argument"
    with pytest.raises(ConfigError, match="exporter must be an OpenTelemetry SpanExporter"):
        _resolve(exporter=object())


@pytest.mark.parametrize(
    "raw", ["https://acme.example.com/api/otel", "https://acme.example.com/api/otel/"]
)
def test_traceloop_base_url_ending_in_api_otel_is_a_host(raw: str) -> None:
    s = _resolve({"TRACELOOP_BASE_URL": raw})
    assert (s.host, s.endpoint) == ("https://acme.example.com", None)
    assert s.sources["host"] == "TRACELOOP_BASE_URL"
    assert s.sources["endpoint"] == "default"
    assert s.traces_url == "https://acme.example.com/api/otel/v1/traces"  # no '//v1'


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("http://localhost:4318", "http://localhost:4318/v1/traces"),
        ("https://otel.example.com/", "https://otel.example.com/v1/traces"),
        ("https://otel.example.com/v1/traces", "https://otel.example.com/v1/traces"),
    ],
)
def test_other_traceloop_base_url_is_an_endpoint(raw: str, url: str) -> None:
    s = _resolve({"TRACELOOP_BASE_URL": raw})
    assert (s.host, s.endpoint) == (None, url)
    assert s.sources["endpoint"] == "TRACELOOP_BASE_URL"
    assert s.sources["host"] == "default"
    assert s.destination == "otlp"


# --------------------------------------------------------------------------------------------
# TRACELOOP_HEADERS
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        f"Authorization=Bearer%20{KEY}",
        f"Authorization=Bearer {KEY}",
        f'"Authorization=Bearer {KEY}',
        f'"Authorization=Bearer%20{KEY}"',
        f"'Authorization=Bearer {KEY}'",
        f"authorization=bearer {KEY}",
        f" Authorization = Bearer%20{KEY} ",
    ],
)
def test_traceloop_headers_key_spellings(raw: str) -> None:
    s = _resolve({"TRACELOOP_HEADERS": raw})
    assert s.api_key == KEY
    assert s.sources["api_key"] == "TRACELOOP_HEADERS"
    assert s.export_headers() == {"Authorization": f"Bearer {KEY}"}
    assert s.headers == {}  # the key is not sent twice


@pytest.mark.parametrize(
    "raw",
    [
        f"Authorization=Bearer%20{KEY},TFY-Tracing-Project={PROJECT}",
        f'"Authorization=Bearer {KEY}, TFY-Tracing-Project={PROJECT}"',
        f"tfy-tracing-project={PROJECT},Authorization=Bearer {KEY},",
    ],
)
def test_traceloop_headers_with_project(raw: str) -> None:
    s = _resolve({"TRACELOOP_HEADERS": raw})
    assert (s.api_key, s.tracing_project) == (KEY, PROJECT)
    assert s.sources["tracing_project"] == "TRACELOOP_HEADERS"
    assert s.export_headers() == {"Authorization": f"Bearer {KEY}", "TFY-Tracing-Project": PROJECT}


def test_traceloop_headers_extra_headers_are_kept() -> None:
    s = _resolve(
        {"TRACELOOP_HEADERS": f"Authorization=Bearer {KEY},X-Team=search%20team,X-Env=prod"}
    )
    assert s.headers == {"X-Team": "search team", "X-Env": "prod"}
    assert s.sources["headers"] == "TRACELOOP_HEADERS"
    assert s.export_headers()["X-Team"] == "search team"
    assert s.export_headers()["Authorization"] == f"Bearer {KEY}"


def test_traceloop_headers_non_bearer_authorization_is_passed_through() -> None:
    s = _resolve({"TRACELOOP_HEADERS": "Authorization=Basic dXNlcjpwdw=="})
    assert s.api_key is None
    assert s.export_headers() == {"Authorization": "Basic dXNlcjpwdw=="}


def test_parse_traceloop_headers_directly() -> None:
    assert parse_traceloop_headers(f'"Authorization=Bearer%20{KEY}, TFY-Tracing-Project=a:b:c') == {
        "Authorization": f"Bearer {KEY}",
        "TFY-Tracing-Project": "a:b:c",
    }
    assert parse_traceloop_headers(" , ,") == {}


@pytest.mark.parametrize("raw", [f"Bearer {KEY}", f"Authorization=Bearer {KEY},novalue"])
def test_traceloop_headers_entry_without_equals(raw: str) -> None:
    err = _config_error({"TRACELOOP_HEADERS": raw})
    assert "TRACELOOP_HEADERS" in str(err)
    assert KEY not in str(err)
    s = _resolve({"TRACELOOP_HEADERS": raw})
    assert s.api_key is None and s.export_headers() == {}
    assert KEY not in repr(s.errors)


def test_traceloop_api_key() -> None:
    s = _resolve({"TRACELOOP_API_KEY": KEY, "TFY_HOST": "https://acme.example.com"})
    assert s.export_headers() == {"Authorization": f"Bearer {KEY}"}
    assert s.sources["api_key"] == "TRACELOOP_API_KEY"


@pytest.mark.parametrize("given", [f"Bearer {KEY}", f"bearer  {KEY}", f"  {KEY}\n"])
def test_api_key_with_bearer_prefix_or_trailing_newline_is_cleaned(given: str) -> None:
    for s in (_resolve(api_key=given), _resolve({"TFY_API_KEY": given})):
        assert s.api_key == KEY
        assert s.export_headers()["Authorization"] == f"Bearer {KEY}"


# --------------------------------------------------------------------------------------------
# conflicts between the two families: one warning, naming both, never a key
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tfy_var", ["TFY_HOST", "TFY_BASE_URL"])
@pytest.mark.parametrize(
    "tl_base", ["https://other.example.com/api/otel", "https://collector.example.com:4318"]
)
def test_host_conflict_warns_once_naming_both(tfy_var: str, tl_base: str) -> None:
    s = _resolve({tfy_var: "https://acme.example.com", "TRACELOOP_BASE_URL": tl_base})
    assert len(s.warnings) == 1
    assert tfy_var in s.warnings[0]
    assert "TRACELOOP_BASE_URL" in s.warnings[0]
    assert s.traces_url == "https://acme.example.com/api/otel/v1/traces"
    assert s.sources["host"] == tfy_var
    assert s.endpoint is None


def test_same_host_in_both_families_does_not_warn() -> None:
    s = _resolve(
        {
            "TFY_HOST": "https://acme.example.com/",
            "TRACELOOP_BASE_URL": "https://acme.example.com/api/otel",
        }
    )
    assert s.warnings == ()


def test_host_conflict_is_silent_when_an_argument_decides() -> None:
    env = {"TFY_HOST": "https://a.example.com", "TRACELOOP_BASE_URL": "https://b.example.com"}
    assert _resolve(env, host="https://c.example.com").warnings == ()


def test_key_conflict_warns_without_either_key() -> None:
    other = "tl-canary-key-Zk3pW8"
    s = _resolve({"TFY_API_KEY": KEY, "TRACELOOP_HEADERS": f"Authorization=Bearer%20{other}"})
    assert s.api_key == KEY
    assert len(s.warnings) == 1
    note = s.warnings[0]
    assert "TFY_API_KEY" in note and "TRACELOOP_HEADERS" in note
    assert KEY not in note and other not in note
    assert KEY[-4:] not in note and other[-4:] not in note


def test_same_key_in_both_families_does_not_warn() -> None:
    s = _resolve({"TFY_API_KEY": KEY, "TRACELOOP_HEADERS": f"Authorization=Bearer {KEY}"})
    assert s.warnings == ()


# --------------------------------------------------------------------------------------------
# ConfigError: what is wrong and how to fix it, naming the setting, never the key
# --------------------------------------------------------------------------------------------


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ValueError):
        _resolve(host="acme.example.com")


BAD = [
    # (arguments, env, text the message must contain)
    ({"host": "acme.truefoundry.cloud"}, {}, "host"),
    ({}, {"TFY_HOST": "acme.truefoundry.cloud"}, "TFY_HOST"),
    ({}, {"TFY_BASE_URL": "acme.truefoundry.cloud/api/otel"}, "TFY_BASE_URL"),
    ({}, {"TRACELOOP_BASE_URL": "localhost:4318"}, "TRACELOOP_BASE_URL"),
    ({"endpoint": "collector:4318"}, {}, "endpoint"),
    ({}, {"TFY_TRACING_ENDPOINT": "collector.example.com"}, "TFY_TRACING_ENDPOINT"),
    ({"host": "ftp://acme.example.com"}, {}, "host"),
    ({"host": "grpc://acme.example.com:4317"}, {}, "host"),
    ({}, {"TFY_HOST": "file:///etc/passwd"}, "TFY_HOST"),
    ({"endpoint": "ws://collector.example.com"}, {}, "endpoint"),
    ({"host": "https://"}, {}, "host"),
    ({"host": "https://acme.example.com:99999"}, {}, "host"),
    ({"host": "https://acme example.com"}, {}, "host"),
    ({"api_key": "abc\ndef-0123456789"}, {}, "api_key"),
    ({"api_key": "abc\rdef-0123456789"}, {}, "api_key"),
    ({}, {"TFY_API_KEY": "abc\ndef-0123456789"}, "TFY_API_KEY"),
    ({}, {"TRACELOOP_API_KEY": "abc\r\ndef-0123456789"}, "TRACELOOP_API_KEY"),
    ({}, {"TRACELOOP_HEADERS": "Authorization=Bearer%20abc%0Adef"}, "TRACELOOP_HEADERS"),
    ({"headers": {"X-Extra": "a\r\nInjected: 1"}}, {}, "X-Extra"),
    ({"headers": {"X-Extra": "a\nb"}}, {}, "headers"),
    ({}, {"TRACELOOP_HEADERS": "X-Extra=a%0D%0AInjected: 1"}, "TRACELOOP_HEADERS"),
    ({"tracing_project": "t:p:x\r\nX: 1"}, {}, "TFY-Tracing-Project"),
    ({}, {"TFY_TRACING_PROJECT": "t:p:x\nX: 1"}, "TFY_TRACING_PROJECT"),
    ({"sample_rate": 1.5}, {}, "sample_rate"),
    ({"sample_rate": -0.1}, {}, "sample_rate"),
    ({"sample_rate": float("nan")}, {}, "sample_rate"),
    ({"sample_rate": "lots"}, {}, "sample_rate"),
    ({}, {"TFY_TRACING_SAMPLE_RATE": "2"}, "TFY_TRACING_SAMPLE_RATE"),
    ({}, {"TFY_TRACING_SAMPLE_RATE": "-1"}, "TFY_TRACING_SAMPLE_RATE"),
    ({}, {"TFY_TRACING_SAMPLE_RATE": "10%"}, "TFY_TRACING_SAMPLE_RATE"),
    ({}, {"TFY_TRACING_SAMPLE_RATE": "inf"}, "TFY_TRACING_SAMPLE_RATE"),
    ({}, {"TFY_TRACING_ENABLED": "maybe"}, "TFY_TRACING_ENABLED"),
    ({}, {"TFY_TRACING_ENABLED": "2"}, "TFY_TRACING_ENABLED"),
    ({}, {"TFY_TRACING_CONSOLE": "loud"}, "TFY_TRACING_CONSOLE"),
    ({}, {"TRACELOOP_TRACE_CONTENT": "nope"}, "TRACELOOP_TRACE_CONTENT"),
    ({}, {"TFY_TRACING_DISABLE_BATCH": "y"}, "TFY_TRACING_DISABLE_BATCH"),
    ({"timeout": 0}, {}, "timeout"),
    ({}, {"TFY_TRACING_TIMEOUT": "forever"}, "TFY_TRACING_TIMEOUT"),
    ({"app_name": "   "}, {}, "app_name"),
    ({"headers": {"X-Extra": 1}}, {}, "headers"),
]


@pytest.mark.parametrize(("kwargs", "env", "names"), BAD)
def test_config_error_names_the_setting_and_never_the_key(
    kwargs: dict[str, Any], env: dict[str, str], names: str
) -> None:
    # A canary key is configured alongside every mistake (unless the key is the mistake).
    if "api_key" not in kwargs and not any("API_KEY" in v or "HEADERS" in v for v in env):
        kwargs = {**kwargs, "api_key": KEY}
    if env:  # a bad variable raises only in strict mode
        message = str(_config_error(env, **kwargs))
    else:
        with pytest.raises(ConfigError) as info:
            _resolve(dict(env), **kwargs)
        message = str(info.value)
    assert names in message
    assert KEY not in message
    assert "abc" not in message and "def-0123456789" not in message  # nor the bad key's parts
    assert len(message) > len(names) + 20  # says what to do, not just which setting


def test_bad_scheme_message_says_how_to_fix() -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(host="acme.truefoundry.cloud")
    assert "https://acme.truefoundry.cloud" in str(info.value)
    with pytest.raises(ConfigError, match="http:// or https://"):
        _resolve(host="grpc://acme.example.com")


def test_url_credentials_are_hidden_in_messages() -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(host=f"ftp://user:{KEY}@acme.example.com")
    assert KEY not in str(info.value)


def test_url_with_credentials_and_bad_port_is_a_config_error() -> None:
    err = _config_error({"TFY_HOST": f"https://user:{KEY}@acme.example.com:port"})
    assert "TFY_HOST" in str(err)
    assert KEY not in str(err)


def test_headers_in_http_syntax_are_read_even_with_an_equals_sign_in_the_key() -> None:
    settings = _resolve({"TRACELOOP_HEADERS": f"Authorization: Bearer {KEY}==,X-Other: a=b"})
    assert settings.export_headers()["Authorization"] == f"Bearer {KEY}=="
    assert settings.export_headers()["X-Other"] == "a=b"


def test_an_invalid_header_name_is_not_quoted_back() -> None:
    err = _config_error({"TRACELOOP_HEADERS": f"Bearer {KEY}=x"})
    assert "TRACELOOP_HEADERS" in str(err)
    assert "entry 1" in str(err)
    assert KEY not in str(err)


@pytest.mark.parametrize(
    ("kwargs", "env", "names"),
    [
        ({"instruments": ["openai", "not-a-library"]}, {}, "instruments"),
        ({}, {"TFY_TRACING_INSTRUMENTS": "openai,not-a-library"}, "TFY_TRACING_INSTRUMENTS"),
    ],
)
def test_unknown_instrument_is_a_config_error(
    kwargs: dict[str, Any], env: dict[str, str], names: str
) -> None:
    if env:
        err = _config_error(env, api_key=KEY, **kwargs)
        # Without strict mode, the names it got right are still instrumented.
        assert _resolve(dict(env)).instruments == ("openai",)
    else:
        with pytest.raises(ConfigError) as info:
            _resolve(dict(env), api_key=KEY, **kwargs)
        err = info.value
    assert names in str(err)
    assert "not-a-library" in str(err)
    assert KEY not in str(err)


@pytest.mark.parametrize("value", [["openai", 3], 42, [None]])
def test_instruments_of_the_wrong_type(value: Any) -> None:
    with pytest.raises(ConfigError, match="instruments"):
        _resolve(instruments=value)


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " On "])
def test_boolean_true_spellings(raw: str) -> None:
    assert _resolve({"TFY_TRACING_DISABLE_BATCH": raw}).disable_batch is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off"])
def test_boolean_false_spellings(raw: str) -> None:
    assert _resolve({"TFY_TRACING_ENABLED": raw}).enabled is False


@pytest.mark.parametrize("rate", [0, 0.0, 1, 1.0, "0", "1", "0.001"])
def test_sample_rate_bounds_are_inclusive(rate: Any) -> None:
    assert _resolve(sample_rate=rate).sample_rate == float(rate)
    assert _resolve({"TFY_TRACING_SAMPLE_RATE": str(rate)}).sample_rate == float(rate)


# --------------------------------------------------------------------------------------------
# plain http and the API key
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "http://acme.example.com"},
        {"endpoint": "http://collector.example.com:4318"},
        {"host": "http://10.0.0.5:8080"},
    ],
)
def test_plain_http_to_a_remote_host_with_a_key_is_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(api_key=KEY, **kwargs)
    message = str(info.value)
    assert "allow_insecure=True" in message and "TFY_TRACING_ALLOW_INSECURE" in message
    assert KEY not in message
    from_env = {"TFY_API_KEY": KEY, "TRACELOOP_BASE_URL": next(iter(kwargs.values()))}
    _config_error(from_env)
    assert _resolve(from_env).traces_url is None  # from the environment: nothing is sent
    assert _resolve(api_key=KEY, allow_insecure=True, **kwargs).api_key == KEY
    s = _resolve({"TFY_TRACING_ALLOW_INSECURE": "true"}, api_key=KEY, **kwargs)
    assert s.sources["allow_insecure"] == "TFY_TRACING_ALLOW_INSECURE"


def test_plain_http_without_a_key_is_allowed() -> None:
    assert _resolve(host="http://acme.example.com").traces_url == (
        "http://acme.example.com/api/otel/v1/traces"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:8080",
        "http://api.localhost",
        "http://[::1]:4318",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    s = _resolve(host=url, api_key=KEY)
    assert s.traces_url is not None and s.traces_url.startswith(url)


def test_https_with_a_key_is_allowed() -> None:
    assert _resolve(host="https://acme.example.com", api_key=KEY).destination == "truefoundry"


# --------------------------------------------------------------------------------------------
# secrets in repr, masked headers, mask_secret
# --------------------------------------------------------------------------------------------


def test_repr_never_shows_the_key() -> None:
    for s in (
        _resolve(host="https://acme.example.com", api_key=KEY, tracing_project=PROJECT),
        _resolve({"TRACELOOP_HEADERS": f"Authorization=Bearer%20{KEY},X-Api-Key={KEY}"}),
        _resolve({"TFY_API_KEY": KEY, "TFY_HOST": "https://acme.example.com"}),
    ):
        text = repr(s) + str(s) + str(s.masked_headers()) + repr(s.sources)
        assert KEY not in text
        assert "…" + KEY[-4:] in repr(s)
        assert "Authorization" in repr(s)


def test_masked_headers() -> None:
    s = _resolve(
        {"TRACELOOP_HEADERS": f"Authorization=Bearer {KEY},X-Api-Key={KEY},X-Team=search"},
        tracing_project=PROJECT,
    )
    masked = s.masked_headers()
    assert masked == {
        "Authorization": "Bearer …" + KEY[-4:],
        "X-Api-Key": "…" + KEY[-4:],
        "X-Team": "search",
        "TFY-Tracing-Project": PROJECT,
    }
    assert s.export_headers()["X-Api-Key"] == KEY  # the real value still goes on the wire


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (None, "<none>"),
        ("", "<none>"),
        ("abc", "…****"),
        ("12345678901", "…****"),
        ("123456789012", "…9012"),
        ("tfy-secret-1234", "…1234"),
    ],
)
def test_mask_secret(value: str | None, masked: str) -> None:
    assert mask_secret(value) == masked
    if value and len(value) >= 12:
        assert value[:-4] not in mask_secret(value)


# --------------------------------------------------------------------------------------------
# fuzzing: only ConfigError, and never the key in a message
# --------------------------------------------------------------------------------------------

FUZZ_VARS = ["TFY_HOST", "TRACELOOP_HEADERS", "TFY_TRACING_SAMPLE_RATE", "TRACELOOP_BASE_URL"]
text = st.text(max_size=60)
fragments = st.sampled_from(
    [
        "https://",
        "http://",
        "localhost",
        "acme.example.com",
        ":4318",
        ":",
        "/api/otel",
        "/v1/traces",
        "/",
        "%20",
        "%0A",
        "=",
        ",",
        '"',
        "'",
        " ",
        "\n",
        "Authorization",
        "Bearer",
        "TFY-Tracing-Project",
        "0.5",
        "1e3",
        "-",
        "[",
        "]",
    ]
)
url_like = st.lists(st.one_of(fragments, text), max_size=8).map("".join)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(values=st.fixed_dictionaries({}, optional={v: st.one_of(text, url_like) for v in FUZZ_VARS}))
def test_fuzz_environment_raises_only_config_error(values: dict[str, str]) -> None:
    env = {"TFY_API_KEY": KEY, **values}
    try:
        resolve(env=env, strict=True)
    except ConfigError as exc:
        assert KEY not in str(exc)
    s = resolve(env=env)  # without strict mode, a variable never raises
    assert KEY not in repr(s) and KEY not in " ".join(p.message + p.fix for p in s.errors)
    assert 0.0 <= s.sample_rate <= 1.0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(host=url_like, rate=st.one_of(st.floats(allow_nan=True), text))
def test_fuzz_arguments_raise_only_config_error(host: str, rate: Any) -> None:
    try:
        resolve(host=host, sample_rate=rate, api_key=KEY, env={})
    except ConfigError as exc:
        assert KEY not in str(exc)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@example(parts=["Authorization: Bearer ", KEY, "=="])
@given(parts=st.lists(st.one_of(fragments, st.just(KEY), text), max_size=8))
def test_fuzz_traceloop_headers_holding_the_key_never_echo_it(parts: list[str]) -> None:
    env = {"TRACELOOP_HEADERS": "".join(parts)}
    try:
        resolve(env=env, strict=True)
    except ConfigError as exc:
        assert KEY not in str(exc)
    assert KEY not in " ".join(p.message for p in resolve(env=env).errors)


# --------------------------------------------------------------------------------------------
# a bad variable never stops the app; strict mode raises; arguments always raise
# --------------------------------------------------------------------------------------------

ENV_MISTAKES = [
    pytest.param({"TFY_HOST": "acme.truefoundry.cloud"}, "TFY_HOST", id="host-no-scheme"),
    pytest.param({"TFY_TRACING_INSTRUMENTS": "openai,lang-chain"}, "TFY_TRACING_INSTRUMENTS"),
    pytest.param({"TFY_TRACING_SAMPLE_RATE": "10%"}, "TFY_TRACING_SAMPLE_RATE"),
    pytest.param({"TFY_TRACING_ENABLED": "maybe"}, "TFY_TRACING_ENABLED"),
    pytest.param({"TRACELOOP_HEADERS": "Bearer abc"}, "TRACELOOP_HEADERS"),
    pytest.param({"TFY_API_KEY": "abc\ndef-0123456789"}, "TFY_API_KEY"),
    pytest.param({"TFY_TRACING_STRICT": "sometimes"}, "TFY_TRACING_STRICT"),
]


@pytest.mark.parametrize(("env", "var"), ENV_MISTAKES)
def test_a_bad_variable_logs_one_error_and_init_goes_on(
    env: dict[str, str],
    var: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    import truefoundry_tracing as tt

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.ERROR, logger="truefoundry_tracing")
    status = tt.init("env-mistake", console=False)
    tt.init("env-mistake", console=False)  # the same mistake again: still one line
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert var in errors[0] and "Until" in errors[0]
    assert "abc" not in errors[0] and "def-0123456789" not in errors[0]
    assert status.app_name == "env-mistake"

    if var != "TFY_TRACING_STRICT":  # strict=True wins over that variable, unread
        with pytest.raises(tt.ConfigError, match=var):
            tt.init("env-mistake", console=False, strict=True)
        monkeypatch.setenv("TFY_TRACING_STRICT", "1")
        with pytest.raises(tt.ConfigError, match=var):
            tt.init("env-mistake", console=False)


def test_a_bad_variable_sets_aside_only_its_own_value() -> None:
    s = _resolve(
        {
            "TFY_HOST": "acme.truefoundry.cloud",
            "TFY_API_KEY": KEY,
            "TFY_TRACING_INSTRUMENTS": "openai,lang-chain",
            "TFY_TRACING_SAMPLE_RATE": "0.5",
        }
    )
    assert [p.source for p in s.errors] == ["TFY_HOST", "TFY_TRACING_INSTRUMENTS"]
    assert (s.destination, s.traces_url, s.console) == ("none", None, False)  # not to stderr
    assert (s.api_key, s.sample_rate, s.instruments) == (KEY, 0.5, ("openai",))
    assert s.sources["host"] == "TFY_HOST"
    assert "errors=2" in repr(s)


def test_arguments_raise_even_without_strict_mode() -> None:
    with pytest.raises(ConfigError, match="host"):
        _resolve(host="acme.truefoundry.cloud", strict=False)
    with pytest.raises(ConfigError, match="refusing to send the API key"):
        _resolve({"TFY_API_KEY": KEY}, host="http://collector.example.com")


def test_unknown_arguments_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="brand_new"):
        resolve(env={}, brand_new=1)


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("127.0.0.1:4318", "http://127.0.0.1:4318"),
        ("localhost:4318/", "http://localhost:4318/"),
        ("[::1]:4318", "http://[::1]:4318"),
        ("//127.0.0.1:4318", "http://127.0.0.1:4318"),
        ("acme.truefoundry.cloud", "https://acme.truefoundry.cloud"),
        ("10.0.0.5:4318", "https://10.0.0.5:4318"),
    ],
)
def test_a_missing_scheme_is_fixed_with_the_scheme_that_fits_the_host(
    written: str, suggested: str
) -> None:
    (problem,) = _resolve({"TFY_HOST": written}).errors
    assert problem.fix == f"Set TFY_HOST to {suggested}."
    assert suggested in problem.message
    assert _resolve({"TFY_HOST": suggested}).host == suggested.rstrip("/")


def test_one_is_loopback_for_settings_serve_and_the_viewer() -> None:
    import importlib

    from truefoundry_tracing._config import is_loopback

    _serve = importlib.import_module("truefoundry_tracing.cli._serve")
    _web = importlib.import_module("truefoundry_tracing.cli._web")

    assert _serve.is_loopback is is_loopback
    yes = ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost", "LOCALHOST", "api.localhost"]
    no = ["10.0.0.5", "0.0.0.0", "example.com", "localhost.example.com", "", "::"]
    assert all(is_loopback(h) for h in yes)
    assert not any(is_loopback(h) for h in no)
    assert all(_web._host_is_loopback(h) for h in ["127.0.0.2:4318", "[::1]:80", "Localhost"])
    assert not any(_web._host_is_loopback(h) for h in ["evil.example.com:4318", "[::2]:80"])


def test_the_gateway_names_a_bad_tfy_host_instead_of_saying_none_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("openai")
    from truefoundry_tracing import gateway

    monkeypatch.setenv("TFY_HOST", "acme.truefoundry.cloud")
    monkeypatch.setenv("TFY_API_KEY", KEY)
    with pytest.raises(ConfigError, match="TFY_HOST") as info:
        gateway.openai_client()
    assert "https://acme.truefoundry.cloud" in str(info.value)
    assert KEY not in str(info.value)


def test_a_bad_endpoint_sends_nowhere_rather_than_to_the_host() -> None:
    env = {"TFY_HOST": "https://acme.example.com", "TFY_TRACING_ENDPOINT": "collector:4318"}
    s = _resolve(env)
    assert (s.traces_url, s.console) == (None, False)
    assert [p.source for p in s.errors] == ["TFY_TRACING_ENDPOINT"]


def test_a_bad_traceloop_base_url_under_a_good_host_is_a_warning_not_an_error() -> None:
    env = {"TFY_HOST": "https://acme.example.com", "TRACELOOP_BASE_URL": "collector:4318"}
    s = _resolve(env)
    assert s.traces_url == "https://acme.example.com/api/otel/v1/traces"
    assert s.errors == ()
    assert len(s.warnings) == 1 and "TRACELOOP_BASE_URL" in s.warnings[0]


def test_the_old_settings_module_name_still_works() -> None:
    from truefoundry_tracing import _config, _settings

    assert (_settings.resolve, _settings.Settings) == (_config.resolve, _config.Settings)
