"""Corrections to traceloop's CrewAI instrumentation (CrewAI 1.x), applied with it.

* **Streamed crews** (``Crew(stream=True)``): ``kickoff()`` returns at once and the crew runs
  in a thread started when the app iterates the output, in the context of that moment. traceloop
  recorded an empty ``crewai.workflow`` for the first call and the real run in a second trace.
  Here the streaming ``kickoff()`` opens no span of its own and the run's thread starts in the
  context ``kickoff()`` was called in: one ``crewai.workflow`` span, in the caller's trace.
* **Tool spans**: traceloop records no span for a tool's execution. Each run of a CrewAI tool
  (native function calling: ``BaseTool.run`` / ``Tool.run``; the text protocol:
  ``CrewStructuredTool.invoke``; and their async forms) becomes a ``<tool>.tool`` span
  (``traceloop.span.kind`` = ``tool``) with the arguments and the result as entity input and
  output, under the agent that called it.

Nothing here raises into the app: a correction that cannot be applied leaves CrewAI as
traceloop instruments it, and says so once in the log.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .._state import FLAGS
from ._spans import record_output, tool_attributes

__all__ = ["FAILURE", "patch"]

# What the log says, once, when patch() fails ({exc!r}: why).
FAILURE = (
    "CrewAI's tool spans and streamed runs could not be corrected ({exc!r}): tools "
    "have no spans and a streamed crew may be split in two traces. Install a CrewAI "
    "1.x release this truefoundry-tracing version is tested with."
)

# the tool whose span is open in this context: a tool calling itself through another entry
# point (``invoke`` on a tool's structured form) gets one span
_open_tool: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tfy_crewai_tool", default=None
)
_SYNC_TOOLS = (
    ("crewai.tools.base_tool", "BaseTool.run"),
    ("crewai.tools.base_tool", "Tool.run"),
    ("crewai.tools.structured_tool", "CrewStructuredTool.invoke"),
)
_ASYNC_TOOLS = (
    ("crewai.tools.base_tool", "BaseTool.arun"),
    ("crewai.tools.base_tool", "Tool.arun"),
    ("crewai.tools.structured_tool", "CrewStructuredTool.ainvoke"),
)


def patch() -> bool:
    """Apply both corrections; raises when CrewAI's modules are not as expected.

    Applied once, through :func:`._fixes.correct`, which reports a failure (``FAILURE``).

    Example:
        >>> from truefoundry_tracing._frameworks._fixes import correct
        >>> isinstance(correct('crewai'), bool)
        True
    """
    import wrapt

    for module, name in _SYNC_TOOLS:
        wrapt.wrap_function_wrapper(module, name, _run_tool)
    for module, name in _ASYNC_TOOLS:
        wrapt.wrap_function_wrapper(module, name, _arun_tool)
    crew = importlib.import_module("crewai.crew")
    wrapt.wrap_function_wrapper(crew, "Crew.kickoff", _kickoff)
    for name in ("create_chunk_generator", "create_async_chunk_generator"):
        setattr(crew, name, _in_callers_context(getattr(crew, name)))
    return True


def _kickoff(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """A streaming ``kickoff()`` only sets the run up: skip the span traceloop opens for it
    (the run's own ``kickoff()`` records the crew)."""
    if getattr(instance, "stream", False) and _traceloops(wrapped):
        return wrapped.__wrapped__(*args, **kwargs)
    return wrapped(*args, **kwargs)


def _traceloops(wrapped: Any) -> bool:
    """True when ``wrapped`` is traceloop's CrewAI wrapper (bound to the crew)."""
    wrapper = getattr(wrapped, "_self_wrapper", None)
    module = getattr(wrapper, "__module__", None) or ""
    return module.startswith("opentelemetry.instrumentation.crewai")


def _in_callers_context(make: Callable[..., Any]) -> Callable[..., Any]:
    """``make(state, run, holder)`` with ``run`` started in the context of this call."""
    if getattr(make, "_tfy_fixed", False):
        return make

    @functools.wraps(make)
    def wrapper(state: Any, run: Callable[[], Any], *rest: Any, **kwargs: Any) -> Any:
        from opentelemetry import context

        caller = context.get_current()
        if inspect.iscoroutinefunction(run):

            async def run_async() -> Any:
                token = context.attach(caller)
                try:
                    return await run()
                finally:
                    context.detach(token)

            return make(state, run_async, *rest, **kwargs)

        def run_sync() -> Any:
            token = context.attach(caller)
            try:
                return run()
            finally:
                context.detach(token)

        return make(state, run_sync, *rest, **kwargs)

    wrapper._tfy_fixed = True  # type: ignore[attr-defined]
    return wrapper


def _arguments(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The tool's arguments as the model sent them: a mapping when there is one."""
    if getattr(wrapped, "__name__", "").endswith("invoke"):  # invoke(input, config)
        return args[0] if args else kwargs.get("input")
    return kwargs if not args else {"args": list(args), "kwargs": kwargs}


@contextmanager
def _tool_span(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[Any]:
    """The span of one tool run (None when it is not recorded); the result goes on it."""
    name = str(getattr(instance, "name", "") or type(instance).__name__)
    tracer = FLAGS.tracer
    if not FLAGS.enabled or tracer is None or _open_tool.get() == name:
        yield None
        return
    attributes = tool_attributes(name, _arguments(wrapped, args, kwargs))
    token = _open_tool.set(name)
    try:
        with tracer.start_as_current_span(f"{name}.tool", attributes=attributes) as span:
            yield span
    finally:
        _open_tool.reset(token)


def _run_tool(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    with _tool_span(wrapped, instance, args, kwargs) as span:
        result = wrapped(*args, **kwargs)
        record_output(span, result)
        return result


async def _arun_tool(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    with _tool_span(wrapped, instance, args, kwargs) as span:
        result = await wrapped(*args, **kwargs)
        record_output(span, result)
        return result
