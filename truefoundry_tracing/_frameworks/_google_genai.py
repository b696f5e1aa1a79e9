"""Corrections to traceloop's Google GenAI instrumentation (``google-genai``), applied with it.

traceloop-sdk 0.62 wraps the SDK's public ``generate_content`` and ``generate_content_stream``.
Two things go wrong with that:

* **Automatic function calling** (a Python function among ``config.tools``) makes several
  model calls inside one public call; traceloop records one span for all of them, with the
  last call's output and tokens: the first calls' function calls and tokens are lost. Its
  wrapper is moved to the SDK's per-request methods (``_generate_content``,
  ``_generate_content_stream``, sync and async), so each model call is its own LLM span. The
  run itself gets an ``agent`` span (``automatic_function_calling.agent``) holding those LLM
  spans and a ``tool`` span per function the SDK runs (arguments and result), so it is one
  trace with or without ``@workflow``.
* **Streams** were recorded as their last chunk only (" France." for "Paris is the capital of
  France.") and not marked as streaming. The chunks are merged (the whole text, every function
  call, the last chunk's usage and finish reason) before traceloop records them, and the span
  is marked ``llm.is_streaming``; it also ends when the app stops reading early.

Nothing here raises into the app: a correction that cannot be applied leaves traceloop's
instrumentation as it was, and the report line says so.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from .._serialize import clip, to_json
from .._state import FLAGS
from ._google_genai_embed import wrap_embeddings
from ._spans import Entity, acall, astream, begin, call, inside, stream

__all__ = ["NOTE", "fix_google_genai"]

logger = logging.getLogger("truefoundry_tracing")

#: What the instrument report says once the corrections are in place.
NOTE = (
    "each model call is one LLM span, also when the SDK calls functions itself, under an "
    "automatic_function_calling agent span with a tool span per function; streams are recorded "
    "whole"
)
_FAILED = (
    "the corrections for automatic function calling and streams could not be applied, so "
    "those calls are recorded as traceloop records them (one span per run, a stream's last "
    "chunk only)"
)
_METHODS = (
    ("generate_content", "_generate_content"),
    ("generate_content_stream", "_generate_content_stream"),
)
_SCOPE = "truefoundry_tracing.google_genai"
_AFC = "automatic_function_calling"
_FRAMEWORK = "google_generativeai"  # the instrumentation's name, for what report() says


def fix_google_genai() -> str:
    """Apply the corrections once (after traceloop's instrumentation); the report note.

    Example:
        >>> fix_google_genai() in (NOTE, _FAILED, "")
        True
    """
    try:
        tl: Any = importlib.import_module("opentelemetry.instrumentation.google_generativeai")
        models: Any = importlib.import_module("google.genai.models")
        extra: Any = importlib.import_module("google.genai._extra_utils")
    except Exception:
        return ""  # not the google-genai instrumentation (traceloop 0.38 wraps the old SDK)
    if getattr(tl, "_tfy_fixed", False) or getattr(models, "_tfy_runs", False):
        return NOTE  # corrected, or this library's instrumentation (_google_genai_calls)
    try:
        if not _move_to_requests(models):
            return ""
        tl._build_from_streaming_response = _stream_recorder(tl)
        tl._abuild_from_streaming_response = _astream_recorder(tl)
        _wrap_runs(models, extra)
        wrap_embeddings(models)
    except Exception:
        logger.warning("truefoundry_tracing: %s.", _FAILED, exc_info=True)
        return _FAILED
    tl._tfy_fixed = True
    return NOTE


def _move_to_requests(models: Any) -> bool:
    """Take traceloop's wrappers off the public methods and put them on the per-request ones."""
    moved = False
    for cls in (models.Models, models.AsyncModels):
        for public, private in _METHODS:
            current = cls.__dict__.get(public)
            wrapper = getattr(current, "_self_wrapper", None)
            if wrapper is None:
                continue
            from wrapt import wrap_function_wrapper

            setattr(cls, public, current.__wrapped__)
            wrap_function_wrapper(cls, private, wrapper)
            moved = True
    return moved


# -- streams ---------------------------------------------------------------------------------


class _Merged:
    """The chunks of one streamed call, merged into one response as the API would send it,
    recorded on traceloop's span when the stream ends."""

    def __init__(self, tl: Any, model: str, rest: tuple[Any, ...]) -> None:
        self.chunks: list[Any] = []
        self.tl, self.model, self.rest = tl, model, rest

    def response(self, types: Any) -> Any:
        parts: dict[int, list[Any]] = {}
        finish: dict[int, Any] = {}
        usage = response_id = model_version = None
        for chunk in self.chunks:
            usage = getattr(chunk, "usage_metadata", None) or usage
            response_id = response_id or getattr(chunk, "response_id", None)
            model_version = model_version or getattr(chunk, "model_version", None)
            for n, cand in enumerate(getattr(chunk, "candidates", None) or ()):
                index = cand.index if cand.index is not None else n
                finish[index] = cand.finish_reason or finish.get(index)
                merged = parts.setdefault(index, [])
                for part in getattr(cand.content, "parts", None) or ():
                    _add_part(merged, part, types)
        candidates = [
            types.Candidate(
                index=i,
                content=types.Content(role="model", parts=parts[i]),
                finish_reason=finish.get(i),
            )
            for i in sorted(parts)
        ]
        return types.GenerateContentResponse(
            candidates=candidates,
            usage_metadata=usage,
            response_id=response_id,
            model_version=model_version,
        )

    def finish(self, span: Any, error: BaseException | None) -> None:
        """Record the merged stream on ``span`` the way traceloop records a plain call
        (``rest``: the event logger and token histogram traceloop passes along). A stream that
        failed keeps what arrived (traceloop's recording would mark it OK); the error is put
        on the span after this."""
        from google.genai import types

        response = self.response(types)
        span.set_attribute("llm.is_streaming", True)
        if error is None:
            self.tl._handle_response(span, response, self.model, *self.rest)
        else:
            self.tl.set_response_attributes(span, response, self.model)


def _add_part(merged: list[Any], part: Any, types: Any) -> None:
    """Append ``part``; text continues the previous text part of the same kind."""
    last = merged[-1] if merged else None
    if (
        isinstance(part.text, str)
        and last is not None
        and isinstance(last.text, str)
        and bool(last.thought) == bool(part.thought)
        and last.function_call is None
    ):
        merged[-1] = types.Part(text=last.text + part.text, thought=last.thought)
    elif part.text == "" and part.function_call is None:
        return
    else:
        merged.append(part)


def _stream_recorder(tl: Any) -> Callable[..., Iterator[Any]]:
    """traceloop's ``_build_from_streaming_response``: its span (started by traceloop, never
    current) ends with the stream, recording it whole."""

    def record(span: Any, response: Any, model: str, *rest: Any) -> Iterator[Any]:
        merged = _Merged(tl, model, rest)
        each, finish = merged.chunks.append, merged.finish
        return stream(_FRAMEWORK, Entity(span, None), response, each=each, finish=finish)

    return record


def _astream_recorder(tl: Any) -> Callable[..., AsyncIterator[Any]]:
    def record(span: Any, response: Any, model: str, *rest: Any) -> AsyncIterator[Any]:
        merged = _Merged(tl, model, rest)
        each, finish = merged.chunks.append, merged.finish
        return astream(_FRAMEWORK, Entity(span, None), response, each=each, finish=finish)

    return record


# -- automatic function calling: the run and its tools --------------------------------------


def _wrap_runs(models: Any, extra: Any) -> None:
    """An agent span around each call that runs functions (a model call or a chat turn), a
    tool span around each function."""
    from wrapt import wrap_function_wrapper

    chats: Any = importlib.import_module("google.genai.chats")

    def call_afc(instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
        return _afc_on(extra, kwargs.get("config"))

    def chat_afc(instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
        config = args[1] if len(args) > 1 else kwargs.get("config")
        return _afc_on(extra, config or getattr(instance, "_config", None))

    for cls, afc, plain, streamed in (
        (models.Models, call_afc, "generate_content", "generate_content_stream"),
        (models.AsyncModels, call_afc, "generate_content", "generate_content_stream"),
        (chats.Chat, chat_afc, "send_message", "send_message_stream"),
        (chats.AsyncChat, chat_afc, "send_message", "send_message_stream"),
    ):
        sync = not cls.__name__.startswith("Async")
        wrap_function_wrapper(cls, plain, _run(afc, call if sync else acall))
        wrap_function_wrapper(cls, streamed, (_run_stream if sync else _run_astream)(afc))
    wrap_function_wrapper(extra, "invoke_function_from_dict_args", _tool_sync)
    wrap_function_wrapper(extra, "invoke_function_from_dict_args_async", _tool_async)


def _afc_on(extra: Any, config: Any) -> bool:
    """Whether the SDK will run Python functions itself for this call."""
    try:
        if config is None:
            return False
        tools = (config.get("tools") if isinstance(config, Mapping) else config.tools) or ()
        if not any(callable(t) for t in tools) and not _mcp_sessions(tools):
            return False
        return not extra.should_disable_afc(config)
    except Exception:
        return False


def _mcp_sessions(tools: Any) -> bool:
    """Whether ``tools`` holds MCP sessions, whose tools the async SDK calls itself too."""
    try:
        mcp_utils: Any = importlib.import_module("google.genai._mcp_utils")
        return bool(mcp_utils.has_mcp_session_usage(tools))
    except Exception:
        return False


def _open(kind: str, name: str, inputs: Any) -> Entity | None:
    """Start a traceloop-style ``kind`` span as a child of the current context; None when
    instrumentation is suppressed."""
    from opentelemetry import context, trace
    from opentelemetry.instrumentation import utils

    suppress = getattr(utils, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    if suppress is not None and context.get_value(suppress):
        return None
    tracer = FLAGS.tracer or trace.get_tracer(_SCOPE)
    # as traceloop's Google GenAI spans: no operation name on the tool span
    attrs = {"gen_ai.operation.name": None} if kind == "tool" else None
    return Entity.start(tracer, kind, name, inputs, attrs)


def _text(response: Any) -> str:
    """The text of a response's first candidate (``response.text`` warns on function calls)."""
    try:
        parts = response.candidates[0].content.parts or ()
        return "".join(p.text for p in parts if isinstance(p.text, str) and not p.thought)
    except Exception:
        return ""


def _run_input(instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """What a run was asked: the model and contents (a chat turn: its message)."""
    if "contents" in kwargs:
        return {"model": kwargs.get("model"), "contents": kwargs.get("contents")}
    message = args[0] if args else kwargs.get("message")
    return {"model": getattr(instance, "_model", None), "message": message}


Afc = Callable[[Any, tuple[Any, ...], Mapping[str, Any]], bool]


def _opened_run(
    afc: Afc, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Entity | None:
    """The agent span of a call that runs functions; None for any other call."""
    if not afc(instance, args, kwargs):
        return None
    return _open("agent", _AFC, _run_input(instance, args, kwargs))


Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


class _Texts:
    """The text of a streamed run's chunks, its agent span's output: recorded when the run
    ends, is left early or fails (what was read until then)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, chunk: Any) -> None:
        self.parts.append(_text(chunk))

    def finish(self, span: Any, error: BaseException | None) -> None:
        if FLAGS.trace_content and span.is_recording():
            span.set_attribute("traceloop.entity.output", clip(to_json("".join(self.parts))))


def _run(afc: Afc, through: Callable[..., Any]) -> Wrapper:
    """A call that may run functions, made ``through`` :func:`call` (sync) or :func:`acall`
    (async) in its agent span, which records the answer's text."""

    def run(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        opened = lambda: _opened_run(afc, instance, args, kwargs)  # noqa: E731
        return through(_FRAMEWORK, opened, wrapped, args, kwargs, _text)

    return run


def _run_stream(afc: Afc) -> Wrapper:
    def run(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        entity = begin(_FRAMEWORK, lambda: _opened_run(afc, instance, args, kwargs))
        chunks = wrapped(*args, **kwargs)  # a generator: nothing runs before it is read
        if entity is None:
            return chunks
        texts = _Texts()
        return stream(_FRAMEWORK, entity, chunks, each=texts.add, finish=texts.finish)

    return run


def _run_astream(afc: Afc) -> Wrapper:
    async def run(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        entity = begin(_FRAMEWORK, lambda: _opened_run(afc, instance, args, kwargs))
        if entity is None:
            return await wrapped(*args, **kwargs)
        with inside(_FRAMEWORK, entity):
            chunks = await wrapped(*args, **kwargs)
        texts = _Texts()
        return astream(_FRAMEWORK, entity, chunks, each=texts.add, finish=texts.finish)

    return run


def _tool_span(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Entity | None:
    """The tool span of a function the SDK runs (none when the function records its own)."""
    call_args = args[0] if args else kwargs.get("args")
    func = args[1] if len(args) > 1 else kwargs.get("function_to_invoke")
    if _decorated(func):
        return None
    name = str(getattr(func, "__name__", None) or "function")
    return _open("tool", name, {"args": [], "kwargs": call_args})


_DECORATORS = ("/truefoundry_tracing/decorators.py", "/traceloop/sdk/decorators/")


def _decorated(func: Any) -> bool:
    """Whether ``func`` is already a ``@tool`` (or other decorator) of this library or
    traceloop's, which records its own span."""
    code = getattr(func, "__code__", None)
    where = str(getattr(code, "co_filename", "")).replace("\\", "/")
    return any(part in where for part in _DECORATORS)


def _tool_sync(
    wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return call(_FRAMEWORK, lambda: _tool_span(args, kwargs), wrapped, args, kwargs)


def _tool_async(
    wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return acall(_FRAMEWORK, lambda: _tool_span(args, kwargs), wrapped, args, kwargs)
