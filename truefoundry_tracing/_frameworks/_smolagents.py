"""smolagents: an agent span per run, a span per step, a tool span per tool call.

traceloop ships no instrumentation for smolagents; its model calls are traced by the
provider's (``OpenAIServerModel`` by OpenAI's, ``LiteLLMModel`` by LiteLLM's). This one adds,
on wrapt:

* ``<agent name>.agent`` (kind ``agent``) around ``MultiStepAgent._run_stream``, which both
  ``run()`` and ``run(stream=True)`` drive: input the task, output the final answer. A run
  is one trace, streamed or not, inside a ``@workflow`` or not.
* ``step_<n>.task`` around each action step of a ``ToolCallingAgent`` or ``CodeAgent`` (the
  model call of the step is its child) and ``planning.task`` around a planning step.
* ``<tool name>.tool`` around every ``Tool`` call, with its arguments and result (for a
  ``CodeAgent`` the tools its code calls), and ``python_interpreter.tool`` around the code a
  ``CodeAgent`` runs in its local executor.

Example:
    >>> SmolagentsInstrumentor().instrumentation_dependencies()
    ('smolagents >= 1.0',)
"""

from __future__ import annotations

from typing import Any

from ._own import OwnInstrumentor, Targets
from ._spans import Entity, call, stream

__all__ = ["SmolagentsInstrumentor"]

_NAME = "smolagents"


def _agent_name(agent: Any) -> str:
    return str(getattr(agent, "name", None) or type(agent).__name__)


def _final_output(last: Any) -> Any:
    return getattr(last, "output", None) if type(last).__name__ == "FinalAnswerStep" else None


def _step_output(step: Any) -> dict[str, Any]:
    calls = [
        {"name": getattr(c, "name", None), "arguments": getattr(c, "arguments", None)}
        for c in getattr(step, "tool_calls", None) or ()
    ]
    out: dict[str, Any] = {"tool_calls": calls} if calls else {}
    if getattr(step, "observations", None):
        out["observations"] = step.observations
    if getattr(step, "is_final_answer", False):
        out["final_answer"] = getattr(step, "action_output", None)
    if getattr(step, "error", None) is not None:
        out["error"] = str(step.error)
    return out


def _arguments(tool: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A tool call's arguments by name (positional ones named after the tool's inputs)."""
    shown = {k: v for k, v in kwargs.items() if k != "sanitize_inputs_outputs"}
    names = list(getattr(tool, "inputs", None) or ())
    if len(args) == 1 and not shown and isinstance(args[0], dict) and set(args[0]) <= set(names):
        return dict(args[0])  # one dict of the arguments, as Tool.__call__ accepts it
    for i, value in enumerate(args):
        shown[names[i] if i < len(names) else f"arg{i}"] = value
    return shown


def _wrappers(tracer: Any) -> Targets:
    def run(wrapped: Any, agent: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        task = kwargs.get("task", args[0] if args else None)
        return stream(
            _NAME,
            lambda: Entity.start(tracer, "agent", _agent_name(agent), task),
            wrapped(*args, **kwargs),
            _final_output,
        )

    def step(wrapped: Any, agent: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        memory_step = kwargs.get("memory_step", args[0] if args else None)
        number = getattr(memory_step, "step_number", None)
        return stream(
            _NAME,
            lambda: Entity.start(tracer, "task", f"step_{number}", {"step_number": number}),
            wrapped(*args, **kwargs),
            lambda _last: _step_output(memory_step),
        )

    def planning(wrapped: Any, agent: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return stream(
            _NAME,
            lambda: Entity.start(tracer, "task", "planning"),
            wrapped(*args, **kwargs),
            lambda last: getattr(last, "plan", None),
        )

    def tool(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def opened() -> Entity:
            name = str(getattr(instance, "name", None) or type(instance).__name__)
            return Entity.start(tracer, "tool", name, _arguments(instance, args, kwargs))

        return call(_NAME, opened, wrapped, args, kwargs)

    def code(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        source = kwargs.get("code_action", args[0] if args else None)
        return call(
            _NAME,
            lambda: Entity.start(tracer, "tool", "python_interpreter", {"code": source}),
            wrapped,
            args,
            kwargs,
            lambda result: {
                "output": getattr(result, "output", None),
                "logs": getattr(result, "logs", None),
                "is_final_answer": getattr(result, "is_final_answer", None),
            },
        )

    return {
        ("smolagents.agents", "MultiStepAgent._run_stream"): run,
        ("smolagents.agents", "MultiStepAgent._generate_planning_step"): planning,
        ("smolagents.agents", "ToolCallingAgent._step_stream"): step,
        ("smolagents.agents", "CodeAgent._step_stream"): step,
        ("smolagents.tools", "Tool.__call__"): tool,
        ("smolagents.local_python_executor", "LocalPythonExecutor.__call__"): code,
    }


class SmolagentsInstrumentor(OwnInstrumentor):
    """Agent, step and tool spans for smolagents (see the module docstring); a method a
    release does not have is left out.

    Example:
        >>> SmolagentsInstrumentor().instrumentation_dependencies()
        ('smolagents >= 1.0',)
    """

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ("smolagents >= 1.0",)

    def targets(self, tracer: Any) -> Targets:
        return _wrappers(tracer)
