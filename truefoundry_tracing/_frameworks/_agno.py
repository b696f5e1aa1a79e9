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
import logging
import sys
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from typing import Any, NamedTuple

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from .._context import AGENT_KEY, ENTITY_PATH_KEY, WORKFLOW_KEY
from .._state import FLAGS
from ._offline import agno_telemetry_gate

__all__ = ["AgnoInstrumentor"]

logger = logging.getLogger("truefoundry_tracing")

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
_warned: set[str] = set()


def _warn_once(what: str) -> None:
    if what not in _warned:
        _warned.add(what)
        logger.warning(
            "truefoundry_tracing: recording an Agno %s failed; the run goes on, partly "
            "untraced. Please report it with the traceback below.",
            what,
            exc_info=True,
        )


class _Tracing:
    """The OpenTelemetry pieces the wrappers use, bound once."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import context as context_api
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        from .._serialize import clip, to_json

        self.tracer = tracer
        self.attach = context_api.attach
        self.detach = context_api.detach
        self.current = context_api.get_current
        self.set_value = context_api.set_value
        self.in_context = trace.set_span_in_context
        self._status: Callable[[Any, str], Any] = Status
        self._error = StatusCode.ERROR
        self._clip = clip
        self._to_json = to_json

    def json(self, value: Any) -> str:
        return self._clip(self._to_json(value))

    def error(self, text: str) -> Any:
        return self._status(self._error, text)

    def start(
        self, label: str, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The span and the context to run in, or None when tracing is off."""
        if not FLAGS.enabled:
            return None
        if FLAGS.before_span is not None:
            FLAGS.before_span()
        ctx = self.current()
        name, value = _entity(label, instance, args, kwargs)
        kind = label if label in ("tool", "workflow") else "agent"  # a team is an agent
        attrs: dict[str, Any] = {
            "traceloop.span.kind": kind,
            "traceloop.entity.name": name,
            "gen_ai.system": "agno",
        }
        # as this library's decorators: a workflow names itself, the others keep the name of
        # the workflow they run in, and tools add their name to the entity path
        workflow = name if kind == "workflow" else ctx.get(WORKFLOW_KEY)
        if workflow is not None:
            attrs["traceloop.workflow.name"] = workflow
        path = ctx.get(ENTITY_PATH_KEY)
        if path is not None:
            attrs["traceloop.entity.path"] = path
        if kind == "tool":
            attrs["gen_ai.tool.name"] = name
            call_id = getattr(instance, "call_id", None)
            if call_id:
                attrs["gen_ai.tool.call.id"] = str(call_id)
        elif kind == "agent":
            attrs["gen_ai.agent.name"] = name
        if FLAGS.trace_content:
            attrs["traceloop.entity.input"] = self.json(value)
        span = self.tracer.start_span(f"{name}.{label}", context=ctx, attributes=attrs)
        ctx = self.in_context(span, ctx)
        if kind == "tool":
            ctx = self.set_value(ENTITY_PATH_KEY, f"{path}.{name}" if path else name, ctx)
        elif kind == "agent":
            ctx = self.set_value(AGENT_KEY, name, ctx)
        else:
            ctx = self.set_value(WORKFLOW_KEY, name, ctx)
        return span, ctx

    def fail(self, span: Any, exc: BaseException) -> None:
        span.record_exception(exc)
        span.set_status(self.error(f"{type(exc).__name__}: {exc}"))

    def output(self, span: Any, value: Any, error: str | None = None, run_id: Any = None) -> None:
        """Record a run's or a tool's result, or the error Agno returned in its place, and the
        run's id (``agno.run.id``: a run paused for confirmation and its ``continue_run`` share
        it)."""
        try:
            if isinstance(run_id, str):
                span.set_attribute("agno.run.id", run_id)
            if error is not None:
                span.set_status(self.error(error))
            elif FLAGS.trace_content:
                span.set_attribute("traceloop.entity.output", self.json(value))
        except Exception:
            _warn_once("output")


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

    def finish(self, t: _Tracing, span: Any) -> None:
        if self.seen:
            t.output(span, self.content, self.error, self.run_id)
        elif self.parts:
            t.output(span, "".join(self.parts), run_id=self.run_id)
        span.end()


def _stream(t: _Tracing, span: Any, ctx: Any, inner: Iterator[Any], seen: _Stream) -> Iterator[Any]:
    """Iterate ``inner`` with the run's span current at every step; end it with the stream."""
    failed = False
    try:
        while True:
            token = t.attach(ctx)
            try:
                item = next(inner)
            except StopIteration:
                return
            finally:
                t.detach(token)
            try:
                seen.observe(item)
            except Exception:
                _warn_once("streamed event")
            yield item
    except GeneratorExit:
        close = getattr(inner, "close", None)
        if close is not None:
            token = t.attach(ctx)
            try:
                close()
            finally:
                t.detach(token)
        raise
    except BaseException as exc:
        failed = True
        t.fail(span, exc)
        raise
    finally:
        if failed:
            span.end()
        else:
            seen.finish(t, span)


