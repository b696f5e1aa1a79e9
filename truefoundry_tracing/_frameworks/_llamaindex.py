"""Corrections to traceloop's LlamaIndex instrumentation for workflow agents (LlamaIndex 0.14).

* **Step names**: llama-index dispatches a workflow step without the workflow instance, so
  traceloop named every step of a ``FunctionAgent`` / ``AgentWorkflow`` after the class that
  defines it: nine spans all called ``BaseWorkflowAgent.task``. Each step span is renamed
  after the workflow and the step (``FunctionAgent.run_agent_step``,
  ``FunctionAgent.call_tool``, ...; ``traceloop.entity.name`` too), and a tool's run
  (``FunctionTool.call`` / ``acall``) becomes a ``<tool>.tool`` span of kind ``tool``.
* **"Failed to detach context"**: when a streamed model call ends, traceloop also ended every
  span above it, taking them for spans that wait for the stream to finish. A step that
  consumes the stream itself (every ``FunctionAgent`` step) and the workflow run above it were
  ended there: too early, with their later attributes lost ("Setting attribute on ended
  span"), and the run's context token, attached in the task that started the run, was
  detached in the step's task, which OpenTelemetry refuses and logs as an error. Only the
  spans that returned a stream themselves are ended now; the others end when they return, in
  their own task.
* **Streamed queries** (``as_query_engine(streaming=True).query(...)`` / ``aquery``): the
  synthesizer returns a generator that calls the model only when the app reads
  ``response_gen``, after ``query`` returned. The model call had no llama-index parent, so the
  query and synthesizer spans waiting for its end were never ended (never exported), and the
  ``openai.chat`` span hung under a span that was never exported. The response's stream is now
  read inside the innermost span waiting for it (OpenTelemetry context and llama-index's
  active span), so the model call is its child and its end ends the spans above it; a span
  that returned a stream gives the app's context back when it returns, and one that returned
  an ``AsyncStreamingResponse`` waits for its stream too (traceloop ended it at once).
* **Embedding calls on the 0.38 line**: that line's instrumentation records an embedding
  call's model only as ``embedding.model_name``, so its span was no LLM span to any GenAI
  reader. It also gets ``gen_ai.operation.name`` = ``embeddings`` and
  ``gen_ai.request.model``, as the 0.62 line records them.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._spans import Entity, astream, stream

__all__ = ["FAILURE", "patch"]

# What the log says, once, when patch() fails ({exc!r}: why).
FAILURE = (
    "LlamaIndex spans could not be corrected ({exc!r}): workflow steps keep the "
    "name BaseWorkflowAgent.task, a run may log 'Failed to detach context', and a "
    "streamed query's query and synthesizer spans are lost. Install the "
    "opentelemetry-instrumentation-llamaindex this truefoundry-tracing version is "
    "tested with."
)

_FRAMEWORK = "llama_index"  # the instrumentation's name, for what report() says
_ID = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)-")
_STEP_TAG = "llamaindex.step.input_event"  # llama-index tags the spans of workflow steps
_TOOL_METHODS = frozenset({"call", "acall"})


def patch() -> bool:
    """Apply both corrections; raises when traceloop's module is not as expected.

    Applied once, through :func:`._fixes.correct`, which reports a failure (``FAILURE``).

    Example:
        >>> from truefoundry_tracing._frameworks._fixes import correct
        >>> isinstance(correct('llama_index'), bool)
        True
    """
    import wrapt

    module: Any = importlib.import_module(
        "opentelemetry.instrumentation.llamaindex.dispatcher_wrapper"
    )
    holder = module.SpanHolder
    if not callable(getattr(holder, "notify_parent", None)):
        raise AttributeError("SpanHolder.notify_parent")
    holder.notify_parent = _notify_waiting_parents
    wrapt.wrap_function_wrapper(module, "OpenLLMetrySpanHandler.new_span", _new_span)
    wrapt.wrap_function_wrapper(module, "OpenLLMetrySpanHandler.prepare_to_exit_span", _exit_span)
    version = importlib.import_module("opentelemetry.instrumentation.llamaindex.version")
    if str(version.__version__).startswith("0.38."):
        wrapt.wrap_function_wrapper(module, "_set_embedding", _set_embedding)
    return True


def _set_embedding(wrapped: Any, _instance: Any, args: Any, kwargs: Any) -> Any:
    """0.38's embedding attributes, and the GenAI ones readers look for."""
    result = wrapped(*args, **kwargs)
    if len(args) == 2:  # (event, span), as the instrumentation calls it
        event, span = args
        model = (getattr(event, "model_dict", None) or {}).get("model_name")
        if isinstance(model, str):
            span.set_attribute("gen_ai.operation.name", "embeddings")
            span.set_attribute("gen_ai.request.model", model)
    return result


def _notify_waiting_parents(self: Any) -> list[Any]:
    """End the parents that wait for this stream (they returned it), and theirs; no others."""
    parent = self.parent
    if parent is None or not parent.waiting_for_streaming:
        return []
    parent.end()
    return [parent, *parent.notify_parent()]


def _bind(
    id_: str,
    bound_args: Any,
    instance: Any = None,
    parent_span_id: str | None = None,
    tags: dict[str, Any] | None = None,
    **_: Any,
) -> tuple[str, Any, dict[str, Any]]:
    return id_, instance, tags or {}


