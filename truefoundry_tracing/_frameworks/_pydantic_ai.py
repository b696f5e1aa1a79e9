"""Pydantic AI: one trace per agent run, with agent and tool spans in traceloop's conventions.

traceloop ships no instrumentation for Pydantic AI. Pydantic AI has its own OpenTelemetry
support (``Agent.instrument_all(InstrumentationSettings(...))``): an ``invoke_agent`` span per
run, an ``execute_tool`` span per tool call and a ``chat`` span per model call, each placed by
Pydantic AI itself wherever its run loop puts that work in a given release. This instrumentation
turns it on for every agent, through a tracer that gives its agent and tool spans what this
library's views read (``traceloop.span.kind`` ``agent`` / ``tool``, ``traceloop.entity.name``,
``traceloop.entity.input`` / ``output`` as JSON) just before they end. Its ``chat`` spans repeat
what the provider's instrumentation (OpenAI, Anthropic, ...) records completely, so
:mod:`._dedupe` puts the provider span in their place; a model call no provider instrumentation
sees keeps Pydantic AI's span, which :func:`~truefoundry_tracing.spans.llm_view` reads too.

An app that already set ``Agent.instrument_all(settings)`` keeps its settings; only their tracer
is wrapped, so its agent and tool spans are mapped the same way. Nothing here raises into the
app: a mapping that fails is logged once and the span ends as Pydantic AI made it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from .._serialize import clip, to_json

__all__ = ["PydanticAIInstrumentor", "traceloop_attributes"]

logger = logging.getLogger("truefoundry_tracing")

_KIND = "traceloop.span.kind"
_NAME = "traceloop.entity.name"
_INPUT = "traceloop.entity.input"
_OUTPUT = "traceloop.entity.output"
# Pydantic AI's attribute names, newest first (instrumentation format 2 and later, then 1).
_AGENT_NAMES = ("gen_ai.agent.name", "agent_name")
_TOOL_NAMES = ("gen_ai.tool.name",)
_TOOL_ARGS = ("gen_ai.tool.call.arguments", "tool_arguments")
_TOOL_RESULTS = ("gen_ai.tool.call.result", "tool_response")
_warned: set[str] = set()


def _role(name: str, attributes: Mapping[str, Any] | None) -> str | None:
    """``agent``, ``tool`` or None (a model call or anything else) for a span Pydantic AI starts."""
    attrs = attributes or {}
    operation = attrs.get("gen_ai.operation.name")
    if operation == "invoke_agent" or (operation is None and name == "agent run"):
        return "agent"
    if operation == "execute_tool" or (operation is None and name == "running tool"):
        return "tool"
    return None


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if attrs.get(key) is not None:
            return attrs[key]
    return None


def _parsed(value: Any) -> Any:
    """A JSON object or array Pydantic AI recorded as text, as data; anything else as is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _user_prompt(attrs: Mapping[str, Any]) -> Any:
    """The run's user prompt: the first user message after the history it was given."""
    messages = _parsed(attrs.get("pydantic_ai.all_messages"))
    if not isinstance(messages, list):
        return None
    start = attrs.get("pydantic_ai.new_message_index")
    for message in messages[start if isinstance(start, int) else 0 :]:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        parts = [p for p in message.get("parts") or () if isinstance(p, dict)]
        texts = [p.get("content") for p in parts if p.get("type") == "text"]
        if texts:
            return texts[0] if len(texts) == 1 else texts
    return None


