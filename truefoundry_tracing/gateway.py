"""OpenAI clients for TrueFoundry's AI gateway that say who is calling, and from which trace.

Each request these clients send carries ``X-TFY-METADATA`` built at request time from, lowest
precedence first: the current trace's id (key ``tfy_trace_id``, unless ``trace_id=False``), the
client's fixed ``metadata``, the enclosing :func:`~truefoundry_tracing.gateway_metadata`
blocks, and the request's own ``X-TFY-METADATA`` header (from ``extra_headers``). The gateway
starts a new trace for each call rather than continuing the app's, so ``tfy_trace_id`` is how a
gateway request log is matched to the app's trace. Calls are traced by the OpenAI
instrumentation as usual.

Where the gateway is, first found wins: the ``base_url`` argument, ``TFY_GATEWAY_URL`` (the
full OpenAI-compatible URL), ``<host>/api/llm`` with the host of ``init()`` or ``TFY_HOST``.
The key: the ``api_key`` argument, else ``init()``'s or ``TFY_API_KEY``. Needs ``openai``
(``pip install "truefoundry-tracing[openai]"``).

Example:
    >>> import truefoundry_tracing as tt
    >>> from truefoundry_tracing import gateway
    >>> client = gateway.openai_client(  # doctest: +SKIP
    ...     "https://tfy.example.com/api/llm", api_key="tfy-...", metadata={"app": "bot"}
    ... )
    >>> with tt.gateway_metadata(customer_id="c-1"):  # doctest: +SKIP
    ...     client.chat.completions.create(model="openai-main/gpt-4o", messages=[...])
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._config._gateway import GATEWAY_PATH, GATEWAY_URL_ENV
from ._errors import MissingDependencyError
from ._gateway import (
    METADATA_HEADER,
    TRACE_ID_KEY,
    check_metadata,
    gateway_headers,
    gateway_metadata,
    outgoing_metadata,
    parse_metadata,
    record_on_llm_span,
    serialize_metadata,
)

if TYPE_CHECKING:
    import httpx
    import openai

__all__ = [
    "GATEWAY_PATH",
    "GATEWAY_URL_ENV",
    "TRACE_ID_KEY",
    "async_http_client",
    "async_openai_client",
    "gateway_headers",
    "gateway_metadata",
    "http_client",
    "openai_client",
    "parse_metadata",
]

logger = logging.getLogger("truefoundry_tracing")


class _RequestHook:
    """httpx request hook: writes the metadata into the request as it is sent."""

    def __init__(self, fixed: Mapping[str, str], trace_id: bool) -> None:
        self.fixed = dict(fixed)
        self.trace_id = trace_id
        self._failed = False

    def apply(self, request: httpx.Request) -> None:
        try:
            metadata = outgoing_metadata(
                request.headers.get(METADATA_HEADER),
                self.fixed,
                trace_id=self.trace_id,
                traceparent=request.headers.get("traceparent"),
            )
            if metadata:
                request.headers[METADATA_HEADER] = serialize_metadata(metadata)
                record_on_llm_span(metadata)
        except Exception:  # the app's call must go through whatever happens here
            if not self._failed:
                self._failed = True
                logger.warning(
                    "truefoundry_tracing: could not add gateway metadata to a request",
                    exc_info=True,
                )

    def __call__(self, request: httpx.Request) -> None:
        self.apply(request)


class _AsyncRequestHook(_RequestHook):
    async def __call__(self, request: httpx.Request) -> None:  # type: ignore[override]
        self.apply(request)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise MissingDependencyError("openai", "openai") from None
    return openai


def _add_hook(client: Any, hook: _RequestHook) -> Any:
    hooks = {name: list(funcs) for name, funcs in client.event_hooks.items()}
    hooks.setdefault("request", []).append(hook)
    client.event_hooks = hooks
    return client


def _fixed(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return check_metadata(metadata, "metadata") if metadata is not None else {}


def _target(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """The gateway URL and key, from arguments, init()'s settings and the environment."""
    from . import _api
    from ._config._gateway import gateway_target

    return gateway_target(base_url, api_key, lambda: _api._settings, _api._effective_env())


def _prepare(
    base_url: str | None,
    api_key: str | None,
    metadata: Mapping[str, str] | None,
    logging_config: bool | str | Mapping[str, Any] | None,
    kwargs: dict[str, Any],
) -> tuple[dict[str, str], dict[str, Any]]:
    fixed = _fixed(metadata)
    headers = dict(kwargs.pop("default_headers", None) or {})
    if logging_config is not None:
        headers.update(gateway_headers(logging_config=logging_config))
    url, key = _target(base_url, api_key)
    options = {"base_url": url, "api_key": key, **kwargs}
    if headers:
        options["default_headers"] = headers
    return fixed, options


