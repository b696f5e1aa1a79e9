"""Configuration: arguments and environment resolved, once, into one immutable object.

:func:`resolve` is the only place that reads ``TFY_*`` / ``TRACELOOP_*`` / ``OTEL_SERVICE_NAME``.
``init()``, the ``doctor`` command and the configuration reference all go through it, so they
cannot disagree. Every value remembers where it came from (``argument``, an environment
variable's name, or ``default``).

Precedence, highest first: an explicit ``init()`` argument, then the ``TFY_*`` variables, then
the seed's ``TRACELOOP_*`` variables, then the default. An empty variable counts as unset.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigError

__all__ = [
    "OPTIONS",
    "Option",
    "Settings",
    "mask_secret",
    "parse_traceloop_headers",
    "resolve",
]

AUTH_HEADER = "Authorization"
PROJECT_HEADER = "TFY-Tracing-Project"
OTEL_PATH = "/api/otel"
TRACES_SUFFIX = "/v1/traces"
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Option:
    """One ``init()`` argument: the environment variables it reads and its default.

    The configuration reference in the docs is checked against this table by a test.
    """

    name: str
    env: tuple[str, ...]
    default: str
    doc: str


OPTIONS: tuple[Option, ...] = (
    Option(
        "app_name",
        ("TFY_TRACING_APP", "OTEL_SERVICE_NAME"),
        "the script's name",
        "Resource `service.name`; TrueFoundry shows it as the tracing application.",
    ),
    Option(
        "host",
        ("TFY_HOST", "TFY_BASE_URL", "TRACELOOP_BASE_URL"),
        "none (traces stay local)",
        "TrueFoundry control-plane URL; traces go to `<host>/api/otel/v1/traces`.",
    ),
    Option(
        "api_key",
        ("TFY_API_KEY", "TRACELOOP_API_KEY", "TRACELOOP_HEADERS"),
        "none",
        "TrueFoundry API key, sent as `Authorization: Bearer <key>`.",
    ),
    Option(
        "tracing_project",
        ("TFY_TRACING_PROJECT", "TRACELOOP_HEADERS"),
        "none",
        "Tracing project FQN, sent as the `TFY-Tracing-Project` header.",
    ),
    Option(
        "endpoint",
        ("TFY_TRACING_ENDPOINT", "TRACELOOP_BASE_URL"),
        "none",
        "Full OTLP/HTTP base URL of any other collector (`/v1/traces` appended); wins over host.",
    ),
    Option(
        "headers",
        ("TRACELOOP_HEADERS",),
        "none",
        "Extra export headers, as a dict (`k=v,k2=v2` in the variable).",
    ),
    Option(
        "disable_batch",
        ("TFY_TRACING_DISABLE_BATCH",),
        "false",
        "Export each span as it ends instead of in background batches.",
    ),
    Option(
        "trace_content",
        ("TFY_TRACING_TRACE_CONTENT", "TRACELOOP_TRACE_CONTENT"),
        "true",
        "False drops prompts, completions, inputs and outputs from every span.",
    ),
    Option(
        "sample_rate",
        ("TFY_TRACING_SAMPLE_RATE",),
        "1.0",
        "Fraction of traces kept, 0 to 1, parent-based.",
    ),
    Option(
        "console",
        ("TFY_TRACING_CONSOLE",),
        "true when no destination is set",
        "Print each finished trace as a tree to stderr.",
    ),
    Option("exporter", (), "none", "Your own OpenTelemetry `SpanExporter`; wins over host."),
    Option(
        "instruments",
        ("TFY_TRACING_INSTRUMENTS",),
        "installed LLM, framework and vector-DB libraries",
        "Libraries to auto-instrument, by name (comma-separated in the variable).",
    ),
    Option("resource_attributes", (), "none", "Extra OpenTelemetry resource attributes."),
    Option(
        "enabled",
        ("TFY_TRACING_ENABLED",),
        "true",
        "False is a kill switch: no spans, decorators become plain calls.",
    ),
    Option(
        "redact",
        (),
        "built-in patterns",
        "A callable `(key, value) -> value` run on span attributes before export, or False.",
    ),
    Option(
        "allow_insecure",
        ("TFY_TRACING_ALLOW_INSECURE",),
        "false",
        "Allow sending an API key over plain http to a host that is not loopback.",
    ),
    Option(
        "timeout",
        ("TFY_TRACING_TIMEOUT",),
        "5.0",
        "Seconds a flush or shutdown waits at most (one deadline at exit); each request may "
        "take `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`.",
    ),
    Option(
        "handle_sigterm",
        ("TFY_TRACING_HANDLE_SIGTERM",),
        "true",
        "On SIGTERM, flush within `timeout` before the process ends, if the app installed no "
        "SIGTERM handler of its own.",
    ),
)

_OPTION_BY_NAME = {opt.name: opt for opt in OPTIONS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def mask_secret(value: str | None) -> str:
    """Mask a secret to its last 4 characters (``'…abcd'``); short ones are fully hidden.

    Example:
        >>> mask_secret("tfy-secret-1234")
        '…1234'
    """
    if not value:
        return "<none>"
    if len(value) < 12:
        return "…" + "*" * 4
    return "…" + value[-4:]


@dataclass(frozen=True)
class Settings:
    """What ``init()`` will do, resolved from arguments and environment.

    ``sources`` maps each option name to where its value came from: ``"argument"``, the name
    of an environment variable, or ``"default"``. ``repr()`` masks the API key.

    Example:
        >>> s = resolve(host="https://tfy.example.com/", api_key="tfy-secret-abcd", env={})
        >>> s.traces_url
        'https://tfy.example.com/api/otel/v1/traces'
        >>> "tfy-secret" in repr(s)
        False
    """

    app_name: str
    host: str | None = None
    endpoint: str | None = None
    api_key: str | None = field(default=None, repr=False)
    tracing_project: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    disable_batch: bool = False
    trace_content: bool = True
    sample_rate: float = 1.0
    console: bool = False
    exporter: Any = None
    instruments: tuple[str, ...] | None = None
    resource_attributes: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    redact: Any = None
    allow_insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    handle_sigterm: bool = True
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def traces_url(self) -> str | None:
        """The URL spans are POSTed to, or None when nothing goes over the network."""
        if self.exporter is not None or not self.enabled:
            return None
        if self.endpoint:
            return self.endpoint
        if self.host:
            return self.host + OTEL_PATH + TRACES_SUFFIX
        return None

    @property
    def destination(self) -> str:
        """One of ``"truefoundry"``, ``"otlp"``, ``"exporter"``, ``"console"``, ``"none"``."""
        if not self.enabled:
            return "none"
        if self.exporter is not None:
            return "exporter"
        if self.endpoint:
            return "otlp"
        if self.host:
            return "truefoundry"
        return "console" if self.console else "none"

    def source_label(self, option: str, argument: str | None = None) -> str:
        """Where ``option`` came from, for messages: a variable's name, the argument, or default.

        ``argument`` names the argument the caller's way (``--host`` for the CLI); by default
        it reads "the host argument".
        """
        src = self.sources.get(option, "default")
        if src == "argument":
            return argument or f"the {option} argument"
        return f"the {option} setting" if src == "default" else src

    def export_headers(self) -> dict[str, str]:
        """The HTTP headers sent with every export, including the key (never log these)."""
        out = dict(self.headers)
        if self.api_key:
            out[AUTH_HEADER] = f"Bearer {self.api_key}"
        if self.tracing_project:
            out[PROJECT_HEADER] = self.tracing_project
        return out

    def masked_headers(self) -> dict[str, str]:
        """Export headers with secret values masked, safe to print."""
        out: dict[str, str] = {}
        for key, value in self.export_headers().items():
            if _is_secret_header(key):
                scheme, _, token = value.partition(" ")
                out[key] = f"{scheme} {mask_secret(token)}" if token else mask_secret(value)
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        parts = [
            f"destination={self.destination!r}",
            f"traces_url={self.traces_url!r}",
            f"app_name={self.app_name!r}",
            f"tracing_project={self.tracing_project!r}",
            f"api_key={mask_secret(self.api_key) if self.api_key else None!r}",
            f"headers={sorted(self.export_headers())!r}",
            f"batch={not self.disable_batch!r}",
            f"trace_content={self.trace_content!r}",
            f"sample_rate={self.sample_rate!r}",
        ]
        return f"Settings({', '.join(parts)})"

    def identity(self) -> tuple[Any, ...]:
        """A value that is equal for two settings that configure the same pipeline."""
        return (
            self.app_name,
            self.traces_url,
            tuple(sorted(self.export_headers().items())),
            self.disable_batch,
            self.trace_content,
            self.sample_rate,
            self.console,
            id(self.exporter) if self.exporter is not None else None,
            self.instruments,
            tuple(sorted((k, repr(v)) for k, v in self.resource_attributes.items())),
            self.enabled,
            id(self.redact) if callable(self.redact) else self.redact,
            self.timeout,
        )


_SECRET_HEADER = re.compile(r"(authorization|api[-_]?key|token|secret|cookie|password)", re.I)


def _is_secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


def _header_label(name: str) -> str:
    if name == AUTH_HEADER:
        return "the API key"
    # Quote names that look like header names; a mangled entry's "name" may hold a key.
    return f"header {name!r}" if re.fullmatch(r"[A-Za-z]+(-[A-Za-z]+)*", name) else "a header"


def _check_header_value(name: str, value: str, source: str) -> None:
    what = _header_label(name)
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ConfigError(
            f"{what} from {source} contains a line break or NUL character; remove it "
            "(a trailing newline often comes from reading the key from a file)."
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{what} from {source} contains a character HTTP headers cannot carry (often a "
            "pasted '…' or a curly quote); retype it."
        ) from None


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"


def parse_traceloop_headers(raw: str, source: str = "TRACELOOP_HEADERS") -> dict[str, str]:
    """Parse a ``TRACELOOP_HEADERS``-style value: ``key=value`` pairs separated by commas.

    More forgiving than OpenTelemetry's parser, on purpose: values may be percent-encoded
    (``Bearer%20<key>``) or not (``Bearer <key>``), and stray quotes from copied docs are
    dropped.

    Example:
        >>> parse_traceloop_headers('"Authorization=Bearer%20abc, TFY-Tracing-Project=t:p:x')
        {'Authorization': 'Bearer abc', 'TFY-Tracing-Project': 't:p:x'}
    """
    out: dict[str, str] = {}
    text = raw.strip().strip("\"'")
    for part in text.split(","):
        item = part.strip().strip("\"'").strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        name, colon, rest = key.partition(":")
        if colon and re.fullmatch(_TOKEN, name.strip()):
            # Written in HTTP syntax ("Authorization: Bearer <key>"), as docs often show it.
            key, sep, value = name, ":", rest + sep + value
        key = urllib.parse.unquote(key).strip().strip("\"'").strip()
        if not sep or not key:
            raise ConfigError(
                f"{source} has an entry without 'name=value' (entry {len(out) + 1}); "
                "write it as Authorization=Bearer <key>,TFY-Tracing-Project=<fqn>."
            )
        if not re.fullmatch(_TOKEN, key):
            # The bad name is not quoted: in a mangled entry it may be part of the API key.
            raise ConfigError(
                f"{source} has an invalid header name in entry {len(out) + 1}; header names "
                "are letters, digits and '-', written as Authorization=Bearer <key>."
            )
        value = urllib.parse.unquote(value).strip().strip("\"'").strip()
        _check_header_value(key, value, source)
        out[key] = value
    return out


def _loopback(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _safe_url(url: str) -> str:
    """The URL with any user:password part hidden, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" in parts.netloc:
        netloc = "***@" + parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def _check_url(url: str, setting: str) -> str:
    url = url.strip()
    if any(ch in url for ch in "\r\n\x00 \t"):
        raise ConfigError(
            f"{setting} contains white space or a line break; set it to a plain URL such as "
            "https://your-company.truefoundry.cloud."
        )
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"{setting} {_safe_url(url)!r} is not a valid URL ({exc}); set it to a URL "
            "such as https://your-company.truefoundry.cloud."
        ) from None
    if "://" not in url:
        raise ConfigError(
            f"{setting} {_safe_url(url)!r} has no scheme; write it with one, for example "
            f"https://{url.lstrip('/')}."
        )
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"{setting} {_safe_url(url)!r} uses {parts.scheme!r}; TrueFoundry receives OTLP "
            "over HTTP, so use an http:// or https:// URL."
        )
    if not parts.hostname:
        raise ConfigError(
            f"{setting} {_safe_url(url)!r} has no host name; write it as "
            "https://your-company.truefoundry.cloud."
        )
    del port
    if not _valid_host(parts.hostname):
        raise ConfigError(
            f"{setting} {_safe_url(url)!r} has a host name that cannot be reached; host names "
            "are letters, digits, '-' and dots, such as your-company.truefoundry.cloud."
        )
    return url


