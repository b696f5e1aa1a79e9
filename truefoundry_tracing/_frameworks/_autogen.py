"""AutoGen (``autogen-agentchat`` and ``autogen-core`` 0.4 and later): agent and tool spans
with their inputs and outputs.

AutoGen records its own OpenTelemetry spans through the global tracer provider (GenAI
semantic conventions: ``invoke_agent <name>``, ``execute_tool <name>``, ``create_agent
<name>``), but without the traceloop attributes this library's views read and without a
tool's arguments or result, and it opens them inside the methods it traces, where neither
the result nor the run's outcome can be added before they end. This instrumentation records
each agent run (``BaseChatAgent.run`` / ``run_stream``: the task in, the final message out)
and each tool call (``BaseTool.run_json`` / ``BaseStreamTool.run_json_stream``: the
arguments in, the result out) in a span of its own, carrying AutoGen's GenAI attributes too,
and AutoGen's span for that same call gives way to it. The agent span made when an agent is
constructed (``create_agent``, a one-span trace of its own outside any run) is not recorded.
A team's run (``BaseGroupChat.run`` / ``run_stream``) is a ``<team>.agent`` span too: the
runtime the team starts inside it handles the team's messages under it, so the run is one
trace; each agent's turn there is AutoGen's ``invoke_agent`` span, renamed ``<agent>.agent``
and marked as an agent span. The model calls are the OpenAI instrumentation's LLM spans,
under the agent span.

Example:
    >>> AutoGenInstrumentor().instrumentation_dependencies()
    ('autogen-agentchat >= 0.4',)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

from .._state import warn_once
from ._own import OwnInstrumentor, Targets
from ._spans import Entity, acall, astream, report

__all__ = ["AutoGenInstrumentor"]

_FRAMEWORK = "AutoGen"
_AGENTS = "autogen_agentchat.agents._base_chat_agent"
_TEAM_AGENT = "autogen_agentchat.teams._group_chat._chat_agent_container"
_TOOLS = "autogen_core.tools._base"
_SYSTEM = {"gen_ai.system": "autogen"}


def _text(message: Any) -> Any:
    to_text = getattr(message, "to_text", None)
    if callable(to_text):
        return to_text()
    return getattr(message, "content", message)


def _task(task: Any) -> Any:
    """A run's task as text: a string, a message, or a list of messages."""
    if task is None or isinstance(task, str):
        return task
    if isinstance(task, (list, tuple)):
        return [_text(m) for m in task]
    return _text(task)


def _answer(result: Any) -> Any:
    """The final message of a run (a ``TaskResult``), as text."""
    messages = getattr(result, "messages", None)
    return _text(messages[-1]) if messages else result


def _agent(tracer: Any, agent: Any, kwargs: dict[str, Any]) -> Callable[[], Entity]:
    def make() -> Entity:
        attrs = {
            **_SYSTEM,
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.description": str(getattr(agent, "description", "") or ""),
        }
        return Entity.start(tracer, "agent", str(agent.name), _task(kwargs.get("task")), attrs)

    return make


def _tool(tracer: Any, tool: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Entity:
    arguments = args[0] if args else kwargs.get("args")
    call_id = kwargs.get("call_id", args[2] if len(args) > 2 else None)
    attrs = {
        **_SYSTEM,
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.description": str(getattr(tool, "description", "") or ""),
    }
    if call_id is not None:
        attrs["gen_ai.tool.call.id"] = str(call_id)
    return Entity.start(tracer, "tool", str(tool.name), dict(arguments or {}), attrs)


def _wrappers(tracer: Any) -> Targets:
    def run(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        make = _agent(tracer, instance, kwargs)
        return acall(_FRAMEWORK, make, wrapped, args, kwargs, _answer)

    def run_stream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        stream = wrapped(*args, **kwargs)
        return astream(_FRAMEWORK, _agent(tracer, instance, kwargs), stream, _answer)

    def run_json(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        make = lambda: _tool(tracer, instance, args, kwargs)  # noqa: E731
        return acall(_FRAMEWORK, make, wrapped, args, kwargs)

    def run_json_stream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        stream = wrapped(*args, **kwargs)
        make = lambda: _tool(tracer, instance, args, kwargs)  # noqa: E731
        return astream(_FRAMEWORK, make, stream, lambda last: last)

    return {
        ("autogen_agentchat.agents", "BaseChatAgent.run"): run,
        ("autogen_agentchat.agents", "BaseChatAgent.run_stream"): run_stream,
        # a team's run is its run_stream driven to the end
        ("autogen_agentchat.teams", "BaseGroupChat.run_stream"): run_stream,
        ("autogen_core.tools", "BaseTool.run_json"): run_json,
        ("autogen_core.tools", "BaseStreamTool.run_json_stream"): run_json_stream,
    }


@contextmanager
def _yield(span: Any) -> Iterator[Any]:
    yield span


def _give_way(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    ours = Entity.current()
    return wrapped(*args, **kwargs) if ours is None else _yield(ours)


def _not_recorded(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return _yield(trace.get_current_span())


@contextmanager
def _marking(inner: Any, name: Any) -> Iterator[Any]:
    with inner as span:
        try:
            span.set_attributes({"traceloop.span.kind": "agent", "traceloop.entity.name": name})
            span.update_name(f"{name}.agent")
        except Exception as exc:
            report(_FRAMEWORK, exc)
        yield span


def _marked_agent(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    name = kwargs.get("agent_name", args[0] if args else "agent")
    return _marking(wrapped(*args, **kwargs), str(name))


# Where AutoGen opens its own spans (module globals of private modules): for the calls ours
# record, its spans give way; the agent span made when an agent is constructed is not
# recorded; a team's agent turns keep AutoGen's span, marked.
_SPAN_SITES: Targets = {
    (_AGENTS, "trace_invoke_agent_span"): _give_way,
    (_TOOLS, "trace_tool_span"): _give_way,
    (_AGENTS, "trace_create_agent_span"): _not_recorded,
    (_TEAM_AGENT, "trace_invoke_agent_span"): _marked_agent,
}


class AutoGenInstrumentor(OwnInstrumentor):
    """Agent and tool spans for AutoGen (see the module's docstring): the agent, team and tool
    methods are needed (a release without one: ``init()`` reports the instrumentation
    ``failed``); the places AutoGen opens its own spans are optional (one not found is said
    once: AutoGen's spans then stay beside ours)."""

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ("autogen-agentchat >= 0.4",)

    def targets(self, tracer: Any) -> Targets:
        return _wrappers(tracer)

    def missing(self, names: list[str]) -> None:
        raise AttributeError(
            f"this AutoGen release has no {', '.join(names)}, so nothing of AutoGen is traced. "
            "Install autogen-agentchat 0.7, the release this is tested with."
        )

    def optional(self, tracer: Any) -> Targets:
        return _SPAN_SITES

    def unavailable(self, name: str, exc: Exception) -> None:
        warn_once(
            f"AutoGen's {name} was not found ({type(exc).__name__}: {exc}): AutoGen's own "
            "spans for the calls this library records stay beside its spans. Install "
            "autogen-agentchat 0.7, the release this is tested with."
        )
