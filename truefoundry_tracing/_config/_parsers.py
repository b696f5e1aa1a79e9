"""Parsers and checks for single setting values: URLs, booleans, numbers, header values.

Each parser takes the raw value and ``setting``, the name to blame in messages (an environment
variable's name, or the argument's), and returns the clean value or raises
:class:`SettingError` (a :class:`~truefoundry_tracing.ConfigError`) whose message names the
setting and the fix. :func:`is_loopback` is the library's one answer to "does this host name
only reach this machine?".
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Any

from .._errors import ConfigError

__all__ = [
    "AUTH_HEADER",
    "PROJECT_HEADER",
    "TRACES_SUFFIX",
    "TRUEFOUNDRY_PATH",
    "SettingError",
    "check_header_name",
    "check_header_value",
    "check_url",
    "instrument_names",
    "is_loopback",
    "normalize_endpoint",
    "normalize_host",
    "parse_bool",
    "parse_rate",
    "parse_timeout",
    "parse_traceloop_headers",
    "safe_url",
    "suggest_url",
]

AUTH_HEADER = "Authorization"
PROJECT_HEADER = "TFY-Tracing-Project"
TRUEFOUNDRY_PATH = "/api/otel"
TRACES_SUFFIX = "/v1/traces"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class SettingError(ConfigError):
    """A :class:`ConfigError` that also carries its fix as one sentence, and what is usable.

    ``fix`` is the action alone (``doctor`` prints it as the action); ``usable`` is the part
    of the value that can still be used when the value came from the environment (the known
    names of a list with one typo), or None.

    Example:
        >>> err = SettingError("TFY_HOST 'x' has no scheme.", fix="Set TFY_HOST to https://x.")
        >>> str(err), err.fix
        ("TFY_HOST 'x' has no scheme.", 'Set TFY_HOST to https://x.')
    """

    def __init__(self, message: str, *, fix: str = "", usable: Any = None) -> None:
        super().__init__(message)
        self.fix = fix
        self.usable = usable


def is_loopback(host: str | None) -> bool:
    """True for a host name or address only this machine can reach.

    ``localhost`` and its subdomains, ``127.0.0.0/8`` and ``::1``, with or without IPv6
    brackets, in any case.

    Example:
        >>> [is_loopback(h) for h in ("127.0.0.1", "[::1]", "LocalHost", "api.localhost")]
        [True, True, True, True]
        >>> [is_loopback(h) for h in ("10.0.0.5", "example.com", "", None)]
        [False, False, False, False]
    """
    if not host:
        return False
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def safe_url(url: str) -> str:
    """The URL with any ``user:password@`` part hidden, for messages.

    Example:
        >>> safe_url("https://me:secret@tfy.example.com/x")
        'https://***@tfy.example.com/x'
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" in parts.netloc:
        netloc = "***@" + parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def suggest_url(written: str) -> str:
    """``written`` with the scheme it most likely lacks: http for loopback, https otherwise.

    Example:
        >>> suggest_url("127.0.0.1:4318"), suggest_url("acme.truefoundry.cloud/")
        ('http://127.0.0.1:4318', 'https://acme.truefoundry.cloud/')
    """
    rest = written.strip().lstrip("/")
    try:
        hostname = urllib.parse.urlsplit("//" + rest).hostname
    except ValueError:
        hostname = None
    return ("http://" if is_loopback(hostname) else "https://") + rest


def check_url(url: str, setting: str) -> str:
    """``url`` stripped, if it is an http(s) URL with a valid host name; else SettingError.

    Example:
        >>> check_url(" https://acme.example.com ", "TFY_HOST")
        'https://acme.example.com'
        >>> try:
        ...     check_url("localhost:4318", "TFY_HOST")
        ... except SettingError as err:
        ...     print(err.fix)
        Set TFY_HOST to http://localhost:4318.
    """
    url = url.strip()
    example = "https://your-company.truefoundry.cloud"
    if any(ch in url for ch in "\r\n\x00 \t"):
        raise SettingError(
            f"{setting} contains white space or a line break; set it to a plain URL such as "
            f"{example}."
        )
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise SettingError(
            f"{setting} {safe_url(url)!r} is not a valid URL ({exc}); set it to a URL such as "
            f"{example}."
        ) from None
    if "://" not in url:
        fixed = safe_url(suggest_url(url))
        raise SettingError(
            f"{setting} {safe_url(url)!r} has no scheme; write it with one: {fixed}.",
            fix=f"Set {setting} to {fixed}.",
        )
    if parts.scheme not in ("http", "https"):
        raise SettingError(
            f"{setting} {safe_url(url)!r} uses {parts.scheme!r}; TrueFoundry receives OTLP "
            "over HTTP, so use an http:// or https:// URL."
        )
    if not parts.hostname:
        raise SettingError(f"{setting} {safe_url(url)!r} has no host name; write it as {example}.")
    if not _valid_host(parts.hostname):
        raise SettingError(
            f"{setting} {safe_url(url)!r} has a host name that cannot be reached; host names "
            "are letters, digits, '-' and dots, such as your-company.truefoundry.cloud."
        )
    return url


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 literal, already checked by urlsplit
        return True
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return all(_LABEL.fullmatch(label) for label in labels)