def _new_span(wrapped: Any, handler: Any, args: Any, kwargs: Any) -> Any:
    waiting = None
    with contextlib.suppress(Exception):  # a parent that returned a stream is still its parent
        parent_id = kwargs.get("parent_span_id", args[3] if len(args) > 3 else None)
        if parent_id and parent_id not in handler.open_spans:
            waiting = handler.waiting_for_streaming_spans.get(parent_id)
            if waiting is not None:
                handler.open_spans[parent_id] = waiting
    try:
        holder = wrapped(*args, **kwargs)
    finally:
        if waiting is not None:
            with contextlib.suppress(Exception):
                handler.open_spans.pop(parent_id, None)
    with contextlib.suppress(Exception):  # never into the app: the span keeps traceloop's name
        _rename(holder, *_bind(*args, **kwargs))
    return holder


def _exit_span(wrapped: Any, handler: Any, args: Any, kwargs: Any) -> Any:
    result, holder = kwargs.get("result", args[2] if len(args) > 2 else None), None
    with contextlib.suppress(Exception):
        holder = _wait_for_async_response(
            handler, kwargs.get("id_", args[0] if args else None), result
        )
    if holder is None:
        holder = wrapped(*args, **kwargs)
    with contextlib.suppress(Exception):  # never into the app: the stream keeps traceloop's way
        _after_stream_exit(handler, holder, result)
    return holder


def _wait_for_async_response(handler: Any, id_: Any, result: Any) -> Any:
    """A span that returned an ``AsyncStreamingResponse`` waits for its stream, as traceloop
    has one that returned a ``StreamingResponse`` wait (None: not such a span)."""
    from llama_index.core.base.response.schema import AsyncStreamingResponse

    holder = handler.open_spans.get(id_) if isinstance(result, AsyncStreamingResponse) else None
    if holder is None or holder.otel_span is None:
        return None
    holder.waiting_for_streaming = True
    with handler.lock:
        handler.waiting_for_streaming_spans[id_] = holder
    return holder


def _after_stream_exit(handler: Any, holder: Any, result: Any) -> None:
    """A span that returned a stream gives the app's context back, and a query's streaming
    response reads its stream inside the innermost span waiting for it."""
    if getattr(holder, "otel_span", None) is None:
        return  # llama-index's OpenAI class: the OpenAI instrumentation records the call
    from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
    from opentelemetry import context as context_api

    responses = (StreamingResponse, AsyncStreamingResponse)
    waiting = getattr(holder, "waiting_for_streaming", False)
    if waiting and holder.token is not None and isinstance(result, (*_STREAMS, *responses)):
        context_api.detach(holder.token)  # in the call that attached it, not at the stream's end
        holder.token = None
    if not isinstance(result, responses):
        return
    gen, inner = result.response_gen, _innermost_waiting(handler, holder)
    if not inner.waiting_for_streaming or gen in _READ_INSIDE:
        return  # nothing waits, or already read inside its span (query and synthesize share it)
    if isinstance(gen, Iterator):
        result.response_gen = stream(_FRAMEWORK, _Waiting(inner), gen)
    elif isinstance(gen, AsyncIterator):
        result.response_gen = astream(_FRAMEWORK, _Waiting(inner), gen)
    else:
        return
    _READ_INSIDE.add(result.response_gen)


def _innermost_waiting(handler: Any, holder: Any) -> Any:
    """The deepest span waiting for a stream below ``holder`` (``holder`` if none)."""
    best, best_depth = holder, 0
    for candidate in list(handler.waiting_for_streaming_spans.values()):
        node, depth = candidate, 0
        while node is not None and node is not holder:
            node, depth = node.parent, depth + 1
        if node is holder and depth > best_depth and candidate.context is not None:
            best, best_depth = candidate, depth
    return best


class _Waiting(Entity):
    """A span waiting for a stream (traceloop's, which ends it): the stream is read inside it,
    its OpenTelemetry context and llama-index's active span, and it is never ended here."""

    __slots__ = ("span_id",)

    def __init__(self, holder: Any) -> None:
        super().__init__(holder.otel_span, holder.context)
        self.span_id = holder.span_id

    def attach(self) -> Any:
        from llama_index.core.instrumentation.span import active_span_id

        return super().attach(), active_span_id.set(self.span_id)

    @staticmethod
    def detach(token: Any) -> None:
        from llama_index.core.instrumentation.span import active_span_id

        otel, active = token
        active_span_id.reset(active)
        Entity.detach(otel)

    def finish(self, output: Any = None, error: BaseException | None = None) -> None:
        """Nothing: traceloop ends the span when the model call's stream ends."""


# the streams read inside a waiting span, so that a response's stream is wrapped once
_READ_INSIDE: weakref.WeakSet[Any] = weakref.WeakSet()
_STREAMS = (Iterator, AsyncIterator)


def _rename(holder: Any, id_: str, instance: Any, tags: dict[str, Any]) -> None:
    span = getattr(holder, "otel_span", None)
    found = _ID.match(id_)
    if span is None or found is None:
        return
    owner, method = found.groups()
    if instance is None and _STEP_TAG in tags:
        parent = _ID.match(getattr(holder.parent, "span_id", "") or "")
        name = f"{parent.group(1) if parent else owner}.{method}"
        span.update_name(name)
        span.set_attribute("traceloop.entity.name", name)
        return
    metadata = getattr(instance, "metadata", None)  # a llama-index tool's ToolMetadata
    tool = getattr(metadata, "name", None) if type(metadata).__name__ == "ToolMetadata" else None
    if method in _TOOL_METHODS and isinstance(tool, str) and tool:
        span.update_name(f"{tool}.tool")
        span.set_attribute("traceloop.span.kind", "tool")
        span.set_attribute("traceloop.entity.name", tool)
        span.set_attribute("gen_ai.tool.name", tool)