def openai_client(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
    logging_config: bool | str | Mapping[str, Any] | None = None,
    trace_id: bool = True,
    **kwargs: Any,
) -> openai.OpenAI:
    """A real ``openai.OpenAI`` pointed at TrueFoundry's AI gateway.

    ``metadata`` is sent with every request (scoped metadata and per-call headers win over
    it); ``logging_config`` sets ``X-TFY-LOGGING-CONFIG`` on every request (see
    :func:`~truefoundry_tracing.gateway_headers`); ``trace_id=False`` leaves out
    ``tfy_trace_id``. Other keyword arguments go to ``openai.OpenAI`` (``max_retries``,
    ``timeout``, ``default_headers``...); a given ``http_client`` gets a request hook added.
    Raises :class:`~truefoundry_tracing.ConfigError` when no URL or key is found and
    :class:`~truefoundry_tracing.MissingDependencyError` when ``openai`` is not installed.

    Example:
        >>> from truefoundry_tracing import gateway
        >>> client = gateway.openai_client("http://127.0.0.1:8000/api/llm", api_key="tfy-k")
        >>> str(client.base_url)
        'http://127.0.0.1:8000/api/llm/'
        >>> client.close()
    """
    oa = _import_openai()
    fixed, options = _prepare(base_url, api_key, metadata, logging_config, kwargs)
    hook = _RequestHook(fixed, trace_id)
    http = options.pop("http_client", None)
    options["http_client"] = _add_hook(http if http is not None else _httpx_classes()[0](), hook)
    client: openai.OpenAI = oa.OpenAI(**options)
    return client


def async_openai_client(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
    logging_config: bool | str | Mapping[str, Any] | None = None,
    trace_id: bool = True,
    **kwargs: Any,
) -> openai.AsyncOpenAI:
    """A real ``openai.AsyncOpenAI`` pointed at TrueFoundry's AI gateway.

    Same arguments and behaviour as :func:`openai_client`; the metadata follows asyncio tasks.

    Example:
        >>> from truefoundry_tracing import gateway
        >>> client = gateway.async_openai_client("https://tfy.example.com/api/llm", api_key="k")
        >>> str(client.base_url)
        'https://tfy.example.com/api/llm/'
    """
    oa = _import_openai()
    fixed, options = _prepare(base_url, api_key, metadata, logging_config, kwargs)
    hook = _AsyncRequestHook(fixed, trace_id)
    http = options.pop("http_client", None)
    options["http_client"] = _add_hook(http if http is not None else _httpx_classes()[1](), hook)
    client: openai.AsyncOpenAI = oa.AsyncOpenAI(**options)
    return client


def _httpx_classes() -> tuple[Any, Any]:
    with contextlib.suppress(ImportError, AttributeError):  # openai < 1.17 has no defaults
        import openai

        return openai.DefaultHttpxClient, openai.DefaultAsyncHttpxClient
    try:
        import httpx
    except ImportError:
        raise MissingDependencyError("httpx", "openai") from None
    return httpx.Client, httpx.AsyncClient


def http_client(
    *, metadata: Mapping[str, str] | None = None, trace_id: bool = True, **kwargs: Any
) -> httpx.Client:
    """An ``httpx.Client`` that adds the gateway metadata to each request, for other SDKs.

    Pass it to any client built on httpx that calls the gateway, for example LangChain's
    ``ChatOpenAI(http_client=...)`` or ``openai.OpenAI(http_client=...)``. Keyword arguments
    go to the client (openai's defaults are used when openai is installed).

    Example:
        >>> from truefoundry_tracing import gateway
        >>> with gateway.http_client(metadata={"team": "search"}) as http:
        ...     len(http.event_hooks["request"])
        1
    """
    fixed = _fixed(metadata)
    sync_cls, _ = _httpx_classes()
    return _add_hook(sync_cls(**kwargs), _RequestHook(fixed, trace_id))  # type: ignore[no-any-return]


def async_http_client(
    *, metadata: Mapping[str, str] | None = None, trace_id: bool = True, **kwargs: Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that adds the gateway metadata to each request.

    The asynchronous twin of :func:`http_client`.

    Example:
        >>> from truefoundry_tracing import gateway
        >>> http = gateway.async_http_client(trace_id=False)
        >>> len(http.event_hooks["request"])
        1
    """
    fixed = _fixed(metadata)
    _, async_cls = _httpx_classes()
    return _add_hook(async_cls(**kwargs), _AsyncRequestHook(fixed, trace_id))  # type: ignore[no-any-return]
