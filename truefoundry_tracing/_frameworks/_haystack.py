"""Haystack pipelines and agents, on both majors.

traceloop's Haystack instrumentation wraps ``haystack.components.generators.openai``
(``OpenAIGenerator``), which Haystack 3 removed, so applying it fails on 3.x before it wraps
anything (on traceloop-sdk 0.62.4 and 0.38.12 alike). This instrumentation:

* on Haystack 2.x applies traceloop's (a ``haystack_pipeline.workflow`` span per pipeline run;
  ``_dedupe`` keeps the provider's LLM span in place of its ``haystack.openai.chat``);
* on Haystack 3.x (or where this traceloop-sdk ships no Haystack instrumentation) hands
  Haystack a tracer of ours (:mod:`._haystack_tracer`): Haystack's own tracing of pipelines,
  components, agents, agent steps and tool calls, recorded in traceloop's conventions. A
  tracer the app set with ``haystack.tracing.enable_tracing`` before is kept, and the report
  says so.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

__all__ = ["HaystackInstrumentor", "note"]

_TRACELOOP = "opentelemetry.instrumentation.haystack"


class _Mode:
    """What the last ``instrument()`` did: ``traceloop``, ``ours``, or the app's tracer kept."""

    value = ""


_mode = _Mode()


def _haystack_major() -> int:
    try:
        return int(importlib.metadata.version("haystack-ai").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return 0


def note() -> str:
    """The report note for what the instrumentation does with this Haystack.

    Example:
        >>> isinstance(note(), str)
        True
    """
    if _mode.value == "traceloop":
        return "each model call is one LLM span: the provider's, in place of the one around it"
    if _mode.value == "ours":
        return (
            "Haystack's own tracing (pipeline, component, agent, step and tool spans) recorded "
            "by this library; each model call is the provider's LLM span"
        )
    if _mode.value:
        return (
            f"not traced: the app set Haystack's tracer ({_mode.value}) with haystack.tracing."
            "enable_tracing, and it is kept. Remove that call to have init() trace Haystack"
        )
    return ""


def delegated() -> bool:
    """True when traceloop's instrumentation is the one applied (Haystack 2.x).

    Example:
        >>> delegated() in (True, False)
        True
    """
    return _mode.value == "traceloop"


class HaystackInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """traceloop's Haystack instrumentation on Haystack 2.x; Haystack's own tracing, recorded
    by this library, on 3.x.

    Example:
        >>> HaystackInstrumentor().instrumentation_dependencies()
        ('haystack-ai >= 2.0.0',)
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("haystack-ai >= 2.0.0",)

    def _instrument(self, **kwargs: Any) -> None:
        if _haystack_major() < 3 and importlib.util.find_spec(_TRACELOOP) is not None:
            self._delegate = importlib.import_module(_TRACELOOP).HaystackInstrumentor()
            self._delegate.instrument(**kwargs)
            _mode.value = "traceloop"
            return
        from haystack import tracing

        from .._version import __version__
        from ._haystack_tracer import TraceloopTracer

        current = tracing.tracer.actual_tracer
        if tracing.is_tracing_enabled() and not isinstance(current, TraceloopTracer):
            _mode.value = type(current).__name__  # the app's own: not replaced
            return
        from opentelemetry.trace import get_tracer

        otel = get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        tracing.enable_tracing(TraceloopTracer(otel))
        _mode.value = "ours"

    def _uninstrument(self, **kwargs: Any) -> None:
        delegate = getattr(self, "_delegate", None)
        if delegate is not None:
            delegate.uninstrument()
        elif _mode.value == "ours":
            from haystack import tracing

            tracing.disable_tracing()
        _mode.value = ""
