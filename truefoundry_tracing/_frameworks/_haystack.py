"""Haystack pipelines and agents, on both majors, through Haystack's own tracing.

Haystack reports what it runs to the tracer set with ``haystack.tracing.enable_tracing``.
This instrumentation hands it a tracer of ours (:mod:`._haystack_tracer`) that records
pipelines, components, agents, agent steps (3.x) and tool calls (3.x) in traceloop's
conventions; on Haystack 2, whose tracing has no tool call span, :mod:`._haystack2` adds one
per ``Tool.invoke``. Each model call is the provider instrumentation's LLM span, under the
component or step that made it. A tracer the app set before is kept, and the report says so.

traceloop's Haystack instrumentation is not used: it wraps ``OpenAIGenerator``, which
Haystack 3 removed (it fails there before wrapping anything), and on Haystack 2 it records a
span per pipeline run only (no component, agent or tool span, and each model call of an
``Agent`` run outside a pipeline its own trace) plus an empty ``haystack.openai.chat`` around
each model call.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ._haystack2 import TOOL_INVOKE, tool_wrapper

__all__ = ["HaystackInstrumentor", "note"]


class _Mode:
    """What the last ``instrument()`` did: ``ours``, or the name of the app's tracer kept."""

    value = ""


_mode = _Mode()


def _haystack_major() -> int:
    try:
        return int(importlib.metadata.version("haystack-ai").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return 0


_AUTO = "HAYSTACK_AUTO_TRACE_ENABLED"
_SELF_ENABLED = "Haystack's own OpenTelemetryTracer"


def _self_enabled(tracer: Any) -> bool:
    """Haystack 2's own OpenTelemetry tracer as it turns it on by itself when imported after a
    tracer provider was set (scope ``haystack``)."""
    if type(tracer).__module__ != "haystack.tracing.opentelemetry":
        return False
    scope = getattr(getattr(tracer, "_tracer", None), "instrumentation_info", None)
    return getattr(scope, "name", None) == "haystack"


def _replaced(tracer: Any) -> bool:
    """Haystack 2's self-enabled tracer while ``HAYSTACK_AUTO_TRACE_ENABLED`` says off (it
    turned itself on before ``init()`` set the variable): replaced, as the switch promises."""
    return _self_enabled(tracer) and os.environ.get(_AUTO, "").strip().lower() == "false"


def note() -> str:
    """The report note for what the instrumentation does with this Haystack.

    Example:
        >>> isinstance(note(), str)
        True
    """
    if _mode.value == "ours":
        spans = "pipeline, component, agent, step and tool spans"
        if _haystack_major() < 3:
            spans = "pipeline, component and agent spans; tool spans from Tool.invoke"
        return (
            f"Haystack's own tracing ({spans}) recorded by this library; each model call is "
            "the provider's LLM span"
        )
    if _mode.value == _SELF_ENABLED:
        return (
            f"not traced: {_SELF_ENABLED} is on ({_AUTO}={os.environ.get(_AUTO)} lets Haystack 2 "
            "turn it on, or the app set it with haystack.tracing.enable_tracing), and it is kept. "
            f"Set {_AUTO}=false and remove any enable_tracing call to have init() trace Haystack"
        )
    if _mode.value:
        return (
            f"not traced: the app set Haystack's tracer ({_mode.value}) with haystack.tracing."
            "enable_tracing, and it is kept. Remove that call to have init() trace Haystack"
        )
    return ""


class HaystackInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Haystack's own tracing, recorded by this library, on both majors (and a span per tool
    call on Haystack 2).

    Example:
        >>> HaystackInstrumentor().instrumentation_dependencies()
        ('haystack-ai >= 2.0.0',)
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("haystack-ai >= 2.0.0",)

    def _instrument(self, **kwargs: Any) -> None:
        from haystack import tracing
        from opentelemetry.trace import get_tracer

        from .._version import __version__
        from ._haystack_tracer import TraceloopTracer

        current = tracing.tracer.actual_tracer
        ours = isinstance(current, TraceloopTracer) or _replaced(current)
        if tracing.is_tracing_enabled() and not ours:  # the app's own: not replaced
            _mode.value = _SELF_ENABLED if _self_enabled(current) else type(current).__name__
            return
        otel = get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        tracing.enable_tracing(TraceloopTracer(otel))
        _mode.value = "ours"
        if _haystack_major() < 3 and importlib.util.find_spec(TOOL_INVOKE[0]) is not None:
            from wrapt import wrap_function_wrapper  # Haystack 2 traces no tool call

            wrap_function_wrapper(*TOOL_INVOKE, tool_wrapper(otel))
            self._tool_wrapped = True

    def _uninstrument(self, **kwargs: Any) -> None:
        if _mode.value == "ours":
            from haystack import tracing

            tracing.disable_tracing()
        if getattr(self, "_tool_wrapped", False):
            from haystack.tools.tool import Tool
            from opentelemetry.instrumentation.utils import unwrap

            unwrap(Tool, "invoke")
            self._tool_wrapped = False
        _mode.value = ""
