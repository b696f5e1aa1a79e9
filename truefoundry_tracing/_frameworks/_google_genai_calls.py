"""Google GenAI (``google-genai``) model calls, where traceloop's instrumentation cannot see
them: traceloop-sdk 0.38's ``google_generativeai`` instrumentation wraps only the old
``google-generativeai`` SDK.

Each request the SDK sends (``Models._generate_content`` / ``_generate_content_stream``, sync
and async, so each call of an automatic-function-calling run is its own span) is one LLM span
named as traceloop 0.62 names it (``generate_content <model>``), with the line's own attributes
(:mod:`._llm_attrs`): model, input messages, the answer (a stream merged whole, marked
streaming), tool calls, finish reason and tokens. The runs and the functions the SDK calls get
the agent and tool spans of :mod:`._google_genai`. Nothing here raises into the app.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ._google_genai import _FRAMEWORK, _Merged, _wrap_runs
from ._google_genai_embed import model_name, request_wrapper, wrap_embeddings
from ._llm_attrs import Completion, request_attributes, response_attributes
from ._own import OwnInstrumentor, Targets
from ._spans import (
    NO_OUTPUT,
    Entity,
    acall,
    astream,
    begin,
    call,
    inside,
    model_call_suppressed,
    report,
    stream,
)

__all__ = ["GoogleGenAIInstrumentor"]

_OPERATION, _PROVIDER = "generate_content", "gcp.gen_ai"
_MODULE = "google.genai.models"
_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "FINISH_REASON_UNSPECIFIED": ""}
_ROLES = {"model": "assistant", "function": "tool"}


def _reason(value: Any) -> str | None:
    """A Gemini finish reason as traceloop 0.62 writes it (``STOP`` -> ``stop``)."""
    if value is None:
        return None
    name = str(getattr(value, "name", None) or value)
    if name in _REASONS:
        return _REASONS[name] or None
    return "content_filter" if "SAFETY" in name or "PROHIBITED" in name else "error"


def _part_text(part: Any) -> str:
    """What one request part says, as text (a function's call or result as JSON)."""
    if isinstance(part.text, str) and not part.thought:
        return part.text
    if part.function_call is not None:
        call = {"name": part.function_call.name, "args": part.function_call.args}
        return json.dumps({"function_call": call}, default=str)
    if part.function_response is not None:
        fr = part.function_response
        shown = {"name": fr.name, "response": fr.response}
        return json.dumps({"function_response": shown}, default=str)
    return ""


def _messages(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's system instruction and contents as role/content messages."""
    transformers: Any = importlib.import_module("google.genai._transformers")
    messages: list[dict[str, Any]] = []
    config = kwargs.get("config")
    system = config.get("system_instruction") if isinstance(config, Mapping) else None
    system = system or getattr(config, "system_instruction", None)
    if system is not None:
        content = transformers.t_content(system)
        text = "".join(_part_text(p) for p in content.parts or ())
        messages.append({"role": "system", "content": text})
    for content in transformers.t_contents(kwargs.get("contents")) or ():
        role = _ROLES.get(content.role or "user", content.role or "user")
        text = "".join(_part_text(p) for p in content.parts or ())
        messages.append({"role": role, "content": text})
    return messages


def _completion(candidate: Any) -> Completion:
    parts = getattr(candidate.content, "parts", None) or ()
    text = "".join(p.text for p in parts if isinstance(p.text, str) and not p.thought)
    calls = tuple(
        {
            "id": p.function_call.id,
            "name": p.function_call.name,
            "arguments": json.dumps(p.function_call.args or {}),
        }
        for p in parts
        if p.function_call is not None
    )
    return Completion(text or None, calls, _reason(candidate.finish_reason))


def _record(span: Any, response: Any) -> None:
    """Put the answer and its token counts on ``span``."""
    if not span.is_recording():
        return
    usage = getattr(response, "usage_metadata", None)
    counts = {
        "prompt_tokens": getattr(usage, "prompt_token_count", None),
        "completion_tokens": getattr(usage, "candidates_token_count", None),
        "total_tokens": getattr(usage, "total_token_count", None),
    }
    completions = [_completion(c) for c in getattr(response, "candidates", None) or ()]
    model = getattr(response, "model_version", None)
    span.set_attributes(response_attributes(model, completions, counts))


def _start(tracer: Any, kwargs: Mapping[str, Any], streaming: bool) -> Entity | None:
    """The LLM span of one request; None when model-call spans are suppressed."""
    if model_call_suppressed():
        return None
    model = model_name(kwargs)
    attrs = request_attributes(_OPERATION, _PROVIDER, model, _messages(kwargs), streaming)
    return Entity.client(tracer, f"{_OPERATION} {model}", attrs)


class _Span:
    """One request's LLM span: opened by :func:`call` / :func:`acall`, the answer put on it."""

    def __init__(self, tracer: Any, kwargs: Mapping[str, Any]) -> None:
        self.tracer, self.kwargs = tracer, kwargs
        self.entity: Entity | None = None

    def open(self) -> Entity | None:
        self.entity = _start(self.tracer, self.kwargs, False)
        return self.entity

    def output(self, response: Any) -> Any:
        if self.entity is not None:
            _record(self.entity.span, response)
        return NO_OUTPUT  # the answer is on the span: no entity output


def _finisher(merged: _Merged) -> Callable[[Any, BaseException | None], None]:
    def finish(span: Any, error: BaseException | None) -> None:
        from google.genai import types

        _record(span, merged.response(types))

    return finish


def _streamed(tracer: Any) -> Any:
    def wrapper(
        wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        entity = begin(_FRAMEWORK, lambda: _start(tracer, kwargs, True))
        chunks = wrapped(*args, **kwargs)  # a generator: the request is sent when it is read
        if entity is None:
            return chunks
        merged = _Merged(None, "", ())
        each, finish = merged.chunks.append, _finisher(merged)
        return stream(_FRAMEWORK, entity, chunks, each=each, finish=finish)

    return wrapper


def _astreamed(tracer: Any) -> Any:
    async def wrapper(
        wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        entity = begin(_FRAMEWORK, lambda: _start(tracer, kwargs, True))
        if entity is None:
            return await wrapped(*args, **kwargs)
        merged = _Merged(None, "", ())
        each, finish = merged.chunks.append, _finisher(merged)
        with inside(_FRAMEWORK, entity):  # a refusal ends the span with the error
            chunks = await wrapped(*args, **kwargs)
        return astream(_FRAMEWORK, entity, chunks, each=each, finish=finish)

    return wrapper


class GoogleGenAIInstrumentor(OwnInstrumentor):
    """LLM spans for google-genai's model calls, with the run and tool spans of
    :mod:`._google_genai` (see the module docstring).

    Example:
        >>> GoogleGenAIInstrumentor().instrumentation_dependencies()
        ('google-genai >= 1.0',)
    """

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ("google-genai >= 1.0",)

    def targets(self, tracer: Any) -> Targets:
        def one(kwargs: dict[str, Any]) -> _Span:
            return _Span(tracer, kwargs)

        return {
            (_MODULE, "Models._generate_content"): request_wrapper(one, call),
            (_MODULE, "Models._generate_content_stream"): _streamed(tracer),
            (_MODULE, "AsyncModels._generate_content"): request_wrapper(one, acall),
            (_MODULE, "AsyncModels._generate_content_stream"): _astreamed(tracer),
        }

    def _instrument(self, **kwargs: Any) -> None:
        super()._instrument(**kwargs)
        try:
            models: Any = importlib.import_module(_MODULE)
            if not getattr(models, "_tfy_runs", False):
                _wrap_runs(models, importlib.import_module("google.genai._extra_utils"))
                models._tfy_runs = True
            wrap_embeddings(models)
        except Exception as exc:
            report(_FRAMEWORK, exc)
