"""Exactly one LLM span per model call, where two instrumentations record the same call.

* **Anthropic SDK 2.x** records each API call in its own span (scope
  ``com.anthropic.sdk.python``) beside traceloop's ``anthropic.chat``, in a different trace
  when no workflow is open. While traceloop's Anthropic instrumentation is applied,
  ``ANTHROPIC_OPEN_TELEMETRY=false`` keeps clients created afterwards from making those spans,
  and spans of clients made before ``init()`` are dropped.
* **OpenAI Agents SDK**: its instrumentation opens an LLM span around each model call
  (``openai.response``), and the provider's instrumentation (OpenAI chat or responses,
  LiteLLM) records the same call inside it, completely; the outer one has no output or tokens
  (with the chat model). When a provider span starts inside one, it takes the outer span's
  place (its parent becomes the outer span's parent) and the outer span is dropped. A model
  call no provider instrumentation sees (a streamed Responses call) keeps the outer span, the
  only record. On traceloop 0.38, whose OpenAI instrumentation records no Responses API call,
  this library's Agents SDK instrumentation records them (``openai.response``), outer spans
  the same way.
* **Pydantic AI**: its own ``chat`` spans (scope ``pydantic-ai``, turned on by
  :mod:`._pydantic_ai`) are outer spans the same way. With Anthropic, the SDK refuses a
  non-streamed request it expects to take over 10 minutes before sending anything, and
  Pydantic AI streams the same call instead: the refused attempt's span is dropped.
* **AG2 with its own ``TelemetryMiddleware``** (opt-in per agent): its ``chat`` span around
  each model call is handled the same way, once this library's AG2 instrumentation is applied.
* **DSPy** (this library's instrumentation): ``dspy.chat`` around each model call is complete
  and the only record on DSPy's default engine; with ``engine="litellm"`` on traceloop 0.62,
  LiteLLM's span inside it takes its place the same way.

The root processor calls :func:`on_start` and :func:`drop` for every span once
:data:`state` is active, which :func:`activate` makes it when one of those instrumentations
is applied.
"""

from __future__ import annotations

from typing import Any

from .._otel_compat import replace_parent
from ._fixes import correct
from ._offline import Switch, agents_export_off, apply

__all__ = ["activate", "drop", "on_start", "state"]

_ANTHROPIC_SCOPE = "com.anthropic.sdk.python"
# instrumentation name -> the scope of its spans around a model call
_OUTER_SCOPES = {
    "openai_agents": "opentelemetry.instrumentation.openai_agents",
    "pydantic_ai": "pydantic-ai",  # Pydantic AI's own chat spans (see _pydantic_ai)
    "ag2": "opentelemetry.instrumentation.ag2",  # AG2's TelemetryMiddleware, when used
    "dspy": "truefoundry_tracing._frameworks._dspy",
}
_OWN_AGENTS_SCOPE = "truefoundry_tracing._frameworks._openai_agents"
_CLIENT = 2  # opentelemetry.trace.SpanKind.CLIENT.value, without importing it here


class _State:
    __slots__ = ("active", "anthropic", "outer")

    def __init__(self) -> None:
        self.active = False
        self.anthropic = False
        self.outer: frozenset[str] = frozenset()  # scopes whose model spans may be replaced


state = _State()
# Live framework model spans: span id -> their parent's context; those a provider span
# replaced, to drop when they end.
_outer: dict[int, Any] = {}
_replaced: set[int] = set()
# Provider spans that took an outer span's place, and the refusal a retried attempt ends with.
_inner: set[int] = set()
_REFUSED = ("ValueError", "Streaming is required")


def activate(name: str) -> str:
    """Start deduplicating for instrumentation ``name``; the note for its report line.

    Example:
        >>> activate("openai")
        ''
    """
    correct(name)  # traceloop's instrumentation, corrected where it needs it (_fixes)
    if name == "anthropic":
        state.anthropic = state.active = True
        return apply(
            name,
            (Switch("ANTHROPIC_OPEN_TELEMETRY", "false", "the Anthropic SDK's own second span"),),
        )
    if name == "google_generativeai":  # not at init(): only when Google GenAI is instrumented
        from ._google_genai import fix_google_genai

        return fix_google_genai()
    if name == "haystack":  # Haystack's own tracing, recorded by ours: no outer LLM span
        from ._haystack import note as haystack_note  # not at init(): it imports OpenTelemetry's

        return haystack_note()
    if name in _OUTER_SCOPES:
        state.outer = state.outer | {_OUTER_SCOPES[name]}
        if name == "openai_agents":  # ours (traceloop 0.38): its Responses API call spans
            state.outer = state.outer | {_OWN_AGENTS_SCOPE}
        state.active = True
        note = "each model call is one LLM span: the provider's, in place of the one around it"
        if name == "dspy":  # its own span is the record where no provider instrumentation sees
            note = "each model call is one LLM span: dspy.chat, or in its place the provider's"
        return f"{agents_export_off()}; {note}" if name == "openai_agents" else note
    return ""


def _kind(span: Any) -> int:
    kind = getattr(span, "kind", None)
    return int(getattr(kind, "value", -1))


def _scope(span: Any) -> str:
    scope = getattr(span, "instrumentation_scope", None)
    return str(getattr(scope, "name", "") or "")


def on_start(span: Any) -> None:
    """Note a framework's model span; hand its place to a provider span started inside it."""
    if not state.outer or _kind(span) != _CLIENT:
        return
    if _scope(span) in state.outer:
        _outer[span.context.span_id] = span.parent
        return
    parent = span.parent
    if parent is not None and parent.span_id in _outer:
        replace_parent(span, _outer[parent.span_id])
        _replaced.add(parent.span_id)
        _inner.add(span.context.span_id)


def _refused(span: Any) -> bool:
    """The SDK refused the request before sending it (the framework then streams it)."""
    for event in getattr(span, "events", ()):
        attrs = event.attributes or {}
        if event.name == "exception" and attrs.get("exception.type") == _REFUSED[0]:
            return str(attrs.get("exception.message", "")).startswith(_REFUSED[1])
    return False


def drop(span: Any) -> bool:
    """True for a span that records a call another span records completely."""
    if _kind(span) != _CLIENT:
        return False
    span_id = span.context.span_id
    inner = span_id in _inner
    if inner:
        _inner.discard(span_id)
    if state.anthropic and _scope(span).startswith(_ANTHROPIC_SCOPE):
        return True
    if inner:
        return _refused(span)
    if _outer.pop(span_id, False) is not False and span_id in _replaced:
        _replaced.discard(span_id)
        return True
    return False
