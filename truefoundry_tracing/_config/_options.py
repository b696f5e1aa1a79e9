"""The options table: every ``init()`` argument, its environment variables, default and parser.

This table is the single description of the configuration: :func:`~._resolve.resolve` applies
it, ``doctor`` reports from it, and docs/configuration.md is generated from it
(``docs/_gen/config_reference.py``; a test fails when the page is stale).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._model import DEFAULT_TIMEOUT
from ._parsers import (
    AUTH_HEADER,
    PROJECT_HEADER,
    SettingError,
    check_header_name,
    check_header_value,
    instrument_names,
    normalize_endpoint,
    normalize_host,
    parse_bool,
    parse_rate,
    parse_timeout,
)

__all__ = ["OPTIONS", "OPTION_BY_NAME", "Option"]

Parser = Callable[[Any, str], Any]


@dataclass(frozen=True)
class Option:
    """One ``init()`` argument: where it is read from, its default, and how it is parsed.

    ``env`` lists the variables in precedence order; ``default`` and ``doc`` are what the
    configuration reference shows. ``parse(raw, setting)`` turns a variable's text into the
    value, ``check(value, setting)`` validates an argument (``parse`` when None); both raise
    :class:`~._parsers.SettingError` naming ``setting``. ``value`` is the default value;
    ``if_invalid`` says what tracing does while a variable's bad value is set aside.

    Example:
        >>> OPTION_BY_NAME["sample_rate"].parse("0.5", "TFY_TRACING_SAMPLE_RATE")
        0.5
    """

    name: str
    env: tuple[str, ...]
    default: str
    doc: str
    parse: Parser | None = None
    check: Parser | None = None
    value: Any = None
    if_invalid: str = ""

    def from_argument(self, given: Any) -> Any:
        """The value of an explicit argument, validated (a bad one raises)."""
        checker = self.check or self.parse
        return checker(given, self.name) if checker else given

    def from_variable(self, raw: Any, var: str) -> Any:
        """The value of variable ``var``'s text, parsed (a bad one raises)."""
        return self.parse(raw, var) if self.parse else raw


def _truthy(value: Any, setting: str) -> bool:
    del setting
    return bool(value)


def _text(raw: Any, setting: str) -> str:
    del setting
    return str(raw).strip()


