"""OpenAI Agents SDK runs, where this traceloop-sdk ships no instrumentation for them (0.38).

The SDK traces itself through its own tracing API: each run is a trace of spans (agent,
function, handoff, guardrail, model call) handed to its trace processors. This
instrumentation registers one processor beside the app's own (the SDK's default one, which
exports every run with the API key to api.openai.com, is taken out) that records them in
traceloop's conventions, as traceloop's instrumentation does on the lines that ship one:

* a trace: an ``Agent Workflow`` span (kind ``workflow``), under the app's span if one is
  current (an ``@workflow``), else the root;
* an agent: ``<agent>.agent`` (kind ``agent``);
* a function tool: ``<tool>.tool`` (kind ``tool``) with its arguments as entity input and its
  result as entity output;
* a handoff: ``<from> → <to>.handoff``; a guardrail: ``<name>.guardrail`` (output: whether
  it tripped);
* a model call through the Responses API: ``openai.response``, an LLM span with model,
  messages, output, tool calls and tokens, since the OpenAI instrumentation of this line does
  not record the Responses API (where one does, its span takes this one's place, see
  :mod:`._dedupe`). A chat-completions call is left to the OpenAI instrumentation.

Each span is current between its start and its end (so the OpenAI instrumentation's LLM span
nests under the agent), undone only where the end runs in the context its start ran in. A
failure of this module is said once and never reaches the app.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.trace import Status, StatusCode, get_tracer

from .._state import FLAGS
from ._llm_attrs import Completion, request_attributes, response_attributes
from ._spans import Entity, report

__all__ = ["SCOPE", "OpenAIAgentsInstrumentor"]

#: the instrumentation scope of this module's spans
SCOPE = "truefoundry_tracing._frameworks._openai_agents"
_FRAMEWORK = "OpenAI Agents SDK"
_ROOT = "Agent Workflow"
# Marks the contextvars context a span was made current in: resetting it fails (quietly)
# in any other context, where OpenTelemetry's detach would fail and log.
_MARK: ContextVar[object] = ContextVar("truefoundry_tracing_agents_mark")


class _Open:
    """A span of ours for one SDK span or trace, and the tokens that made it current."""

    __slots__ = ("entity", "mark", "token")

    def __init__(self, entity: Entity, mark: Token[object] | None, token: Any) -> None:
        self.entity, self.mark, self.token = entity, mark, token


def _make_current(entity: Entity) -> _Open:
    mark = _MARK.set(object())
    return _Open(entity, mark, entity.attach())


def _undo(opened: _Open) -> None:
    """Undo ``_make_current``, only in the context it ran in (elsewhere nothing to undo)."""
    if opened.mark is None:
        return
    try:
        _MARK.reset(opened.mark)
    except ValueError:  # another context (a task the run moved to): it holds no attach of ours
        return
    opened.entity.detach(opened.token)


class _Processor:
    """The SDK's trace processor: its traces and spans as OpenTelemetry spans of ours."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.open: dict[str, _Open] = {}  # SDK trace or span id -> our span
        # an SDK span we leave out (a task, a turn, a chat-completions call) -> its parent's id
        self.skipped: dict[str, str] = {}

    def _parent(self, parent_id: str) -> _Open | None:
        """Our span of ``parent_id``, or of its nearest ancestor we recorded."""
        for _ in range(64):  # a bound, should the SDK ever hand over a cycle
            if parent_id in self.open:
                return self.open[parent_id]
            if parent_id not in self.skipped:
                return None
            parent_id = self.skipped[parent_id]
        return None

    def _start(self, parent_id: str, opener: Any) -> Entity | None:
        """Start a span with ``opener()`` under the span of ``parent_id`` (else the current)."""
        parent = self._parent(parent_id)
        token = parent.entity.attach() if parent is not None else None
        try:
            return opener()  # type: ignore[no-any-return]
        finally:
            Entity.detach(token)

    def on_trace_start(self, trace: Any) -> None:
        if not FLAGS.enabled:
            return
        try:
            entity = Entity.start(self.tracer, "workflow", _ROOT, attributes=_PROVIDER)
            entity.span.update_name(_ROOT)
            self.open[trace.trace_id] = _Open(entity, None, None)  # never made current
        except Exception as exc:
            report(_FRAMEWORK, exc)

    def on_trace_end(self, trace: Any) -> None:
        self._end(getattr(trace, "trace_id", None), None)

    def on_span_start(self, span: Any) -> None:
        if not FLAGS.enabled:
            return
        try:
            data = span.span_data
            parent_id = span.parent_id or span.trace_id
            entity = self._start(parent_id, lambda: _open(self.tracer, data))
            if entity is not None:
                self.open[span.span_id] = _make_current(entity)
            else:
                self.skipped[span.span_id] = parent_id
        except Exception as exc:
            report(_FRAMEWORK, exc)

    def on_span_end(self, span: Any) -> None:
        key = getattr(span, "span_id", None)
        if key is not None:
            self.skipped.pop(key, None)
        self._end(key, span)

    def _end(self, key: str | None, span: Any) -> None:
        opened = self.open.pop(key, None) if key is not None else None
        if opened is None:
            return
        try:
            _undo(opened)
            if span is not None:
                _close(opened.entity.span, span)
        except Exception as exc:
            report(_FRAMEWORK, exc)
        finally:
            opened.entity.span.end()

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


_PROVIDER = {"gen_ai.provider.name": "openai"}


