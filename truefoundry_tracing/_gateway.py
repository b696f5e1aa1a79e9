"""Headers for TrueFoundry's AI gateway: ``X-TFY-METADATA``, logging config, metadata scopes.

``X-TFY-METADATA`` is a JSON object of string keys to string values (each value at most 128
characters) that the gateway uses to filter its request logs and metrics and to drive its
rate-limit, budget, routing and guardrail rules. Everything here validates before anything is
sent, so a bad value fails where it was written, with a ``ValueError`` naming the key.

:func:`gateway_metadata` keeps metadata in the OpenTelemetry context (it therefore follows
asyncio tasks, and threads once the threading instrumentation is installed); the gateway
client of :mod:`truefoundry_tracing.gateway` reads it when each request is sent.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._errors import ConfigError

__all__ = [
    "LOGGING_CONFIG_HEADER",
    "LOG_REQUEST_KEY",
    "MAX_VALUE_LENGTH",
    "METADATA_HEADER",
    "SPAN_ATTRIBUTE_PREFIX",
    "TRACE_ID_KEY",
    "check_metadata",
    "gateway_headers",
    "gateway_metadata",
    "outgoing_metadata",
    "parse_metadata",
    "record_on_llm_span",
    "record_on_span_start",
    "scoped_metadata",
    "serialize_metadata",
]

logger = logging.getLogger("truefoundry_tracing")

METADATA_HEADER = "X-TFY-METADATA"
LOGGING_CONFIG_HEADER = "X-TFY-LOGGING-CONFIG"
#: Metadata key carrying the app's trace id (32 lowercase hex digits) on gateway requests.
TRACE_ID_KEY = "tfy_trace_id"
#: The gateway's legacy per-request logging switch, inside ``X-TFY-METADATA``.
LOG_REQUEST_KEY = "tfy_log_request"
MAX_VALUE_LENGTH = 128
#: Metadata is recorded on spans as ``tfy.gateway.metadata.<key>``.
SPAN_ATTRIBUTE_PREFIX = "tfy.gateway.metadata."
_CONTEXT_KEY = "tfy_gateway_metadata"
# Attributes an LLM instrumentation sets when it starts its span: 0.40+ lines write
# gen_ai.operation.name (and gen_ai.provider.name), 0.38 writes llm.request.type and gen_ai.system.
_LLM_SPAN_MARKERS = (
    "gen_ai.operation.name",
    "llm.request.type",
    "gen_ai.system",
    "gen_ai.provider.name",
)
_BAD_CATEGORIES = frozenset({"Cc", "Cs"})  # control characters; lone surrogates
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})")
_warned: set[str] = set()


def _name(key: str) -> str:
    return repr(key if len(key) <= 40 else key[:40] + "…")


def _bad_char(text: str) -> bool:
    return any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in text)


def check_metadata(metadata: object, where: str = "metadata") -> dict[str, str]:
    """A validated copy of ``metadata``; ``ConfigError`` (a ``ValueError``) naming the bad key.

    Rules: a mapping of non-empty string keys to string values, each value at most 128
    characters, no control characters (line breaks, tabs, NUL) in keys or values.
    """
    if not isinstance(metadata, Mapping):
        raise ConfigError(
            f"{where} must be a dict of string keys to string values, not "
            f"{type(metadata).__name__}; for example {{'customer_id': 'c-1'}}."
        )
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ConfigError(
                f"{where} has a key of type {type(key).__name__} ({key!r:.40}); "
                "keys must be strings."
            )
        if not key:
            raise ConfigError(f"{where} has an empty key; give every value a name.")
        if _bad_char(key):
            raise ConfigError(
                f"{where} key {_name(key)} contains a control character (line break, tab or "
                "NUL) or invalid Unicode; use printable text."
            )
        if not isinstance(value, str):
            hint = ' (write "true" or "false")' if isinstance(value, bool) else ""
            raise ConfigError(
                f"{where} key {_name(key)} has a value of type {type(value).__name__}; the "
                f"gateway accepts only string values{hint}, so convert it with str()."
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise ConfigError(
                f"{where} key {_name(key)} has a value of {len(value)} characters; the "
                f"gateway accepts at most {MAX_VALUE_LENGTH}, so shorten it (or send an id "
                "instead of the text)."
            )
        if _bad_char(value):
            raise ConfigError(
                f"{where} key {_name(key)} has a value with a control character (line "
                "break, tab or NUL) or invalid Unicode; use printable text."
            )
        out[key] = value
    return out


def serialize_metadata(metadata: Mapping[str, str]) -> str:
    """The header value for already-checked metadata: compact JSON, ASCII only."""
    return json.dumps(dict(metadata), ensure_ascii=True, separators=(",", ":"))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(
                f"{METADATA_HEADER} names the key {_name(key)} twice; keep one of them."
            )
        out[key] = value
    return out


def parse_metadata(value: str | bytes) -> dict[str, str]:
    """Parse and validate an ``X-TFY-METADATA`` header value someone else wrote.

    Returns the metadata as a dict; raises ``ValueError`` (a
    :class:`~truefoundry_tracing.ConfigError`) naming the bad key when the value is not a JSON
    object of strings to strings the gateway accepts. Never raises anything else.

    Example:
        >>> import truefoundry_tracing as tt
        >>> tt.parse_metadata('{"tfy_log_request": "true", "customer_id": "c-1"}')
        {'tfy_log_request': 'true', 'customer_id': 'c-1'}
        >>> tt.parse_metadata('{"tfy_log_request": true}')
        Traceback (most recent call last):
        ...
        truefoundry_tracing._errors.ConfigError: X-TFY-METADATA key 'tfy_log_request' has a value of type bool; the gateway accepts only string values (write "true" or "false"), so convert it with str().
    """  # noqa: E501
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{METADATA_HEADER} is not valid UTF-8 text.") from None
    if not isinstance(value, str):
        raise ConfigError(
            f"{METADATA_HEADER} must be given as a string (the header value), not "
            f"{type(value).__name__}."
        )
    try:
        data = json.loads(value, object_pairs_hook=_no_duplicates)
    except ConfigError:
        raise
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "too deeply nested"
        raise ConfigError(
            f"{METADATA_HEADER} is not valid JSON ({reason}); write it as a JSON object such "
            'as {"customer_id": "c-1"}.'
        ) from None
    return check_metadata(data, METADATA_HEADER)


def _logging_config(config: object) -> str:
    if isinstance(config, bool):
        body: dict[str, Any] = {"enabled": config}
    elif isinstance(config, str):
        if not config.strip() or _bad_char(config):
            raise ConfigError(
                "logging_config as a string is a tracing project FQN such as "
                "'tenant:tracing-project:my-project'; it is empty or has a control character."
            )
        body = {"enabled": True, "tracing_project_fqn": config.strip()}
    elif isinstance(config, Mapping):
        body = dict(config)
        if not isinstance(body.get("enabled"), bool):
            raise ConfigError(
                "logging_config needs an 'enabled' key set to True or False, as in "
                "{'enabled': True, 'tracing_project_fqn': '<fqn>'}."
            )
        fqn = body.get("tracing_project_fqn")
        if fqn is not None and (not isinstance(fqn, str) or not fqn or _bad_char(fqn)):
            raise ConfigError(
                "logging_config key 'tracing_project_fqn' must be a tracing project FQN "
                "string such as 'tenant:tracing-project:my-project'."
            )
    else:
        raise ConfigError(
            "logging_config must be True/False, a tracing project FQN string, or a dict such "
            f"as {{'enabled': True}}; got {type(config).__name__}."
        )
    try:
        return json.dumps(body, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"logging_config cannot be written as JSON ({exc}).") from None


def gateway_headers(
    metadata: Mapping[str, str] | None = None,
    *,
    log_request: bool | None = None,
    logging_config: bool | str | Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Gateway request headers, validated, ready for ``extra_headers=`` or ``default_headers=``.

    - ``metadata``: sent as ``X-TFY-METADATA`` (compact JSON). String keys and values only,
      each value at most 128 characters, no control characters; otherwise ``ValueError``
      (a :class:`~truefoundry_tracing.ConfigError`) naming the key.
    - ``log_request``: sets the legacy ``tfy_log_request`` metadata key to ``"true"`` or
      ``"false"`` (it wins over the same key in ``metadata``).
    - ``logging_config``: builds ``X-TFY-LOGGING-CONFIG``: ``True`` / ``False`` for
      ``{"enabled": ...}``, a tracing project FQN string for
      ``{"enabled": true, "tracing_project_fqn": ...}``, or a dict sent as given.

    Only what is passed is included; the gateway client of
    :mod:`truefoundry_tracing.gateway` adds the scoped metadata and the trace id per request.

    Example:
        >>> import truefoundry_tracing as tt
        >>> tt.gateway_headers({"customer_id": "c-1"}, log_request=True)
        {'X-TFY-METADATA': '{"customer_id":"c-1","tfy_log_request":"true"}'}
        >>> tt.gateway_headers(logging_config="tenant:tracing-project:bots")
        {'X-TFY-LOGGING-CONFIG': '{"enabled":true,"tracing_project_fqn":"tenant:tracing-project:bots"}'}
    """  # noqa: E501
    md = check_metadata(metadata) if metadata is not None else {}
    if log_request is not None:
        if not isinstance(log_request, bool):
            raise ConfigError(
                f"log_request must be True or False, not {type(log_request).__name__}."
            )
        md[LOG_REQUEST_KEY] = "true" if log_request else "false"
    headers: dict[str, str] = {}
    if md:
        headers[METADATA_HEADER] = serialize_metadata(md)
    if logging_config is not None:
        headers[LOGGING_CONFIG_HEADER] = _logging_config(logging_config)
    return headers