async def _astream(
    t: _Tracing, span: Any, ctx: Any, inner: AsyncIterator[Any], seen: _Stream
) -> AsyncIterator[Any]:
    """The async counterpart of :func:`_stream`."""
    failed = False
    try:
        while True:
            token = t.attach(ctx)
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                return
            finally:
                t.detach(token)
            try:
                seen.observe(item)
            except Exception:
                _warn_once("streamed event")
            yield item
    except GeneratorExit:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            token = t.attach(ctx)
            try:
                await aclose()
            finally:
                t.detach(token)
        raise
    except BaseException as exc:
        # a stream whose consumer stopped reading and whose task was then cancelled (Agno's
        # async workflows do that to a step's agent) ended early: it did not fail
        failed = not isinstance(exc, asyncio.CancelledError)
        if failed:
            t.fail(span, exc)
        raise
    finally:
        if failed:
            span.end()
        else:
            seen.finish(t, span)


async def _awaited(t: _Tracing, span: Any, ctx: Any, inner: Any, call: Any, label: str) -> Any:
    """Await ``inner`` (the coroutine ``arun`` or ``aexecute`` returned) in the span's context."""
    token = t.attach(ctx)
    try:
        result = await inner
    except BaseException as exc:
        t.fail(span, exc)
        span.end()
        raise
    finally:
        t.detach(token)
    return _done(t, span, ctx, result, call, label)


def _traced(t: _Tracing, span: Any, ctx: Any, value: Any, label: str, owner: Any) -> Any:
    """``value`` iterated inside the span, if it is a stream; else None."""
    if hasattr(value, "__anext__"):
        return _astream(t, span, ctx, value, _Stream(label, owner))
    if hasattr(value, "__next__"):
        return _stream(t, span, ctx, value, _Stream(label, owner))
    return None


def _tool_stream(t: _Tracing, span: Any, ctx: Any, result: Any, call: Any) -> bool:
    """A tool that is a generator (Agno's delegation to team members is one) runs as Agno
    iterates its result, after ``execute`` returned: the tool span stays open and current
    until then. False when the result is no stream."""
    inner = getattr(result, "result", None)
    traced = _traced(t, span, ctx, inner, "tool", None)
    if traced is None:
        return False
    try:
        result.result = traced
        if getattr(call, "result", None) is inner:
            call.result = traced
    except Exception:
        _warn_once("tool stream")
        span.end()
    return True


def _done(t: _Tracing, span: Any, ctx: Any, result: Any, call: Any, label: str) -> Any:
    """Hand the span on to what the call returned, or record the result and end it."""
    if inspect.iscoroutine(result):
        return _awaited(t, span, ctx, result, call, label)
    if label == "tool":
        if not _tool_stream(t, span, ctx, result, call):
            t.output(span, *_tool_result(result))
            span.end()
        return result
    traced = _traced(t, span, ctx, result, label, call)
    if traced is not None:
        return traced
    t.output(span, *_run_result(result), getattr(result, "run_id", None))
    span.end()
    return result


def _wrapper(t: _Tracing, label: str) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            started = t.start(label, instance, args, kwargs)
        except Exception:
            _warn_once(f"{label} span")
            started = None
        if started is None:
            return wrapped(*args, **kwargs)
        span, ctx = started
        token = t.attach(ctx)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            t.fail(span, exc)
            span.end()
            raise
        finally:
            t.detach(token)
        try:
            return _done(t, span, ctx, result, instance, label)
        except Exception:
            _warn_once(f"{label} result")
            span.end()
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
        _active = _Tracing(trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider")))
        for module in dict.fromkeys(m for m, _a, _l in _TARGETS):
            when_imported(module, _wrap_module)
        when_imported("agno.api.api", _gate)

    def _uninstrument(self, **kwargs: Any) -> None:
        global _active
        _active = None
        _unwrap(__name__)


# The tracing of the instrumentation in force: the import hooks, which cannot be removed, do
# nothing once it is uninstrumented.
_active: _Tracing | None = None


def _wrap_module(module: Any) -> None:
    """Wrap the targets in ``module`` (just imported), once; never raises."""
    from wrapt import wrap_function_wrapper

    t = _active
    if t is None:
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
            wrap_function_wrapper(module, attribute, _wrapper(t, label))
        except Exception:
            _warn_once(f"instrumentation ({attribute} could not be wrapped)")


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
        except Exception:
            _warn_once(f"instrumentation ({owner}'s could not be taken out)")


def _remove_traceloops(module: str) -> None:
    """Unwrap traceloop's Agno instrumentation in ``module`` when ``Traceloop.init()`` applied
    it: with both, every run and tool call would get two spans. (Its ``uninstrument()`` unwraps
    nothing: it names ``Agent.run`` as an attribute of the module.) It stays marked as applied,
    so a later ``Traceloop.init()`` does not apply it again."""
    theirs = "opentelemetry.instrumentation.agno"
    if theirs in sys.modules:  # else never imported, so never applied
        _unwrap(theirs, module)