def _open(tracer: Any, data: Any) -> Entity | None:
    """Our span for one SDK span's data (None: a kind left to other instrumentations)."""
    kind = type(data).__name__
    if kind == "AgentSpanData":
        name = data.name or "agent"
        attrs = {**_PROVIDER, "gen_ai.operation.name": "invoke_agent"}
        return Entity.start(tracer, "agent", name, attributes=attrs)
    if kind == "FunctionSpanData":
        return Entity.start(tracer, "tool", data.name or "tool", {}, _PROVIDER)
    if kind == "HandoffSpanData":
        name = f"{data.from_agent} → {data.to_agent or '?'}"
        attrs = {"gen_ai.operation.name": "handoff", "gen_ai.agent.name": data.from_agent}
        return Entity.start(tracer, "task", name, attributes=attrs, label="handoff")
    if kind == "GuardrailSpanData":
        return Entity.start(tracer, "task", data.name or "guardrail", label="guardrail")
    if kind == "ResponseSpanData":
        return Entity.client(tracer, "openai.response", {"gen_ai.request.model": ""})
    return None  # GenerationSpanData: the OpenAI instrumentation records the call


def _close(otel: Any, span: Any) -> None:
    """Put what the SDK span ended with on ours."""
    data = span.span_data
    kind = type(data).__name__
    if kind == "FunctionSpanData" and FLAGS.trace_content:
        otel.set_attribute("traceloop.entity.input", _json(_arguments(data.input)))
        otel.set_attribute("traceloop.entity.output", _json(data.output))
    elif kind == "GuardrailSpanData" and FLAGS.trace_content:
        otel.set_attribute("traceloop.entity.output", _json(bool(data.triggered)))
    elif kind == "ResponseSpanData":
        otel.set_attributes(_response(data))
    elif kind == "HandoffSpanData" and data.to_agent:  # known once the handoff is done
        otel.update_name(f"{data.from_agent} → {data.to_agent}.handoff")
        otel.set_attribute("traceloop.entity.name", f"{data.from_agent} → {data.to_agent}")
    error = getattr(span, "error", None)
    if error:
        message = error.get("message") if isinstance(error, Mapping) else str(error)
        otel.set_status(Status(StatusCode.ERROR, str(message)))


def _json(value: Any) -> str:
    from .._serialize import clip, to_json

    return clip(to_json(value))


def _arguments(raw: Any) -> Any:
    """A tool's arguments: the JSON the model sent, decoded when it is JSON."""
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            return json.loads(raw)
    return raw


def _response(data: Any) -> dict[str, Any]:
    """The LLM attributes of a Responses API call the SDK recorded."""
    response = data.response
    model = str(getattr(response, "model", "") or "")
    messages = _messages(getattr(response, "instructions", None), data.input)
    attrs = request_attributes("chat", "openai", model, messages, False)
    usage = data.usage or {}
    usage_obj = getattr(response, "usage", None)
    counts = {
        "prompt_tokens": usage.get("input_tokens", getattr(usage_obj, "input_tokens", None)),
        "completion_tokens": usage.get("output_tokens", getattr(usage_obj, "output_tokens", None)),
        "total_tokens": usage.get("total_tokens", getattr(usage_obj, "total_tokens", None)),
    }
    attrs.update(response_attributes(model or None, _completions(response), counts))
    return attrs


def _messages(instructions: Any, items: Any) -> list[dict[str, Any]]:
    """The request's messages in chat form: the instructions, then each input item."""
    out: list[dict[str, Any]] = []
    if isinstance(instructions, str) and instructions:
        out.append({"role": "system", "content": instructions})
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    for item in items or ():
        item = item if isinstance(item, Mapping) else _dump(item)
        kind = item.get("type")
        if kind == "function_call":
            call = {"name": item.get("name"), "arguments": item.get("arguments")}
            out.append({"role": "assistant", "content": json.dumps(call)})
        elif kind == "function_call_output":
            out.append({"role": "tool", "content": item.get("output")})
        elif "role" in item:
            out.append({"role": item["role"], "content": item.get("content")})
    return out


def _dump(item: Any) -> Mapping[str, Any]:
    try:
        dumped = item.model_dump(exclude_none=True)
    except Exception:
        return {}
    return dumped if isinstance(dumped, Mapping) else {}


def _completions(response: Any) -> list[Completion]:
    """The answer of a Responses API call: its text and its function calls."""
    if response is None:
        return []
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in getattr(response, "output", None) or ():
        kind = getattr(item, "type", None)
        if kind == "message":
            texts.extend(getattr(c, "text", "") or "" for c in getattr(item, "content", ()))
        elif kind == "function_call":
            call = {"id": item.call_id, "name": item.name, "arguments": item.arguments}
            calls.append(call)
    reason = "tool_calls" if calls else "stop"
    return [Completion("".join(texts) or None, tuple(calls), reason)]


class OpenAIAgentsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """The OpenAI Agents SDK's runs as spans, through the SDK's own tracing API.

    Example:
        >>> OpenAIAgentsInstrumentor().instrumentation_dependencies()
        ('openai-agents >= 0.0.7',)
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai-agents >= 0.0.7",)

    def _instrument(self, **kwargs: Any) -> None:
        from agents.tracing import add_trace_processor

        from .._version import __version__

        tracer = get_tracer(SCOPE, __version__, kwargs.get("tracer_provider"))
        self._processor = _Processor(tracer)
        # Beside the app's own processors; the SDK's default exporter is taken out when the
        # instrumentation is activated (_offline.agents_export_off).
        add_trace_processor(self._processor)

    def _uninstrument(self, **kwargs: Any) -> None:
        from agents.tracing import get_trace_provider, set_trace_processors

        provider: Any = get_trace_provider()
        current = list(provider._multi_processor._processors)
        set_trace_processors([p for p in current if p is not getattr(self, "_processor", None)])