def traceloop_attributes(role: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What an agent or tool span of Pydantic AI's, with ``attrs``, gets before it ends.

    Example:
        >>> out = traceloop_attributes(
        ...     "tool",
        ...     {"gen_ai.tool.name": "get_weather", "gen_ai.tool.call.arguments": '{"city":"Oslo"}',
        ...      "gen_ai.tool.call.result": "Sunny"},
        ... )
        >>> out["traceloop.span.kind"], out["traceloop.entity.input"]
        ('tool', '{"args": [], "kwargs": {"city": "Oslo"}}')
        >>> out["traceloop.entity.output"]
        '"Sunny"'
    """
    out: dict[str, Any] = {_KIND: role}
    if role == "agent":
        name = _first(attrs, _AGENT_NAMES)
        prompt = _user_prompt(attrs)
        if prompt is not None:
            out[_INPUT] = clip(to_json({"args": [prompt], "kwargs": {}}))
        result = attrs.get("final_result")
    else:
        name = _first(attrs, _TOOL_NAMES)
        args = _parsed(_first(attrs, _TOOL_ARGS))
        if args is not None:
            call = {"args": [], "kwargs": args} if isinstance(args, dict) else {"args": [args]}
            out[_INPUT] = clip(to_json({**call, "kwargs": call.get("kwargs", {})}))
        result = _first(attrs, _TOOL_RESULTS)
    if name:
        out[_NAME] = str(name)
    if result is not None:
        out[_OUTPUT] = clip(to_json(_parsed(result)))
    return out


def _report_once(what: str) -> None:
    if what not in _warned:
        _warned.add(what)
        logger.warning(
            "truefoundry_tracing: mapping a Pydantic AI %s span failed; it is exported as "
            "Pydantic AI made it, without traceloop's agent/tool attributes. Please report this "
            "with your pydantic-ai version.",
            what,
            exc_info=True,
        )


class _MappedSpan(trace.Span):
    """A Pydantic AI agent or tool span that gets traceloop's attributes as it ends."""

    def __init__(self, span: Any, role: str) -> None:
        self._tfy_span = span
        self._tfy_role = role

    def __getattr__(self, name: str) -> Any:  # what the SDK's span has beyond the API
        if name.startswith("_tfy_"):
            raise AttributeError(name)
        return getattr(self._tfy_span, name)

    def end(self, end_time: int | None = None) -> None:
        span = self._tfy_span
        try:
            attrs = getattr(span, "attributes", None)
            if attrs is not None and span.is_recording():
                span.set_attributes(traceloop_attributes(self._tfy_role, attrs))
        except Exception:
            _report_once(self._tfy_role)
        span.end(end_time)

    def get_span_context(self) -> trace.SpanContext:
        return cast(trace.SpanContext, self._tfy_span.get_span_context())

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._tfy_span.set_attributes(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self._tfy_span.set_attribute(key, value)

    def add_event(self, name: str, *args: Any, **kwargs: Any) -> None:
        self._tfy_span.add_event(name, *args, **kwargs)

    def add_link(self, *args: Any, **kwargs: Any) -> None:
        self._tfy_span.add_link(*args, **kwargs)

    def update_name(self, name: str) -> None:
        self._tfy_span.update_name(name)

    def is_recording(self) -> bool:
        return bool(self._tfy_span.is_recording())

    def set_status(self, *args: Any, **kwargs: Any) -> None:
        self._tfy_span.set_status(*args, **kwargs)

    def record_exception(self, *args: Any, **kwargs: Any) -> None:
        self._tfy_span.record_exception(*args, **kwargs)


class _Tracer(trace.Tracer):
    """Pydantic AI's tracer, whose agent and tool spans end with traceloop's attributes."""

    def __init__(self, tracer: Any) -> None:
        self._tfy_tracer = tracer

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        span = self._tfy_tracer.start_span(name, *args, **kwargs)
        try:
            attributes = kwargs.get("attributes", args[2] if len(args) > 2 else None)
            role = _role(name, attributes)
        except Exception:
            _report_once("starting")
            return span
        return span if role is None else _MappedSpan(span, role)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Any = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Any]:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class _Provider(trace.TracerProvider):
    """Hands Pydantic AI a :class:`_Tracer` over the tracer ``provider`` gives."""

    def __init__(self, provider: Any) -> None:
        self._tfy_provider = provider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _Tracer(self._tfy_provider.get_tracer(*args, **kwargs))


class PydanticAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Turns on Pydantic AI's own spans for every agent, mapped to traceloop's conventions.

    Example:
        >>> PydanticAIInstrumentor().instrumentation_dependencies()
        ('pydantic-ai-slim >= 1.0',)
    """

    _settings: Any = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("pydantic-ai-slim >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        from pydantic_ai import Agent
        from pydantic_ai.models.instrumented import InstrumentationSettings

        current = getattr(Agent, "_instrument_default", False)
        tracer = getattr(current, "tracer", None)
        if isinstance(current, InstrumentationSettings) and tracer is not None:
            if not isinstance(tracer, _Tracer):  # the app's own settings: kept, tracer wrapped
                current.tracer = _Tracer(tracer)
            return
        provider = kwargs.get("tracer_provider") or trace.get_tracer_provider()
        settings = InstrumentationSettings(tracer_provider=_Provider(provider))
        Agent.instrument_all(settings)
        type(self)._settings = settings

    def _uninstrument(self, **kwargs: Any) -> None:
        from pydantic_ai import Agent

        if getattr(Agent, "_instrument_default", None) is type(self)._settings:
            Agent.instrument_all(False)
        type(self)._settings = None