def scoped_metadata() -> dict[str, str]:
    """The metadata of the enclosing :func:`gateway_metadata` blocks (empty outside them)."""
    from opentelemetry import context as context_api

    value = context_api.get_value(_CONTEXT_KEY)
    return dict(value) if isinstance(value, Mapping) else {}


@contextmanager
def gateway_metadata(
    metadata: Mapping[str, str] | None = None, /, **values: str
) -> Iterator[dict[str, str]]:
    """Send metadata with every gateway call made inside the block.

    Keys come from a mapping (for names that are not Python identifiers) and keyword
    arguments; both are validated now, so a bad value raises ``ValueError`` naming the key
    before anything is sent. Nested blocks merge, inner keys winning. The metadata follows
    asyncio tasks and threads started inside the block (through OpenTelemetry's threading
    instrumentation, which this installs if ``init()`` has not). The new keys are recorded on
    the current span as ``tfy.gateway.metadata.<key>``, and every LLM span started inside the
    block (``openai.chat``, ``openai.embeddings``...) carries all the scoped keys the same way.
    Yields the merged metadata.

    The clients of :mod:`truefoundry_tracing.gateway` read it at request time; with another
    client, pass ``extra_headers=gateway_headers(metadata)`` yourself.

    Example:
        >>> import truefoundry_tracing as tt
        >>> with tt.gateway_metadata(customer_id="c-1", feature="search"):
        ...     with tt.gateway_metadata({"feature": "answer"}) as md:
        ...         print(md)
        {'customer_id': 'c-1', 'feature': 'answer'}
    """
    from opentelemetry import context as context_api
    from opentelemetry import trace

    from ._api import _ensure_threading
    from ._enrich import register_start_hook

    new = check_metadata(metadata, "gateway_metadata") if metadata is not None else {}
    new.update(check_metadata(values, "gateway_metadata"))
    _ensure_threading()
    register_start_hook(record_on_span_start)
    merged = {**scoped_metadata(), **new}
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in new.items():
            span.set_attribute(SPAN_ATTRIBUTE_PREFIX + key, value)
    token = context_api.attach(context_api.set_value(_CONTEXT_KEY, merged))
    try:
        yield dict(merged)
    finally:
        context_api.detach(token)


