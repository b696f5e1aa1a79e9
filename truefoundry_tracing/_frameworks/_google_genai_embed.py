"""Google GenAI embedding calls (``client.models.embed_content``, sync and async), which no
traceloop line records.

Each call is one model-call span, ``embed_content <model>``, with operation ``embeddings`` and
the line's own attributes (:mod:`._llm_attrs`): the model, each text embedded as a user
message (left out with ``trace_content=False``), the size of the vectors
(``gen_ai.embeddings.dimension.count``) and the input tokens where the API counts them
(Vertex AI). Applied with the Google GenAI instrumentation on every line; nothing here raises
into the app.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._state import FLAGS
from ._llm_attrs import request_attributes, response_attributes
from ._spans import NO_OUTPUT, Entity, acall, call, model_call_suppressed

__all__ = ["model_name", "request_wrapper", "wrap_embeddings"]

_FRAMEWORK = "Google GenAI"
_SCOPE = "opentelemetry.instrumentation.google_generativeai"
_OPERATION, _PROVIDER = "embeddings", "gcp.gen_ai"


def wrap_embeddings(models: Any) -> None:
    """Wrap ``Models.embed_content`` and ``AsyncModels.embed_content`` of ``models`` (the
    ``google.genai.models`` module), once.

    Example:
        >>> import types
        >>> class Models:
        ...     def embed_content(self, *, model, contents, config=None):
        ...         return None
        >>> class AsyncModels:
        ...     async def embed_content(self, *, model, contents, config=None):
        ...         return None
        >>> fake = types.SimpleNamespace(Models=Models, AsyncModels=AsyncModels)
        >>> wrap_embeddings(fake); wrap_embeddings(fake)  # the second call changes nothing
        >>> Models().embed_content(model="text-embedding-004", contents="hi") is None
        True
        >>> hasattr(Models.embed_content.__wrapped__, "__wrapped__")  # wrapped once
        False
    """
    from wrapt import wrap_function_wrapper

    if getattr(models, "_tfy_embeddings", False):
        return
    wrap_function_wrapper(models, "Models.embed_content", request_wrapper(_Embedding, call))
    wrap_function_wrapper(models, "AsyncModels.embed_content", request_wrapper(_Embedding, acall))
    models._tfy_embeddings = True


def request_wrapper(record: Callable[[dict[str, Any]], Any], run: Callable[..., Any]) -> Any:
    """A wrapt wrapper for one request method: each call runs ``run`` (:func:`call`, or
    :func:`acall` for the async client) in the span ``record(kwargs).open()`` starts, with
    ``record(kwargs).output`` recording the response on it."""

    def wrapper(
        wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        one = record(kwargs)
        return run(_FRAMEWORK, one.open, wrapped, args, kwargs, one.output)

    return wrapper


def model_name(kwargs: Mapping[str, Any]) -> str:
    """The model a request names, without the ``models/`` prefix the SDK accepts."""
    return str(kwargs.get("model") or "unknown").replace("models/", "")


class _Embedding:
    """One ``embed_content`` call's span: opened by :func:`call` / :func:`acall`, the vectors'
    count, size and tokens put on it."""

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.kwargs = kwargs
        self.entity: Entity | None = None

    def open(self) -> Entity | None:
        from opentelemetry import trace

        if model_call_suppressed():
            return None
        model = model_name(self.kwargs)
        messages = [{"role": "user", "content": t} for t in _texts(self.kwargs.get("contents"))]
        attrs = request_attributes(_OPERATION, _PROVIDER, model, messages, False)
        tracer = FLAGS.tracer or trace.get_tracer(_SCOPE)
        self.entity = Entity.client(tracer, f"embed_content {model}", attrs)
        return self.entity

    def output(self, response: Any) -> Any:
        if self.entity is not None:
            span = self.entity.span
            embeddings = getattr(response, "embeddings", None) or ()
            vectors = [getattr(e, "values", None) or () for e in embeddings]
            if vectors:
                span.set_attribute("gen_ai.embeddings.dimension.count", len(vectors[0]))
            tokens = _tokens(response)
            usage = {"prompt_tokens": tokens, "total_tokens": tokens} if tokens else {}
            span.set_attributes(response_attributes(None, (), usage))
        return NO_OUTPUT  # the vectors are data, not an answer to show


def _text(content: Any) -> str:
    """The text of one content: a string, a part, or a ``Content`` of parts (``types`` objects
    or their dict forms); other parts (images, files) as ``[mime type]``."""
    if isinstance(content, str):
        return content

    def get(key: str) -> Any:
        return content.get(key) if isinstance(content, Mapping) else getattr(content, key, None)

    text = get("text")
    if isinstance(text, str):
        return text
    parts = get("parts")
    if isinstance(parts, list):
        return " ".join(_text(p) for p in parts)
    blob = get("inline_data") or get("file_data")
    mime = blob.get("mime_type") if isinstance(blob, Mapping) else getattr(blob, "mime_type", None)
    return f"[{mime or type(content).__name__}]"


def _texts(contents: Any) -> list[str]:
    """What one call embeds: one text per content."""
    if contents is None:
        return []
    items = contents if isinstance(contents, list | tuple) else [contents]
    try:
        return [_text(c) for c in items]
    except Exception:
        return []


def _tokens(response: Any) -> int | None:
    """Input tokens, where the API counts them: the response's usage, or each vector's."""
    usage = getattr(response, "usage_metadata", None)
    count = getattr(usage, "prompt_token_count", None)
    if isinstance(count, int):
        return count
    counts: list[Any] = [
        getattr(getattr(e, "statistics", None), "token_count", None)
        for e in getattr(response, "embeddings", None) or ()
    ]
    if not counts or not all(isinstance(c, int | float) for c in counts):
        return None
    return int(sum(counts))
