"""Agno: a span for each agent, team and workflow run and each tool call, one trace per run.

traceloop-sdk 0.38 ships no Agno instrumentation, and the one 0.62 ships cannot be corrected
from outside: this library applies its own on both lines, in its place.

What traceloop 0.62.4's does that this one does not:

* a streamed run (``run(stream=True)``, ``arun(stream=True)``, or ``Agent(stream=True)``)
  opens its agent span without making it current, so the run's model calls and tools each
  start a trace of their own (one run, 4 traces), and the span has no output;
* its wrappers swallow every exception, the app's own included (the run returns None), and
  its ``Team.arun`` wrapper turns a streamed team run into a coroutine, which ``async for``
  rejects;
* a tool's output is the repr of Agno's ``FunctionExecutionResult``, not the tool's result;
  the agent span has no entity name, its input and output are not JSON, and it repeats the
  run's token usage (a backend adding up tokens per trace would count every call twice).

Here the run's span is current wherever the run's code runs: while the call is made, while a
returned coroutine is awaited, and during every step of a returned stream, which ends the span
when it is exhausted, closed or fails. The model calls are recorded by the provider's
instrumentation (OpenAI's, for ``OpenAIChat``) under it. Nothing here ever raises into the app:
a failure to record is logged once and the call goes on untraced.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from .._state import FLAGS, warn_once
from ._offline import agno_telemetry_gate
from ._spans import Entity, astream, begin, inside, report, stream

__all__ = ["AgnoInstrumentor"]

_FRAMEWORK = "Agno"

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

# (module, attribute, label of the span)
_TARGETS = (
    ("agno.agent", "Agent.run", "agent"),
    ("agno.agent", "Agent.arun", "agent"),
    ("agno.agent", "Agent.continue_run", "agent"),  # after a pause for human confirmation
    ("agno.agent", "Agent.acontinue_run", "agent"),
    ("agno.team", "Team.run", "team"),
    ("agno.team", "Team.arun", "team"),
    ("agno.team", "Team.continue_run", "team"),
    ("agno.team", "Team.acontinue_run", "team"),
    ("agno.workflow", "Workflow.run", "workflow"),
    ("agno.workflow", "Workflow.arun", "workflow"),
    ("agno.tools.function", "FunctionCall.execute", "tool"),
    ("agno.tools.function", "FunctionCall.aexecute", "tool"),
)


class _Events(NamedTuple):
    """The events of one kind of run a stream of it is read for.

    A team's or workflow's stream carries its members' and steps' events too: only those
    whose ``field`` names the run's own agent, team or workflow are read (any, for a tool).
    """

    field: str
    content: frozenset[str]  # text deltas
    done: frozenset[str]  # the final event, with the whole content
    error: frozenset[str]
    output: str  # the class of the final output object (with ``yield_run_output=True``)


_EVENTS = {
    "agent": _Events(
        "agent_id",
        frozenset({"RunContent"}),
        frozenset({"RunCompleted"}),
        frozenset({"RunError"}),
        "RunOutput",
    ),
    "team": _Events(
        "team_id",
        frozenset({"TeamRunContent"}),
        frozenset({"TeamRunCompleted"}),
        frozenset({"TeamRunError"}),
        "TeamRunOutput",
    ),
    "workflow": _Events(
        "workflow_id",
        frozenset(),
        frozenset({"WorkflowCompleted"}),
        frozenset({"WorkflowError"}),
        "WorkflowRunOutput",
    ),
    # a tool that is a generator: Agno's delegation to a team member streams the member's run
    "tool": _Events(
        "",
        frozenset({"RunContent", "TeamRunContent"}),
        frozenset({"RunCompleted", "TeamRunCompleted"}),
        frozenset({"RunError", "TeamRunError"}),
        "",
    ),
}


def _start(
    tracer: Any, label: str, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Entity:
    """The span of a run or tool call (a team is an agent, named ``<name>.team``)."""
    name, value = _entity(label, instance, args, kwargs)
    kind = label if label in ("tool", "workflow") else "agent"
    attrs: dict[str, Any] = {"gen_ai.system": "agno"}
    if kind == "tool":
        call_id = getattr(instance, "call_id", None)
        attrs["gen_ai.tool.call.id"] = str(call_id) if call_id else None
        attrs["gen_ai.operation.name"] = None  # not on Agno's tool spans
    return Entity.start(tracer, kind, name, value, attrs, label=label)


def _record(span: Any, value: Any, error: str | None = None, run_id: Any = None) -> None:
    """Record a run's or a tool's result, or the error Agno returned in its place, and the
    run's id (``agno.run.id``: a run paused for confirmation and its ``continue_run`` share
    it)."""
    try:
        if isinstance(run_id, str):
            span.set_attribute("agno.run.id", run_id)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, error))
        elif FLAGS.trace_content:
            from .._serialize import clip, to_json

            span.set_attribute("traceloop.entity.output", clip(to_json(value)))
    except Exception as exc:
        report(_FRAMEWORK, exc)


def _finish(entity: Entity, value: Any, error: str | None = None, run_id: Any = None) -> None:
    try:
        _record(entity.span, value, error, run_id)
    finally:
        entity.span.end()


def _entity(
    label: str, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """The span's entity name and its input."""
    if label == "tool":
        function = getattr(instance, "function", None)
        return str(getattr(function, "name", None) or "tool"), getattr(instance, "arguments", {})
    name = str(getattr(instance, "name", None) or label.capitalize())
    first = args[0] if args else kwargs.get("run_response", kwargs.get("input"))
    run_id = getattr(first, "run_id", None)
    if run_id is not None:  # continue_run(run_response): the run continued, and any new input
        return name, {"continue_run": run_id, "input": kwargs.get("input")}
    if first is None and kwargs.get("run_id") is not None:  # continue_run(run_id=...)
        return name, {"continue_run": kwargs["run_id"], "input": kwargs.get("input")}
    return name, first


