"""Haystack's own tracing (2.x and 3.x), recorded in traceloop's conventions.

Haystack reports what it runs to the tracer set with ``haystack.tracing.enable_tracing``
(Haystack 3's OpenTelemetry tracer left the core for the ``opentelemetry-haystack``
integration). :class:`TraceloopTracer` is such a tracer: each operation becomes an entity span
this library's views read. Haystack 2 reports no agent steps or tool calls (an ``Agent`` runs
its ``chat_generator`` and ``tool_invoker`` as components; :mod:`._haystack2` adds the tool
spans).

===============================  ==============================================================
Haystack operation               span
===============================  ==============================================================
``haystack.pipeline.run``        ``haystack_pipeline.workflow``, the pipeline's input and output
``haystack.component.run``       ``<component name>.task``, the component's input and output
``haystack.agent.run``           ``<component name, or "agent">.agent``, messages in, result out
``haystack.agent.step``          ``step_<n>.task``
``haystack.agent.step.llm``      none: the model call (``openai.chat`` from the provider's
                                 instrumentation) is the step's child
``haystack.agent.step.tool``     ``<tool name>.tool``, arguments in, result out; a tool error
                                 marks it ``ERROR``
``haystack.chat_generator.run``  ``<generator class>.task`` (a component calling a generator)
anything else                    ``<operation>.task``
===============================  ==============================================================

Content (inputs, outputs) is recorded unless ``init(trace_content=False)``, whatever
``HAYSTACK_CONTENT_TRACING_ENABLED`` says. A failure of this module's own code is reported
once and the pipeline runs on untraced; the pipeline's own exceptions are recorded and
re-raised unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .._context import WORKFLOW_KEY
from .._serialize import clip, to_json
from .._state import FLAGS
from ._spans import Entity, report

__all__ = ["TraceloopTracer"]

_NAME = "Haystack"
_HAYSTACK_SPAN = "truefoundry_tracing.haystack_span"  # context key: the Haystack span of ours
_INPUTS = frozenset(
    {
        "haystack.pipeline.input_data",
        "haystack.component.input",
        "haystack.agent.input",
        "haystack.agent.step.tool.input",
    }
)
_OUTPUTS = frozenset(
    {
        "haystack.pipeline.output_data",
        "haystack.component.output",
        "haystack.agent.output",
        "haystack.agent.step.tool.output",
    }
)
_SKIPPED = frozenset({"haystack.agent.step.llm"})  # the provider's LLM span is the record
_PRIMITIVE = (str, bool, int, float)


def _traceable(value: Any) -> Any:
    """``value`` as Haystack renders it for tracing (messages and documents as plain dicts)."""
    try:
        from haystack.tracing.utils import _serializable_value

        return _serializable_value(value)
    except Exception:
        return value


class _Recorded:
    """One Haystack operation recorded as a span of ours (a ``haystack.tracing.Span`` by its
    methods: this module does not import Haystack, so the docstring examples run without it)."""

    def __init__(self, entity: Entity, name: str, component_type: str | None) -> None:
        self.entity = entity
        self.name = name
        self.component_type = component_type

    def set_tag(self, key: str, value: Any) -> None:
        try:
            span = self.entity.span
            if key in _INPUTS or key in _OUTPUTS:
                if FLAGS.trace_content:
                    where = "input" if key in _INPUTS else "output"
                    text = clip(to_json(_traceable(value)))
                    span.set_attribute(f"traceloop.entity.{where}", text)
            elif key == "haystack.tool.error" and value:
                from opentelemetry.trace import Status, StatusCode

                span.set_status(Status(StatusCode.ERROR, "the Haystack tool call failed"))
            elif isinstance(value, _PRIMITIVE):
                span.set_attribute(key, value)
        except Exception as exc:
            report(_NAME, exc)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def set_content_tag(self, key: str, value: Any) -> None:
        if FLAGS.trace_content:
            self.set_tag(key, value)

    def raw_span(self) -> Any:
        return self.entity.span

    def get_correlation_data_for_logs(self) -> dict[str, Any]:
        context = self.entity.span.get_span_context()
        return {"trace_id": context.trace_id, "span_id": context.span_id}


class _Untraced:
    """An operation with no span of its own (its tags are dropped)."""

    def set_tag(self, key: str, value: Any) -> None:
        return None

    def set_tags(self, tags: dict[str, Any]) -> None:
        return None

    def set_content_tag(self, key: str, value: Any) -> None:
        return None

    def raw_span(self) -> Any:
        return self

    def get_correlation_data_for_logs(self) -> dict[str, Any]:
        return {}


def _kind_and_name(operation: str, tags: dict[str, Any], parent: Any) -> tuple[str, str]:
    if operation == "haystack.pipeline.run":
        return "workflow", "haystack_pipeline"
    if operation == "haystack.component.run":
        return "task", str(tags.get("haystack.component.name") or "component")
    if operation == "haystack.agent.run":
        inside = isinstance(parent, _Recorded) and parent.component_type == "Agent"
        return "agent", parent.name if inside else "agent"
    if operation == "haystack.agent.step":
        return "task", f"step_{tags.get('haystack.agent.step', 0)}"
    if operation == "haystack.agent.step.tool":
        return "tool", str(tags.get("haystack.tool.name") or "tool")
    if operation == "haystack.chat_generator.run":
        return "task", str(tags.get("haystack.component.type") or "chat_generator")
    return "task", operation


class TraceloopTracer:
    """A Haystack tracer (``haystack.tracing.Tracer`` by its methods) whose spans are traceloop
    entity spans (see the module docstring).

    Example:
        >>> from opentelemetry import trace
        >>> tracer = TraceloopTracer(trace.get_tracer("doc"))
        >>> with tracer.trace("haystack.component.run", {"haystack.component.name": "llm"}):
        ...     pass
    """

    def __init__(self, otel_tracer: Any) -> None:
        self._tracer = otel_tracer

    def _open(self, operation: str, tags: dict[str, Any], parent_span: Any) -> _Recorded | None:
        """Start the span of ``operation`` (None: record none); never raises."""
        if not FLAGS.enabled or operation in _SKIPPED:
            return None
        from opentelemetry import context as context_api
        from opentelemetry import trace

        try:
            parent = parent_span if isinstance(parent_span, _Recorded) else self.current_span()
            kind, name = _kind_and_name(operation, tags, parent)
            token = None
            if isinstance(parent, _Recorded) and parent.entity.span is not trace.get_current_span():
                token = context_api.attach(parent.entity.context)  # a tool in a worker thread
            # as this library's @workflow: a workflow names itself and the spans inside it
            attributes = {"traceloop.workflow.name": name} if kind == "workflow" else None
            try:
                entity = Entity.start(self._tracer, kind, name, attributes=attributes)
            finally:
                if token is not None:
                    context_api.detach(token)
            ctype = tags.get("haystack.component.type")
            recorded = _Recorded(entity, name, ctype if isinstance(ctype, str) else None)
            entity.context = context_api.set_value(_HAYSTACK_SPAN, recorded, entity.context)
            if kind == "workflow":
                entity.context = context_api.set_value(WORKFLOW_KEY, name, entity.context)
            recorded.set_tags(tags)
            return recorded
        except Exception as exc:
            report(_NAME, exc)
            return None

    @contextlib.contextmanager
    def trace(
        self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Any = None
    ) -> Iterator[_Recorded | _Untraced]:
        """Run the block inside the span of ``operation_name``."""
        recorded = self._open(operation_name, tags or {}, parent_span)
        if recorded is None:
            yield _Untraced()
            return
        token = recorded.entity.attach()
        error: BaseException | None = None
        try:
            yield recorded
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                recorded.entity.detach(token)
                recorded.entity.finish(error=error)
            except Exception as exc:
                report(_NAME, exc)

    def current_span(self) -> _Recorded | None:
        """The span of ours the current context is in, if its span is the current one."""
        from opentelemetry import context as context_api
        from opentelemetry import trace

        recorded = context_api.get_value(_HAYSTACK_SPAN)
        if isinstance(recorded, _Recorded) and recorded.entity.span is trace.get_current_span():
            return recorded
        return None