_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 literal, already checked by urlsplit
        return True
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return all(_LABEL.fullmatch(label) for label in labels)


def _normalize_host(url: str, setting: str) -> str:
    url = _check_url(url, setting).rstrip("/")
    for suffix in (OTEL_PATH + TRACES_SUFFIX, OTEL_PATH):
        if url.endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
    return url


def _normalize_endpoint(url: str, setting: str) -> str:
    url = _check_url(url, setting).rstrip("/")
    return url if url.endswith(TRACES_SUFFIX) else url + TRACES_SUFFIX


def _parse_bool(raw: str, setting: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{setting}={raw!r} is not a boolean; use true or false.")


def _parse_rate(raw: Any, setting: str) -> float:
    try:
        rate = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{setting} must be a number between 0 and 1 (got {raw!r}); "
            "for example 0.1 keeps one trace in ten."
        ) from None
    if not 0.0 <= rate <= 1.0 or rate != rate:
        raise ConfigError(
            f"{setting} must be between 0 and 1 (got {rate!r}); for example 0.1 keeps "
            "one trace in ten."
        )
    return rate


def _parse_timeout(raw: Any, setting: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value <= 600:
        raise ConfigError(f"{setting} must be a number of seconds between 0 and 600 (got {raw!r}).")
    return value


def _default_app_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    name = os.path.splitext(os.path.basename(path))[0] if path else ""
    if name in ("", "-c", "__main__", "pytest", "ipykernel_launcher"):
        return "python-app"
    return name


class _Env:
    """Environment reader that treats empty values as unset and records what it used."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or not value.strip():
            return None
        return value

    def first(self, option: str, skip: tuple[str, ...] = ()) -> tuple[str | None, str]:
        for var in _OPTION_BY_NAME[option].env:
            if var in skip:
                continue
            value = self.get(var)
            if value is not None:
                return value, var
        return None, "default"


def resolve(
    app_name: str | None = None,
    *,
    host: str | None = None,
    api_key: str | None = None,
    tracing_project: str | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    disable_batch: bool | None = None,
    trace_content: bool | None = None,
    sample_rate: float | None = None,
    console: bool | None = None,
    exporter: Any = None,
    instruments: Any = None,
    resource_attributes: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
    redact: Callable[[str, Any], Any] | bool | None = None,
    allow_insecure: bool | None = None,
    timeout: float | None = None,
    handle_sigterm: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve ``init()``'s arguments and the environment into :class:`Settings`.

    Raises :class:`~truefoundry_tracing.ConfigError` for any invalid value, naming the
    setting (argument or variable) and the fix. Nothing is changed by calling it.

    Example:
        >>> s = resolve(env={"TFY_HOST": "https://tfy.example.com", "TFY_API_KEY": "k" * 20})
        >>> s.sources["host"], s.traces_url
        ('TFY_HOST', 'https://tfy.example.com/api/otel/v1/traces')
    """
    e = _Env(os.environ if env is None else env)
    sources: dict[str, str] = {}
    notes: list[str] = []

    # TRACELOOP_HEADERS feeds three options at once.
    tl_headers: dict[str, str] = {}
    raw_tl = e.get("TRACELOOP_HEADERS")
    if raw_tl is not None:
        tl_headers = parse_traceloop_headers(raw_tl)
    tl_key: str | None = None
    tl_project: str | None = None
    for key in list(tl_headers):
        if key.lower() == AUTH_HEADER.lower():
            value = tl_headers.pop(key)
            scheme, _, token = value.partition(" ")
            tl_key = token.strip() if scheme.lower() == "bearer" and token.strip() else None
            if tl_key is None:
                tl_headers[AUTH_HEADER] = value
        elif key.lower() == PROJECT_HEADER.lower():
            tl_project = tl_headers.pop(key)

    # Destination. TRACELOOP_BASE_URL ending in /api/otel names a TrueFoundry host; any other
    # value names a generic OTLP collector. It has the lowest precedence of either.
    tl_base = e.get("TRACELOOP_BASE_URL")
    tl_is_tfy = tl_base is not None and tl_base.strip().rstrip("/").endswith(OTEL_PATH)
    tfy_raw, tfy_src = e.first("host", skip=("TRACELOOP_BASE_URL",))
    if tl_base is not None and tfy_raw is not None and host is None and endpoint is None:
        mine = _normalize_host(tfy_raw, tfy_src) + OTEL_PATH + TRACES_SUFFIX
        theirs = (
            _normalize_host(tl_base, "TRACELOOP_BASE_URL") + OTEL_PATH + TRACES_SUFFIX
            if tl_is_tfy
            else _normalize_endpoint(tl_base, "TRACELOOP_BASE_URL")
        )
        if mine != theirs:
            notes.append(
                f"{tfy_src} and TRACELOOP_BASE_URL name different destinations "
                f"({_safe_url(mine)} and {_safe_url(theirs)}); using {tfy_src}. "
                "Unset one of them to silence this warning."
            )
        tl_base = None

    if host is not None:
        host_v: str | None = _normalize_host(host, "host")
        sources["host"] = "argument"
    elif tfy_raw is not None:
        host_v = _normalize_host(tfy_raw, tfy_src)
        sources["host"] = tfy_src
    elif tl_base is not None and tl_is_tfy:
        host_v = _normalize_host(tl_base, "TRACELOOP_BASE_URL")
        sources["host"] = "TRACELOOP_BASE_URL"
    else:
        host_v = None
        sources["host"] = "default"

    if endpoint is not None:
        endpoint_v: str | None = _normalize_endpoint(endpoint, "endpoint")
        sources["endpoint"] = "argument"
    else:
        raw, src = e.first("endpoint", skip=("TRACELOOP_BASE_URL",))
        if raw is None and tl_base is not None and not tl_is_tfy and host is None:
            raw, src = tl_base, "TRACELOOP_BASE_URL"
        endpoint_v = _normalize_endpoint(raw, src) if raw is not None else None
        sources["endpoint"] = src

    if api_key is not None:
        key_v: str | None = api_key.strip() or None
        sources["api_key"] = "argument"
        if key_v is not None:
            _check_header_value(AUTH_HEADER, key_v, "the api_key argument")
    else:
        raw, src = e.first("api_key", skip=("TRACELOOP_HEADERS",))
        if raw is None and tl_key is not None:
            raw, src = tl_key, "TRACELOOP_HEADERS"
        key_v = raw.strip() if raw is not None else None
        if key_v is not None and src != "TRACELOOP_HEADERS":
            _check_header_value(AUTH_HEADER, key_v, src)
        sources["api_key"] = src
        if src == "TFY_API_KEY" and tl_key is not None and tl_key != key_v:
            notes.append(
                "TFY_API_KEY and the Authorization entry of TRACELOOP_HEADERS hold different "
                "keys; using TFY_API_KEY. Remove one of them to silence this warning."
            )
    if key_v is not None and key_v.lower().startswith("bearer "):
        key_v = key_v[7:].strip()

    if tracing_project is not None:
        project_v: str | None = tracing_project.strip() or None
        sources["tracing_project"] = "argument"
    else:
        raw, src = e.first("tracing_project", skip=("TRACELOOP_HEADERS",))
        if raw is None and tl_project is not None:
            raw, src = tl_project, "TRACELOOP_HEADERS"
        project_v = raw.strip() if raw is not None else None
        sources["tracing_project"] = src
    if project_v is not None:
        _check_header_value(PROJECT_HEADER, project_v, sources["tracing_project"])

    extra_headers: dict[str, str] = dict(tl_headers)
    sources["headers"] = "TRACELOOP_HEADERS" if tl_headers else "default"
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise ConfigError("headers must be a dict of header name to value.")
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ConfigError(
                    f"headers must map strings to strings; {name!r} maps to a "
                    f"{type(value).__name__}."
                )
            if not re.fullmatch(_TOKEN, name):
                raise ConfigError(
                    "headers has an invalid header name; header names are letters, digits "
                    "and '-', for example {'X-Team': 'search'}."
                )
            _check_header_value(name, value, "the headers argument")
            extra_headers[name] = value
        sources["headers"] = "argument"

    def flag(name: str, given: bool | None, default: bool) -> bool:
        if given is not None:
            sources[name] = "argument"
            return bool(given)
        raw, src = e.first(name)
        sources[name] = src
        return default if raw is None else _parse_bool(raw, src)

    disable_batch_v = flag("disable_batch", disable_batch, False)
    trace_content_v = flag("trace_content", trace_content, True)
    enabled_v = flag("enabled", enabled, True)
    allow_insecure_v = flag("allow_insecure", allow_insecure, False)
    handle_sigterm_v = flag("handle_sigterm", handle_sigterm, True)

    if sample_rate is not None:
        rate_v = _parse_rate(sample_rate, "sample_rate")
        sources["sample_rate"] = "argument"
    else:
        raw, src = e.first("sample_rate")
        rate_v = 1.0 if raw is None else _parse_rate(raw, src)
        sources["sample_rate"] = src

    if timeout is not None:
        timeout_v = _parse_timeout(timeout, "timeout")
        sources["timeout"] = "argument"
    else:
        raw, src = e.first("timeout")
        timeout_v = DEFAULT_TIMEOUT if raw is None else _parse_timeout(raw, src)
        sources["timeout"] = src

    if app_name is not None:
        if not isinstance(app_name, str) or not app_name.strip():
            raise ConfigError("app_name must be a non-empty string, such as 'support-bot'.")
        app_v = app_name.strip()
        sources["app_name"] = "argument"
    else:
        raw, src = e.first("app_name")
        app_v = raw.strip() if raw is not None else _default_app_name()
        sources["app_name"] = src

    if instruments is not None:
        instruments_v: tuple[str, ...] | None = _instrument_names(instruments, "instruments")
        sources["instruments"] = "argument"
    else:
        raw, src = e.first("instruments")
        instruments_v = None if raw is None else _instrument_names(raw.split(","), src)
        sources["instruments"] = src

    if exporter is not None and not (hasattr(exporter, "export") and hasattr(exporter, "shutdown")):
        raise ConfigError(
            "exporter must be an OpenTelemetry SpanExporter (an object with export() and "
            f"shutdown()); got {type(exporter).__name__}."
        )
    sources["exporter"] = "argument" if exporter is not None else "default"

    if redact is not None and not (isinstance(redact, bool) or callable(redact)):
        raise ConfigError("redact must be a callable (key, value) -> value, True or False.")
    sources["redact"] = "argument" if redact is not None else "default"

    if resource_attributes is not None and not isinstance(resource_attributes, Mapping):
        raise ConfigError("resource_attributes must be a dict of attribute name to value.")
    sources["resource_attributes"] = "argument" if resource_attributes else "default"

    has_destination = bool(host_v or endpoint_v or exporter is not None)
    if console is not None:
        console_v = bool(console)
        sources["console"] = "argument"
    else:
        raw, src = e.first("console")
        console_v = (not has_destination) if raw is None else _parse_bool(raw, src)
        sources["console"] = src

    settings = Settings(
        app_name=app_v,
        host=host_v,
        endpoint=endpoint_v,
        api_key=key_v,
        tracing_project=project_v,
        headers=extra_headers,
        disable_batch=disable_batch_v,
        trace_content=trace_content_v,
        sample_rate=rate_v,
        console=console_v,
        exporter=exporter,
        instruments=instruments_v,
        resource_attributes=dict(resource_attributes or {}),
        enabled=enabled_v,
        redact=redact,
        allow_insecure=allow_insecure_v,
        timeout=timeout_v,
        handle_sigterm=handle_sigterm_v,
        sources=sources,
        warnings=tuple(notes),
    )
    _check_transport(settings)
    return settings


def _instrument_names(value: Any, setting: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    names: list[str] = []
    try:
        items = list(value)
    except TypeError:
        raise ConfigError(
            f"{setting} must be a list of library names such as ['openai', 'langchain']."
        ) from None
    for item in items:
        name = getattr(item, "value", item)
        if not isinstance(name, str):
            raise ConfigError(
                f"{setting} must contain library names as strings; got {type(name).__name__}."
            )
        name = name.strip().lower()
        if name:
            names.append(name)
    from ._instruments import check_names

    return check_names(names, setting)


def _check_transport(settings: Settings) -> None:
    url = settings.traces_url
    if url is None or not settings.api_key or settings.allow_insecure:
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ConfigError(
            f"refusing to send the API key over plain http to {parts.hostname}: anyone on the "
            "network could read it. Use an https:// URL, or pass allow_insecure=True "
            "(TFY_TRACING_ALLOW_INSECURE=true) if the network is trusted."
        )