def _app_name(value: Any, setting: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingError(f"{setting} must be a non-empty string, such as 'support-bot'.")
    return value.strip()


def _api_key(raw: Any, setting: str) -> str | None:
    key = str(raw).strip()
    if not key:
        return None
    check_header_value(
        AUTH_HEADER, key, "the api_key argument" if setting == "api_key" else setting
    )
    return key[7:].strip() if key.lower().startswith("bearer ") else key


def _project(raw: Any, setting: str) -> str | None:
    project = str(raw).strip()
    return check_header_value(PROJECT_HEADER, project, setting) if project else None


def _headers(value: Any, setting: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise SettingError(f"{setting} must be a dict of header name to value.")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise SettingError(
                f"{setting} must map strings to strings; {name!r} maps to a {type(text).__name__}."
            )
        check_header_name(name, setting)
        out[name] = check_header_value(name, text, f"the {setting} argument")
    return out


def _exporter(value: Any, setting: str) -> Any:
    if not (hasattr(value, "export") and hasattr(value, "shutdown")):
        raise SettingError(
            f"{setting} must be an OpenTelemetry SpanExporter (an object with export() and "
            f"shutdown()); got {type(value).__name__}."
        )
    return value


def _redact(value: Any, setting: str) -> Any:
    if not (isinstance(value, bool) or callable(value)):
        raise SettingError(f"{setting} must be a callable (key, value) -> value, True or False.")
    return value


def _attributes(value: Any, setting: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingError(f"{setting} must be a dict of attribute name to value.")
    return dict(value)


NOT_SENT = "no traces are sent"

OPTIONS: tuple[Option, ...] = (
    Option(
        "app_name",
        ("TFY_TRACING_APP", "OTEL_SERVICE_NAME"),
        "the script's name",
        "Resource `service.name`; TrueFoundry shows it as the tracing application.",
        parse=_text,
        check=_app_name,
    ),
    Option(
        "host",
        ("TFY_HOST", "TFY_BASE_URL", "TRACELOOP_BASE_URL"),
        "none (traces stay local)",
        "TrueFoundry control-plane URL; traces go to `<host>/api/otel/v1/traces`.",
        parse=normalize_host,
        if_invalid=NOT_SENT,
    ),
    Option(
        "api_key",
        ("TFY_API_KEY", "TRACELOOP_API_KEY", "TRACELOOP_HEADERS"),
        "none",
        "TrueFoundry API key, sent as `Authorization: Bearer <key>`.",
        parse=_api_key,
        if_invalid="no API key is sent",
    ),
    Option(
        "tracing_project",
        ("TFY_TRACING_PROJECT", "TRACELOOP_HEADERS"),
        "none",
        "Tracing project FQN, sent as the `TFY-Tracing-Project` header.",
        parse=_project,
        if_invalid="no tracing project is sent",
    ),
    Option(
        "endpoint",
        ("TFY_TRACING_ENDPOINT", "TRACELOOP_BASE_URL"),
        "none",
        "Full OTLP/HTTP base URL of any other collector (`/v1/traces` appended); wins over host.",
        parse=normalize_endpoint,
        if_invalid=NOT_SENT,
    ),
    Option(
        "headers",
        ("TRACELOOP_HEADERS",),
        "none",
        "Extra export headers, as a dict (`k=v,k2=v2` in the variable).",
        check=_headers,
        value={},
        if_invalid="none of its headers (key and project included) are sent",
    ),
    Option(
        "disable_batch",
        ("TFY_TRACING_DISABLE_BATCH",),
        "false",
        "Export each span as it ends instead of in background batches.",
        parse=parse_bool,
        check=_truthy,
        value=False,
    ),
    Option(
        "trace_content",
        ("TFY_TRACING_TRACE_CONTENT", "TRACELOOP_TRACE_CONTENT"),
        "true",
        "False drops prompts, completions, inputs and outputs from every span.",
        parse=parse_bool,
        check=_truthy,
        value=True,
    ),
    Option(
        "sample_rate",
        ("TFY_TRACING_SAMPLE_RATE",),
        "1.0",
        "Fraction of traces kept, 0 to 1, parent-based.",
        parse=parse_rate,
        value=1.0,
    ),
    Option(
        "console",
        ("TFY_TRACING_CONSOLE",),
        "true when no destination is set",
        "Print each finished trace as a tree to stderr.",
        parse=parse_bool,
        check=_truthy,
    ),
    Option(
        "exporter",
        (),
        "none",
        "Your own OpenTelemetry `SpanExporter`; wins over host.",
        check=_exporter,
    ),
    Option(
        "instruments",
        ("TFY_TRACING_INSTRUMENTS",),
        "installed LLM, framework and vector-DB libraries",
        "Libraries to auto-instrument, by name (comma-separated in the variable).",
        parse=instrument_names,
        if_invalid="only the names it got right are instrumented",
    ),
    Option(
        "resource_attributes",
        (),
        "none",
        "Extra OpenTelemetry resource attributes.",
        check=_attributes,
        value={},
    ),
    Option(
        "enabled",
        ("TFY_TRACING_ENABLED",),
        "true",
        "False is a kill switch: no spans, decorators become plain calls.",
        parse=parse_bool,
        check=_truthy,
        value=True,
    ),
    Option(
        "redact",
        (),
        "built-in patterns",
        "A callable `(key, value) -> value` run on span attributes before export, or False.",
        check=_redact,
    ),
    Option(
        "allow_insecure",
        ("TFY_TRACING_ALLOW_INSECURE",),
        "false",
        "Allow sending an API key over plain http to a host that is not loopback.",
        parse=parse_bool,
        check=_truthy,
        value=False,
    ),
    Option(
        "timeout",
        ("TFY_TRACING_TIMEOUT",),
        "5.0",
        "Seconds a flush or shutdown waits at most (one deadline at exit); each request may "
        "take `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`.",
        parse=parse_timeout,
        value=DEFAULT_TIMEOUT,
    ),
    Option(
        "handle_sigterm",
        ("TFY_TRACING_HANDLE_SIGTERM",),
        "true",
        "On SIGTERM, flush within `timeout` before the process ends, if the app installed no "
        "SIGTERM handler of its own.",
        parse=parse_bool,
        check=_truthy,
        value=True,
    ),
    Option(
        "strict",
        ("TFY_TRACING_STRICT",),
        "false",
        "A bad value in a variable raises `ConfigError` from `init()`, as a bad argument does, "
        "instead of one ERROR line and tracing without it. For CI and tests.",
        parse=parse_bool,
        check=_truthy,
        value=False,
    ),
)

OPTION_BY_NAME: Mapping[str, Option] = {opt.name: opt for opt in OPTIONS}