def _run_result(result: Any) -> tuple[Any, str | None]:
    """(content, error) of an Agno RunOutput or TeamRunOutput, or of a streamed event."""
    status = getattr(result, "status", None)
    content = getattr(result, "content", None)
    if str(getattr(status, "value", status)).lower() == "error":
        return content, str(content or "the run failed")
    return content, None


def _tool_result(result: Any) -> tuple[Any, str | None]:
    """(result, error) of an Agno FunctionExecutionResult."""
    if getattr(result, "status", None) == "failure":
        return None, str(getattr(result, "error", None) or "the tool call failed")
    return getattr(result, "result", result), None


class _Stream:
    """What a streamed run yielded that its span records: the final content or the error.

    Agno yields the final ``RunCompleted`` event (or the ``RunOutput``) only when asked
    (``stream_events=True``, ``yield_run_output=True``); otherwise the text is the run's
    ``RunContent`` deltas put together.
    """

    __slots__ = ("content", "error", "events", "owner", "parts", "run_id", "seen")

    def __init__(self, label: str, owner: Any) -> None:
        self.events = _EVENTS[label]
        self.owner = getattr(owner, "id", None) if self.events.field else None
        self.content: Any = None
        self.error: str | None = None
        self.parts: list[str] = []
        self.run_id: Any = None
        self.seen = False

    def observe(self, item: Any) -> None:
        events = self.events
        if isinstance(item, str):  # what a tool that is a generator yields
            self.parts.append(item)
            return
        if self.owner is not None and getattr(item, events.field, None) != self.owner:
            return
        if self.run_id is None and events.field:
            self.run_id = getattr(item, "run_id", None)
        event = getattr(item, "event", None)
        if event in events.content:
            delta = getattr(item, "content", None)
            if isinstance(delta, str):
                self.parts.append(delta)
        elif event in events.done or type(item).__name__ == events.output:
            self.content, self.error = _run_result(item)
            self.seen = True
        elif event in events.error:
            self.error = str(getattr(item, "content", None) or "the run failed")
            self.seen = True

    def finish(self, span: Any, error: BaseException | None) -> None:
        """What the stream gave, on its span (a stream that raised: only the error)."""
        if error is not None:
            return
        if self.seen:
            _record(span, self.content, self.error, self.run_id)
        elif self.parts:
            _record(span, "".join(self.parts), run_id=self.run_id)


async def _awaited(entity: Entity, inner: Any, call: Any, label: str) -> Any:
    """Await ``inner`` (the coroutine ``arun`` or ``aexecute`` returned) in the span's context."""
    with inside(_FRAMEWORK, entity):
        result = await inner
    return _done(entity, result, call, label)


def _traced(entity: Entity, value: Any, label: str, owner: Any) -> Any:
    """``value`` iterated inside the span, which ends with it, if it is a stream; else None.
    A stream whose consumer stopped reading and whose task was then cancelled (Agno's async
    workflows do that to a step's agent) ended early: it did not fail."""
    if hasattr(value, "__anext__"):
        seen = _Stream(label, owner)
        cancelled = (asyncio.CancelledError,)
        return astream(
            _FRAMEWORK, entity, value, each=seen.observe, finish=seen.finish, early=cancelled
        )
    if hasattr(value, "__next__"):
        seen = _Stream(label, owner)
        return stream(_FRAMEWORK, entity, value, each=seen.observe, finish=seen.finish)
    return None


def _tool_stream(entity: Entity, result: Any, call: Any) -> bool:
    """A tool that is a generator (Agno's delegation to team members is one) runs as Agno
    iterates its result, after ``execute`` returned: the tool span stays open and current
    until then. False when the result is no stream."""
    inner = getattr(result, "result", None)
    traced = _traced(entity, inner, "tool", None)
    if traced is None:
        return False
    try:
        result.result = traced
        if getattr(call, "result", None) is inner:
            call.result = traced
    except Exception as exc:
        report(_FRAMEWORK, exc)
        entity.span.end()
    return True


