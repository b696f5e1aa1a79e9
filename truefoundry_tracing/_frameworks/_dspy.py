"""DSPy: a span per module call, a tool span per tool call, an LLM span per model call.

traceloop ships no instrumentation for DSPy, and DSPy 3's default engine (``engine="auto"``,
its bundled ``lm15``) speaks HTTP on its own sockets, which no provider instrumentation sees.
This one adds, on wrapt:

* ``<class>.task`` around every ``dspy.Module`` call (``Predict``, ``ChainOfThought``, your
  own modules), ``<class>.agent`` for ``ReAct``: input the arguments, output the prediction.
* ``<tool name>.tool`` around every ``dspy.Tool`` call, with its arguments and result.
* ``dspy.chat`` (kind CLIENT) around each attempt DSPy makes at a model call, whatever the
  engine: model, messages, answer, tool calls, token counts, written as traceloop's OpenAI
  instrumentation writes them on the installed line. Where a provider instrumentation records
  the same call inside it (LiteLLM's with ``engine="litellm"`` on traceloop-sdk 0.62), the
  provider's span takes its place (see ``_dedupe``): one LLM span per model call either way.
  A cached answer makes no model call and gets no LLM span.

Example:
    >>> DSPyInstrumentor().instrumentation_dependencies()
    ('dspy >= 3.0',)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ._llm_attrs import Completion, request_attributes, response_attributes
from ._own import OwnInstrumentor, Targets, Wrapper
from ._spans import NO_OUTPUT, Entity, acall, call

__all__ = ["DSPyInstrumentor"]

_NAME = "dspy"
# dspy.clients.execution._attempt(lm, call, backend, request, provider, state, results)
_ATTEMPT_ARGS = ("lm", "call", "backend", "request", "provider", "state", "results")


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    index = _ATTEMPT_ARGS.index(name)
    return args[index] if len(args) > index else kwargs.get(name)


def _prediction(result: Any) -> Any:
    to_dict = getattr(result, "toDict", None)
    return to_dict() if callable(to_dict) else result


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _tool_call(raw: Any) -> dict[str, Any]:
    """``id``, ``name`` and ``arguments`` of a tool call (lm15's dicts, LiteLLM's objects)."""
    function = _field(raw, "function")
    name, arguments = _field(function, "name"), _field(function, "arguments")
    return {"id": _field(raw, "id"), "name": name, "arguments": arguments}


def _finish_reasons(raw: Any) -> list[str | None]:
    reason = getattr(raw, "finish_reason", None)
    if reason is not None:
        return [str(reason)]
    choices = getattr(raw, "choices", None) or ()
    return [getattr(c, "finish_reason", None) for c in choices]


def _completions(result: Any) -> list[Completion]:
    reasons = _finish_reasons(getattr(result, "raw", None))
    out = []
    for i, output in enumerate(getattr(result, "outputs", None) or ()):
        reason = reasons[i] if i < len(reasons) else None
        if isinstance(output, Mapping):
            calls = tuple(_tool_call(c) for c in output.get("tool_calls") or ())
            out.append(Completion(output.get("text"), calls, reason))
        else:
            out.append(Completion(str(output), (), reason))
    return out


def _model_call(tracer: Any, streaming: Callable[[], bool]) -> Callable[..., Entity]:
    """Opens the LLM span of one attempt at a model call."""

    def opened(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Entity:
        lm, prepared = _arg(args, kwargs, "lm"), _arg(args, kwargs, "call")
        model = str(getattr(lm, "model", "") or "")
        provider = model.split("/", 1)[0] if "/" in model else "dspy"
        kind = getattr(lm, "model_type", "chat") or "chat"
        operation = "text_completion" if kind == "text" else "chat"
        legacy = getattr(prepared, "legacy", None) or {}
        messages = legacy.get("messages") or []
        attrs = request_attributes(operation, provider, model, messages, streaming())
        return Entity.client(tracer, f"dspy.{kind}", attrs)

    return opened


class _Attempt:
    """The LLM span of one attempt at a model call: opened before, completed after."""

    __slots__ = ("args", "entity", "kwargs", "opener")

    def __init__(
        self, opener: Callable[..., Entity], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.opener, self.args, self.kwargs = opener, args, kwargs
        self.entity: Entity | None = None

    def open(self) -> Entity:
        self.entity = self.opener(self.args, self.kwargs)
        return self.entity

    def record(self, _none: Any) -> Any:
        result = getattr(_arg(self.args, self.kwargs, "state"), "result", None)
        if result is not None and self.entity is not None:
            usage = getattr(result, "usage", None) or {}
            model = getattr(result, "response_model", None)
            attrs = response_attributes(model, _completions(result), usage)
            self.entity.span.set_attributes(attrs)
        return NO_OUTPUT


def _llm_wrappers(tracer: Any) -> tuple[Wrapper, Wrapper]:
    def streaming() -> bool:
        from dspy.dsp.utils.settings import settings

        return getattr(settings, "send_stream", None) is not None

    opened = _model_call(tracer, streaming)

    def attempt(wrapped: Any, _i: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        one = _Attempt(opened, args, kwargs)
        return call(_NAME, one.open, wrapped, args, kwargs, one.record)

    def aattempt(wrapped: Any, _i: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        one = _Attempt(opened, args, kwargs)
        return acall(_NAME, one.open, wrapped, args, kwargs, one.record)

    return attempt, aattempt


def _wrappers(tracer: Any, agents: tuple[type, ...]) -> Targets:
    def module_span(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Entity:
        kind = "agent" if isinstance(module, agents) else "task"
        inputs = {"args": list(args), "kwargs": kwargs}
        return Entity.start(tracer, kind, type(module).__name__, inputs)

    def tool_span(tool: Any, kwargs: dict[str, Any]) -> Entity:
        name = str(getattr(tool, "name", None) or type(tool).__name__)
        return Entity.start(tracer, "tool", name, kwargs)

    def module(wrapped: Any, inst: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        opened = lambda: module_span(inst, args, kwargs)  # noqa: E731
        return call(_NAME, opened, wrapped, args, kwargs, _prediction)

    def amodule(wrapped: Any, inst: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        opened = lambda: module_span(inst, args, kwargs)  # noqa: E731
        return acall(_NAME, opened, wrapped, args, kwargs, _prediction)

    def tool(wrapped: Any, inst: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return call(_NAME, lambda: tool_span(inst, kwargs), wrapped, args, kwargs)

    def atool(wrapped: Any, inst: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return acall(_NAME, lambda: tool_span(inst, kwargs), wrapped, args, kwargs)

    attempt, aattempt = _llm_wrappers(tracer)
    return {
        ("dspy.primitives.module", "Module.__call__"): module,
        ("dspy.primitives.module", "Module.acall"): amodule,
        ("dspy.adapters.types.tool", "Tool.__call__"): tool,
        ("dspy.adapters.types.tool", "Tool.acall"): atool,
        ("dspy.clients.execution", "_attempt"): attempt,
        ("dspy.clients.execution", "_aattempt"): aattempt,
    }


class DSPyInstrumentor(OwnInstrumentor):
    """Module, tool and model-call spans for DSPy (see the module docstring).

    Example:
        >>> DSPyInstrumentor().instrumentation_dependencies()
        ('dspy >= 3.0',)
    """

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ("dspy >= 3.0",)

    def targets(self, tracer: Any) -> Targets:
        react = getattr(importlib.import_module("dspy.predict.react"), "ReAct", None)
        return _wrappers(tracer, (react,) if isinstance(react, type) else ())

    def missing(self, names: list[str]) -> None:
        """All or nothing: module spans without the model calls would be a silent gap."""
        raise RuntimeError(
            f"this DSPy release has no {', '.join(names)}, where the instrumentation records "
            "model calls, so nothing of DSPy is traced. Use dspy 3.4 (tested), or create the "
            "model with dspy.LM(..., engine='litellm') on traceloop-sdk 0.62 to trace its model "
            "calls through LiteLLM."
        )