def normalize_host(url: str, setting: str) -> str:
    """A control-plane URL without a trailing slash or a pasted ``/api/otel[/v1/traces]``.

    Example:
        >>> normalize_host("https://acme.example.com/api/otel/", "host")
        'https://acme.example.com'
    """
    url = check_url(url, setting).rstrip("/")
    for suffix in (TRUEFOUNDRY_PATH + TRACES_SUFFIX, TRUEFOUNDRY_PATH):
        if url.endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
    return url


def normalize_endpoint(url: str, setting: str) -> str:
    """An OTLP/HTTP base URL as the traces URL: ``/v1/traces`` appended unless present.

    Example:
        >>> normalize_endpoint("http://localhost:4318/", "endpoint")
        'http://localhost:4318/v1/traces'
    """
    url = check_url(url, setting).rstrip("/")
    return url if url.endswith(TRACES_SUFFIX) else url + TRACES_SUFFIX


def parse_bool(raw: Any, setting: str) -> bool:
    """A boolean: a bool as given, or one of 1/0, true/false, yes/no, on/off in any case.

    Example:
        >>> parse_bool(" On ", "TFY_TRACING_CONSOLE"), parse_bool(False, "console")
        (True, False)
    """
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(f"{setting}={raw!r} is not a boolean; use true or false.")


def parse_rate(raw: Any, setting: str) -> float:
    """A sample rate between 0 and 1, from a number or its text.

    Example:
        >>> parse_rate("0.25", "TFY_TRACING_SAMPLE_RATE")
        0.25
    """
    hint = "for example 0.1 keeps one trace in ten."
    try:
        rate = float(raw)
    except (TypeError, ValueError):
        raise SettingError(
            f"{setting} must be a number between 0 and 1 (got {raw!r}); {hint}"
        ) from None
    if not 0.0 <= rate <= 1.0 or rate != rate:
        raise SettingError(f"{setting} must be between 0 and 1 (got {rate!r}); {hint}")
    return rate


def parse_timeout(raw: Any, setting: str) -> float:
    """A number of seconds, above 0 and at most 600.

    Example:
        >>> parse_timeout("2.5", "TFY_TRACING_TIMEOUT")
        2.5
    """
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value <= 600:
        raise SettingError(
            f"{setting} must be a number of seconds between 0 and 600 (got {raw!r})."
        )
    return value


def _header_label(name: str) -> str:
    if name == AUTH_HEADER:
        return "the API key"
    # Quote names that look like header names; a mangled entry's "name" may hold a key.
    return f"header {name!r}" if re.fullmatch(r"[A-Za-z]+(-[A-Za-z]+)*", name) else "a header"


def check_header_value(name: str, value: str, source: str) -> str:
    """``value`` if HTTP can carry it as header ``name``; else SettingError (never echoing it).

    Example:
        >>> check_header_value("X-Team", "search", "headers")
        'search'
    """
    what = _header_label(name)
    if "\r" in value or "\n" in value or "\x00" in value:
        raise SettingError(
            f"{what} from {source} contains a line break or NUL character; remove it "
            "(a trailing newline often comes from reading the key from a file)."
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise SettingError(
            f"{what} from {source} contains a character HTTP headers cannot carry (often a "
            "pasted '…' or a curly quote); retype it."
        ) from None
    return value


def check_header_name(name: str, setting: str) -> str:
    """``name`` if it is a valid HTTP header name; else SettingError.

    Example:
        >>> check_header_name("X-Team", "headers")
        'X-Team'
    """
    if not re.fullmatch(_TOKEN, name):
        raise SettingError(
            f"{setting} has an invalid header name; header names are letters, digits "
            "and '-', for example {'X-Team': 'search'}."
        )
    return name


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
            raise SettingError(
                f"{source} has an entry without 'name=value' (entry {len(out) + 1}); "
                "write it as Authorization=Bearer <key>,TFY-Tracing-Project=<fqn>."
            )
        if not re.fullmatch(_TOKEN, key):
            # The bad name is not quoted: in a mangled entry it may be part of the API key.
            raise SettingError(
                f"{source} has an invalid header name in entry {len(out) + 1}; header names "
                "are letters, digits and '-', written as Authorization=Bearer <key>."
            )
        value = urllib.parse.unquote(value).strip().strip("\"'").strip()
        out[key] = check_header_value(key, value, source)
    return out


def instrument_names(value: Any, setting: str) -> tuple[str, ...]:
    """Canonical library names from a list (or a comma-separated string, as in a variable).

    An unknown name raises SettingError whose ``usable`` holds the known names, so a typo in
    the environment still instruments the rest.

    Example:
        >>> instrument_names("OpenAI, langgraph", "TFY_TRACING_INSTRUMENTS")
        ('openai', 'langchain')
    """
    from .._instrument_table import KNOWN, check_names

    items = value.split(",") if isinstance(value, str) else value
    try:
        items = list(items)
    except TypeError:
        raise SettingError(
            f"{setting} must be a list of library names such as ['openai', 'langchain']."
        ) from None
    names: list[str] = []
    for item in items:
        name = getattr(item, "value", item)
        if not isinstance(name, str):
            raise SettingError(
                f"{setting} must contain library names as strings; got {type(name).__name__}."
            )
        if name.strip():
            names.append(name.strip().lower())
    try:
        return check_names(names, setting)
    except ConfigError as err:
        known = tuple(n for n in names if n in KNOWN or _known_alias(n))
        raise SettingError(str(err), usable=check_names(known, setting)) from None


def _known_alias(name: str) -> bool:
    from .._instrument_table import check_names

    try:
        check_names([name])
    except ConfigError:
        return False
    return True