def _done(entity: Entity, result: Any, call: Any, label: str) -> Any:
    """Hand the span on to what the call returned, or record the result and end it."""
    if inspect.iscoroutine(result):
        return _awaited(entity, result, call, label)
    if label == "tool":
        if not _tool_stream(entity, result, call):
            _finish(entity, *_tool_result(result))
        return result
    traced = _traced(entity, result, label, call)
    if traced is not None:
        return traced
    _finish(entity, *_run_result(result), getattr(result, "run_id", None))
    return result


def _wrapper(tracer: Any, label: str) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        entity = begin(_FRAMEWORK, lambda: _start(tracer, label, instance, args, kwargs))
        if entity is None:
            return wrapped(*args, **kwargs)
        with inside(_FRAMEWORK, entity):
            result = wrapped(*args, **kwargs)
        try:
            return _done(entity, result, instance, label)
        except Exception as exc:
            report(_FRAMEWORK, exc)
            entity.span.end()
            return result

    return wrapper


class AgnoInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Agent, team and tool spans for Agno (``init()`` applies it when agno is installed).

    Each Agno module is wrapped as the app imports it (an app using agents only never pays
    for importing Agno's teams and workflows).

    Example:
        >>> AgnoInstrumentor().instrumentation_dependencies()
        ('agno >= 2.0.0',)
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("agno >= 2.0.0",)

    def _instrument(self, **kwargs: Any) -> None:
        from opentelemetry import trace

        from .._import_hooks import when_imported
        from .._version import __version__

        global _active
        _active = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        for module in dict.fromkeys(m for m, _a, _l in _TARGETS):
            when_imported(module, _wrap_module)
        when_imported("agno.api.api", _gate)

    def _uninstrument(self, **kwargs: Any) -> None:
        global _active
        _active = None
        _unwrap(__name__)


# The tracer of the instrumentation in force: the import hooks, which cannot be removed, do
# nothing once it is uninstrumented.
_active: Any = None


def _wrap_module(module: Any) -> None:
    """Wrap the targets in ``module`` (just imported), once; never raises."""
    from wrapt import wrap_function_wrapper

    tracer = _active
    if tracer is None:
        return
    _remove_traceloops(module.__name__)
    for name, attribute, label in _TARGETS:
        if name != module.__name__:
            continue
        try:
            cls_name, _, method = attribute.partition(".")
            current = getattr(module, cls_name).__dict__.get(method)
            if _wrapped_by(current, __name__):
                continue
            wrap_function_wrapper(module, attribute, _wrapper(tracer, label))
        except Exception as exc:
            _said(f"{attribute} could not be wrapped", exc)


def _said(what: str, exc: Exception) -> None:
    warn_once(
        f"Agno's {what} ({type(exc).__name__}: {exc}): that part of Agno is not traced as "
        "it should be. Install an Agno release this truefoundry-tracing version is tested "
        "with (agno 3.1), or leave 'agno' out of instruments= to turn this off."
    )


def _gate(_module: Any) -> None:
    if _active is not None:
        agno_telemetry_gate()


def _wrapped_by(method: Any, owner: str) -> bool:
    """True when ``method`` is a wrapt wrapper put on by module ``owner`` or one under it."""
    wrapper = getattr(method, "_self_wrapper", None)
    return str(getattr(wrapper, "__module__", "")).startswith(owner)


def _unwrap(owner: str, only: str | None = None) -> None:
    """Take off the wrappers that module ``owner`` (or a module under it) put on the targets
    (those in Agno module ``only``, when given) of the Agno modules imported. Never raises."""
    for name, attribute, _label in _TARGETS:
        module = sys.modules.get(name)
        if module is None or (only is not None and name != only):
            continue
        try:
            cls_name, _, method = attribute.partition(".")
            cls = getattr(module, cls_name)
            current = cls.__dict__.get(method)
            if _wrapped_by(current, owner):
                setattr(cls, method, current.__wrapped__)
        except Exception as exc:
            _said(f"{owner}'s wrapper of {attribute} could not be taken out", exc)


def _remove_traceloops(module: str) -> None:
    """Unwrap traceloop's Agno instrumentation in ``module`` when ``Traceloop.init()`` applied
    it: with both, every run and tool call would get two spans. (Its ``uninstrument()`` unwraps
    nothing: it names ``Agent.run`` as an attribute of the module.) It stays marked as applied,
    so a later ``Traceloop.init()`` does not apply it again."""
    theirs = "opentelemetry.instrumentation.agno"
    if theirs in sys.modules:  # else never imported, so never applied
        _unwrap(theirs, module)
