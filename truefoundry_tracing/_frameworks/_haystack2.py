"""A span per tool call on Haystack 2, where Haystack's own tracing has none.

Haystack 2's ``Agent`` reports its run and its ``chat_generator`` / ``tool_invoker``
components to the tracer (:mod:`._haystack_tracer`), but ``ToolInvoker`` calls each tool
without telling it (Haystack 3 opens ``haystack.agent.step.tool`` for that). This module wraps
``haystack.tools.Tool.invoke``, the one call every tool run goes through (``ToolInvoker`` runs
it in a worker thread under a copy of the caller's context, so the span nests under
``tool_invoker.task``): ``<tool name>.tool`` with the arguments in and the result out, marked
``ERROR`` when the tool fails (Haystack raises ``ToolInvocationError``, and hands the error to
the model unless ``raise_on_failure``).
"""

from __future__ import annotations

from typing import Any

from ._spans import Entity, call

__all__ = ["TOOL_INVOKE", "tool_wrapper"]

_NAME = "Haystack"
#: (module, attribute path) of the call every Haystack 2 tool run goes through
TOOL_INVOKE = ("haystack.tools.tool", "Tool.invoke")


def tool_wrapper(tracer: Any) -> Any:
    """The wrapt wrapper of ``Tool.invoke`` recording through ``tracer``.

    Example:
        >>> from opentelemetry import trace
        >>> class Tool:
        ...     name = "add"
        ...     def invoke(self, **kwargs): return kwargs["a"] + kwargs["b"]
        >>> tool = Tool()
        >>> tool_wrapper(trace.get_tracer("doc"))(tool.invoke, tool, (), {"a": 1, "b": 2})
        3
    """

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = str(getattr(instance, "name", None) or "tool")
        opened = lambda: Entity.start(tracer, "tool", name, kwargs)  # noqa: E731
        return call(_NAME, opened, wrapped, args, kwargs)

    return wrapper