def _trace_id(traceparent: str | None) -> str | None:
    """The sampled trace the request belongs to: its ``traceparent``, else the current span."""
    if traceparent:
        m = _TRACEPARENT.fullmatch(traceparent.strip())
        if m and m.group(1) != "0" * 32:
            return m.group(1) if int(m.group(2), 16) & 1 else None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid and ctx.trace_flags.sampled:
        return format(ctx.trace_id, "032x")
    return None


def outgoing_metadata(
    header: str | None,
    fixed: Mapping[str, str],
    *,
    trace_id: bool,
    traceparent: str | None = None,
) -> dict[str, str] | None:
    """What one gateway request should carry in ``X-TFY-METADATA``.

    Lowest to highest precedence: the trace id, the client's fixed metadata, the scoped
    metadata, the request's own header. None means: leave the request as it is (its own
    header is invalid, which is logged once; the gateway will report it).
    """
    merged: dict[str, str] = {}
    if trace_id:
        tid = _trace_id(traceparent)
        if tid is not None:
            merged[TRACE_ID_KEY] = tid
    merged.update(fixed)
    merged.update(scoped_metadata())
    if header is not None:
        try:
            merged.update(parse_metadata(header))
        except ValueError as exc:
            cause = str(exc).split(";")[0]
            if cause not in _warned:
                _warned.add(cause)
                logger.warning(
                    "truefoundry_tracing: sending a request's own %s unchanged, without the "
                    "scoped metadata or trace id, because it is invalid: %s",
                    METADATA_HEADER,
                    exc,
                )
            return None
    return merged


def record_on_llm_span(metadata: Mapping[str, str]) -> None:
    """Record what the gateway is told on the current span when it is an LLM client span."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    span = trace.get_current_span()
    if span.is_recording() and getattr(span, "kind", None) is SpanKind.CLIENT:
        for key, value in metadata.items():
            span.set_attribute(SPAN_ATTRIBUTE_PREFIX + key, value)


def record_on_span_start(span: Any, ctx: Mapping[str, object]) -> None:
    """Put the scoped metadata on ``span`` as it starts, when it is an LLM call's span.

    The root span processor calls this for every span with the current context, so outside
    :func:`gateway_metadata` blocks it costs one dictionary lookup. It works whether or not the
    instrumentation makes its span current while the request is sent (traceloop 0.38 does not,
    so :func:`record_on_llm_span` cannot see the span there).
    """
    metadata = ctx.get(_CONTEXT_KEY)
    if not metadata or not isinstance(metadata, Mapping):
        return
    attributes = span.attributes
    if not attributes or not any(marker in attributes for marker in _LLM_SPAN_MARKERS):
        return
    for key, value in metadata.items():
        span.set_attribute(SPAN_ATTRIBUTE_PREFIX + key, value)
