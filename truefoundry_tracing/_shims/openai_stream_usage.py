"""Token usage of streamed OpenAI calls on the traceloop 0.38 line.

opentelemetry-instrumentation-openai 0.38 counts the tokens of a streamed completion only with
tiktoken, which ``init()`` keeps off (it downloads encodings), and ignores the ``usage`` the
server sends in its last chunk (``stream_options={"include_usage": True}``, or a gateway that
always sends it). The LLM span of every stream had no token counts on that line.

This shim copies that usage into the response the instrumentation assembles from the chunks,
so the instrumentation's own code writes it when the stream ends, under the names it uses for a
call that is not streamed: ``gen_ai.usage.prompt_tokens``, ``gen_ai.usage.completion_tokens``
and ``llm.usage.total_tokens``. When the stream carries usage, the instrumentation's tiktoken
estimate is skipped (the server's figures replace it, nothing is counted twice) and its token
metric is recorded from that usage; a stream without usage is handled exactly as before.

Covered: chat completions, sync and async, read by plain iteration or inside ``with`` /
``async with`` (they all pass through the one accumulator wrapped here), and legacy completions.
Calls that are not streamed never reach the wrapped functions, so they cost nothing more.
0.38 has no instrumentation of the Responses API at all: such calls get no span, streamed or not.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["applies", "apply"]

logger = logging.getLogger("truefoundry_tracing")

_DIST = "opentelemetry-instrumentation-openai"
_CHAT = "opentelemetry.instrumentation.openai.shared.chat_wrappers"
_COMPLETION = "opentelemetry.instrumentation.openai.shared.completion_wrappers"
# The first line left alone: the shim is written against, and tested on, 0.38 only.
_LEFT_ALONE_FROM = (0, 39)
_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def applies(version: str | None) -> bool:
    """True for the versions of opentelemetry-instrumentation-openai this shim fixes.

    Example:
        >>> applies("0.38.12"), applies("0.62.4"), applies(None), applies("dev")
        (True, False, False, False)
    """
    found = re.match(r"(\d+)\.(\d+)", version or "")
    return found is not None and (int(found[1]), int(found[2])) < _LEFT_ALONE_FROM


def apply() -> bool:
    """Wrap the 0.38 instrumentation's stream handling; True when the shim is in place.

    Idempotent, never raises, and does nothing (False) on other versions or when the
    instrumentation's code is not shaped as expected.

    Example:
        >>> apply()  # doctest: +SKIP
        True
    """
    try:
        if not applies(_version()):
            return False
        from wrapt import wrap_function_wrapper

        chat = importlib.import_module(_CHAT)
        completion = importlib.import_module(_COMPLETION)
        targets: tuple[tuple[Any, str, Wrapper], ...] = (
            (chat, "_accumulate_stream_items", _chat_accumulate),
            (chat, "_set_streaming_token_metrics", _chat_token_metrics),
            (completion, "_accumulate_streaming_response", _completion_accumulate),
            (completion, "_set_token_usage", _completion_token_usage),
        )
        if not all(callable(getattr(module, name, None)) for module, name, _ in targets):
            return False  # all or nothing: the estimate must be skipped wherever usage is kept
        for module, name, wrapper in targets:
            if getattr(getattr(module, name), "_self_wrapper", None) is not wrapper:
                wrap_function_wrapper(module, name, wrapper)
        return True
    except Exception:
        logger.debug("truefoundry_tracing: OpenAI stream usage shim not applied", exc_info=True)
        return False


def _version() -> str | None:
    import importlib.metadata  # when the openai instrumentation is applied, not at init()

    try:
        return importlib.metadata.version(_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _counts(usage: Any) -> dict[str, int] | None:
    """The three counts of a usage object or dict; total filled in when the server left it out."""
    if isinstance(usage, Mapping):
        prompt, completion, total = (_int(usage.get(k)) for k in _KEYS)
    else:
        prompt, completion, total = (_int(getattr(usage, k, None)) for k in _KEYS)
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    values = zip(_KEYS, (prompt, completion, total), strict=True)
    return {k: v for k, v in values if v is not None} or None


def _keep_usage(item: Any, response: Any) -> None:
    """Put the usage a chunk carries into the response assembled so far. Never raises."""
    try:
        usage = item.get("usage") if isinstance(item, dict) else getattr(item, "usage", None)
        if usage is None or not isinstance(response, dict):
            return
        counts = _counts(usage)
        if counts is not None:
            response["usage"] = counts
    except Exception:
        logger.debug("truefoundry_tracing: unreadable usage in a stream chunk", exc_info=True)


def _usage_of(args: tuple[Any, ...], index: int) -> dict[str, int] | None:
    response = args[index] if len(args) > index else None
    usage = response.get("usage") if isinstance(response, dict) else None
    return usage if isinstance(usage, dict) else None


def _accumulator(item_at: int) -> Wrapper:
    """A wrapper for a per-chunk accumulator called as ``(item, response)`` or the reverse."""
    response_at = 1 - item_at

    def wrapper(
        wrapped: Callable[..., Any], _instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # The usage is taken before the original runs, so a chunk the original fails on
        # (``"choices": null``) still leaves it.
        if len(args) == 2:
            _keep_usage(args[item_at], args[response_at])
        return wrapped(*args, **kwargs)

    return wrapper


# chat: _accumulate_stream_items(item, complete_response); legacy completions:
# _accumulate_streaming_response(complete_response, item). Both run once per chunk.
_chat_accumulate = _accumulator(0)
_completion_accumulate = _accumulator(1)


def _chat_token_metrics(
    wrapped: Callable[..., Any], _instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # _set_streaming_token_metrics(request_kwargs, complete_response, span, token_counter,
    # shared_attributes), once per stream, before the response attributes (usage) are written.
    usage = _usage_of(args, 1)
    if usage is None:
        return wrapped(*args, **kwargs)
    try:
        counter = args[3] if len(args) > 3 else None
        shared = args[4] if len(args) > 4 and isinstance(args[4], Mapping) else {}
        if counter is not None:
            from opentelemetry.semconv_ai import SpanAttributes

            for key, token_type in (("prompt_tokens", "input"), ("completion_tokens", "output")):
                if key in usage:
                    attributes = {**shared, SpanAttributes.LLM_TOKEN_TYPE: token_type}
                    counter.record(usage[key], attributes=attributes)
    except Exception:
        logger.debug("truefoundry_tracing: stream token metric not recorded", exc_info=True)
    return None


def _completion_token_usage(
    wrapped: Callable[..., Any], _instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # _set_token_usage(span, request_kwargs, complete_response), once per stream, after the
    # response attributes (usage) were written: the tiktoken estimate would overwrite them.
    if _usage_of(args, 2) is None:
        return wrapped(*args, **kwargs)
    return None
