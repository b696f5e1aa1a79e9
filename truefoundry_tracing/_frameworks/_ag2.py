"""AG2 (``ag2`` 1.x, imported as ``ag2``): agent and tool spans with their inputs and outputs.

AG2 runs every turn (``Agent.ask``, and ``Agent.run``, its observable, streamable form)
through middleware: ``on_turn`` around the whole turn (its model calls and tool calls) and
``on_tool_execution`` around each tool call. This instrumentation adds a middleware of its own
to every run (through ``AgentRun``, where all of AG2's entry points meet; the agent's own
``middleware`` list is left as it is): a ``<agent>.agent`` span per turn (the request's text
in, the final message out) and a ``<tool>.tool`` span per tool call (the model's arguments in,
the tool's result out; a tool error marks it ``ERROR``). The model calls are the OpenAI
instrumentation's LLM spans, under the agent span.

AG2's own OpenTelemetry support (``TelemetryMiddleware``) is opt-in per agent and records
each model call in a span of its own, beside the provider instrumentation's: it is not used.

Example:
    >>> AG2Instrumentor().instrumentation_dependencies()
    ('ag2 >= 1.0',)
"""

from __future__ import annotations

import json
from typing import Any

from ._own import OwnInstrumentor, Targets
from ._spans import Entity, acall, report

__all__ = ["AG2Instrumentor"]

_FRAMEWORK = "AG2"
_SYSTEM = {"gen_ai.system": "ag2"}


def _text(parts: Any) -> Any:
    """The text of a request's parts (one string when there is one part)."""
    texts = [getattr(p, "content", None) or type(p).__name__ for p in parts or ()]
    return texts[0] if len(texts) == 1 else texts


def _request(event: Any) -> Any:
    parts = getattr(event, "parts", None)
    return _text(parts) if parts is not None else type(event).__name__


def _response(response: Any) -> Any:
    message = getattr(response, "message", None)
    return getattr(message, "content", None)


def _arguments(call: Any) -> Any:
    raw = getattr(call, "arguments", None)
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return raw


def _tool_output(result: Any) -> Any:
    inner = getattr(result, "result", None)
    return _text(getattr(inner, "parts", None)) if inner is not None else None


def _tool_error(result: Any) -> BaseException | None:
    error = getattr(result, "error", None)
    return error if isinstance(error, BaseException) else None


def _middleware_class(tracer: Any) -> type:
    from ag2.middleware.base import BaseMiddleware

    class TraceMiddleware(BaseMiddleware):  # type: ignore[misc]
        """truefoundry-tracing's agent and tool spans for one AG2 turn."""

        def __init__(self, event: Any, context: Any, agent: str = "agent") -> None:
            super().__init__(event, context)
            self._agent = agent

        async def on_turn(self, call_next: Any, event: Any, context: Any) -> Any:
            def make() -> Entity:
                attrs = {**_SYSTEM, "gen_ai.operation.name": "invoke_agent"}
                return Entity.start(tracer, "agent", self._agent, _request(event), attrs)

            return await acall(_FRAMEWORK, make, call_next, (event, context), {}, _response)

        async def on_tool_execution(self, call_next: Any, event: Any, context: Any) -> Any:
            def make() -> Entity:
                attrs = {
                    **_SYSTEM,
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.call.id": str(getattr(event, "id", "")),
                }
                return Entity.start(tracer, "tool", str(event.name), _arguments(event), attrs)

            return await acall(
                _FRAMEWORK, make, call_next, (event, context), {}, _tool_output, _tool_error
            )

    return TraceMiddleware


def _run_init(tracer: Any) -> Any:
    """The wrapper of ``AgentRun.__init__``: our middleware first in every run."""
    from ag2 import Middleware

    middleware = _middleware_class(tracer)

    def init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            agent = args[0] if args else kwargs.get("agent")
            ours = Middleware(middleware, agent=str(getattr(agent, "name", "agent")))
            kwargs = {**kwargs, "middleware": (ours, *kwargs.get("middleware", ()))}
        except Exception as exc:
            report(_FRAMEWORK, exc)
        return wrapped(*args, **kwargs)

    return init


class AG2Instrumentor(OwnInstrumentor):
    """Agent and tool spans for AG2 (see the module's docstring)."""

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ("ag2 >= 1.0",)

    def targets(self, tracer: Any) -> Targets:
        return {("ag2", "AgentRun.__init__"): _run_init(tracer)}

    def missing(self, names: list[str]) -> None:
        raise AttributeError(
            f"this AG2 release has no {', '.join(names)}, where every run is traced, so "
            "nothing of AG2 is traced. Install ag2 1.2, the release this is tested with."
        )
