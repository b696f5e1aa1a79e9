"""Spans of the framework instrumentations this library ships, in traceloop's conventions.

One way for every instrumentation of ours (smolagents, DSPy, AutoGen, AG2, Agno, and the
Google GenAI corrections) to record an entity span: :meth:`Entity.start` opens it, :func:`call`
/ :func:`acall` / :func:`stream` / :func:`astream` run a sync call, a coroutine, a generator or
an async generator inside it and end it (with the error and an ``ERROR`` status when the call
fails), :func:`report` says once that our code failed. :func:`begin` and :func:`inside` are
their two halves, for a call whose result decides how its span ends (a returned stream keeps
it open). A stream's span can read every item (``each``) and record what they add up to
(``finish``), and a span started elsewhere (traceloop's) can be driven without being made
current (``Entity(span, None)``). :func:`tool_attributes` and :func:`record_output` are a
tool span's attributes for the instrumentations that open their spans themselves (CrewAI,
MCP).

An agent, step or tool span carries what this library's decorators write
(``traceloop.span.kind``, ``traceloop.entity.name``, ``traceloop.workflow.name``,
``traceloop.entity.path``, ``traceloop.entity.input`` / ``.output`` as bounded JSON) and sets
the same context keys, so LLM spans inside nest under it. Inputs and outputs are left out
with ``trace_content=False``; with ``init(enabled=False)`` the wrapped calls are plain calls.

Tracing never breaks the app: a failure of this module's own code is logged once and the
call goes on untraced; the wrapped code's own exceptions are recorded and re-raised unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .._context import AGENT_KEY, ENTITY_PATH_KEY, WORKFLOW_KEY
from .._serialize import clip, to_json
from .._state import FLAGS, warn_once

__all__ = [
    "NO_OUTPUT",
    "Entity",
    "Finish",
    "Opener",
    "acall",
    "astream",
    "begin",
    "call",
    "inside",
    "model_call_suppressed",
    "record_output",
    "report",
    "stream",
    "tool_attributes",
]

_KIND = "traceloop.span.kind"
_NAME = "traceloop.entity.name"
_WORKFLOW = "traceloop.workflow.name"
_PATH = "traceloop.entity.path"
_INPUT = "traceloop.entity.input"
_OUTPUT = "traceloop.entity.output"
_UNSET: Any = object()
_OWN = "truefoundry_tracing.own_span"  # context key: the span an Entity started
_SUPPRESS_MODEL_CALLS = "suppress_language_model_instrumentation"  # traceloop's context key
#: what an ``output`` function returns to record no output
NO_OUTPUT: Any = _UNSET


def report(framework: str, exc: BaseException) -> None:
    """Say once that an instrumentation of ours failed; the app's call is not affected.

    Example:
        >>> report("demo", ValueError("boom"))  # logs one warning, once per message
    """
    warn_once(
        f"{framework}: recording a call failed ({type(exc).__name__}: {exc}); the app runs on, "
        "but that span is missing or incomplete. Leave "
        f"{framework.lower()!r} out of instruments= (or TFY_TRACING_INSTRUMENTS) to turn the "
        f"{framework} instrumentation off, and report it with your truefoundry-tracing and "
        f"{framework} versions."
    )


def model_call_suppressed() -> bool:
    """Whether the current context asks that no model-call span be recorded: OpenTelemetry's
    suppression, or traceloop's ``suppress_language_model_instrumentation``, which a framework
    sets around a call it records itself. traceloop's provider instrumentations read both.

    Example:
        >>> model_call_suppressed()
        False
    """
    from opentelemetry import context
    from opentelemetry.instrumentation import utils

    keys = (getattr(utils, "_SUPPRESS_INSTRUMENTATION_KEY", None), _SUPPRESS_MODEL_CALLS)
    return any(key is not None and context.get_value(key) for key in keys)


def tool_attributes(name: str, arguments: Any) -> dict[str, Any]:
    """The attributes to start the span of one run of tool ``name`` with.

    Example:
        >>> tool_attributes("get_weather", {"city": "Paris"})["traceloop.entity.input"]
        '{"city": "Paris"}'
    """
    attributes: dict[str, Any] = {
        _KIND: "tool",
        _NAME: name,
        "gen_ai.tool.name": name,
        "gen_ai.operation.name": "execute_tool",
    }
    if FLAGS.trace_content:
        attributes[_INPUT] = clip(to_json(arguments))
    return attributes


def record_output(span: Any, value: Any) -> None:
    """Put a tool's result on its span (nothing when content capture is off or no span)."""
    if span is not None and FLAGS.trace_content:
        span.set_attribute(_OUTPUT, clip(to_json(value)))


class Entity:
    """One span being recorded and the context its body runs in.

    Example:
        >>> from opentelemetry import trace
        >>> e = Entity.start(trace.get_tracer("doc"), "tool", "get_weather", {"city": "Oslo"})
        >>> e.finish("Sunny")
    """

    __slots__ = ("context", "span")

    def __init__(self, span: Any, context: Any) -> None:
        self.span = span
        self.context = context

    @classmethod
    def start(
        cls,
        tracer: Any,
        kind: str,
        name: str,
        inputs: Any = _UNSET,
        attributes: Mapping[str, Any] | None = None,
        label: str | None = None,
    ) -> Entity:
        """Start a ``<name>.<label or kind>`` span under the current context, with
        ``attributes`` too (one given as None is left out). A tool's ``inputs`` are its
        arguments, recorded as the library's other tool spans record them
        (:func:`tool_attributes`); a workflow names the workflow of the spans inside it.
        """
        from opentelemetry import context as context_api
        from opentelemetry import trace

        if FLAGS.before_span is not None:  # deferred instrumentations load outside the span
            FLAGS.before_span()
        parent = context_api.get_current()
        if kind == "tool":
            attrs = tool_attributes(name, {} if inputs is _UNSET else inputs)
        else:
            attrs = {_KIND: kind, _NAME: name}
            if kind == "agent":
                attrs["gen_ai.agent.name"] = name
            if inputs is not _UNSET and FLAGS.trace_content:
                attrs[_INPUT] = clip(to_json(inputs))
        workflow = name if kind == "workflow" else parent.get(WORKFLOW_KEY)
        if workflow is not None:
            attrs[_WORKFLOW] = workflow
        path = parent.get(ENTITY_PATH_KEY)
        if path is not None:
            attrs[_PATH] = path
        for key, value in (attributes or {}).items():
            if value is None:
                attrs.pop(key, None)
            else:
                attrs[key] = value
        span = tracer.start_span(f"{name}.{label or kind}", context=parent, attributes=attrs)
        ctx = context_api.set_value(_OWN, span, trace.set_span_in_context(span, parent))
        if kind == "agent":
            ctx = context_api.set_value(AGENT_KEY, name, ctx)
        elif kind in ("task", "tool"):
            ctx = context_api.set_value(ENTITY_PATH_KEY, f"{path}.{name}" if path else name, ctx)
        elif kind == "workflow":
            ctx = context_api.set_value(WORKFLOW_KEY, name, ctx)
        return cls(span, ctx)

    @staticmethod
    def current() -> Any:
        """The current span when an :meth:`start` started it (its call is starting), else None.

        Example:
            >>> Entity.current() is None
            True
        """
        from opentelemetry import context as context_api
        from opentelemetry import trace

        span = context_api.get_value(_OWN)
        return span if span is not None and span is trace.get_current_span() else None

    @classmethod
    def client(cls, tracer: Any, name: str, attributes: dict[str, Any]) -> Entity:
        """Start a model-call span (kind CLIENT, no traceloop kind) under the current context."""
        from opentelemetry import context as context_api
        from opentelemetry import trace

        parent = context_api.get_current()
        workflow = parent.get(WORKFLOW_KEY)
        if workflow is not None:
            attributes = {_WORKFLOW: workflow, **attributes}
        span = tracer.start_span(
            name, context=parent, kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        return cls(span, trace.set_span_in_context(span, parent))

    def finish(self, output: Any = _UNSET, error: BaseException | None = None) -> None:
        """Record the output (or the error) and end the span (ended even if recording fails)."""
        span = self.span
        try:
            if error is not None:
                from opentelemetry.trace import Status, StatusCode

                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            elif output is not _UNSET and FLAGS.trace_content and span.is_recording():
                span.set_attribute(_OUTPUT, clip(to_json(output)))
        finally:
            span.end()

    def attach(self) -> Any:
        """Make the span's context current (a span with no context: nothing to do)."""
        if self.context is None:
            return None
        from opentelemetry import context as context_api

        return context_api.attach(self.context)

    @staticmethod
    def detach(token: Any) -> None:
        if token is not None:
            from opentelemetry import context as context_api

            context_api.detach(token)


#: opens the span of a call, or returns None when this call is not recorded
Opener = Callable[[], "Entity | None"]
#: ``finish(span, error)`` puts what a stream added up to on its span before it ends
#: (``error``: what it failed with; None when it ended or was closed early)
Finish = Callable[[Any, "BaseException | None"], None]


def begin(framework: str, open_span: Opener | Entity) -> Entity | None:
    """The span ``open_span()`` starts (an :class:`Entity` given is already started); None
    when tracing is off, the call is not recorded, or starting it failed (said once).

    Example:
        >>> begin("demo", lambda: None) is None
        True
    """
    if isinstance(open_span, Entity):
        return open_span
    if not FLAGS.enabled:
        return None
    try:
        return open_span()
    except Exception as exc:
        report(framework, exc)
        return None


def _end(framework: str, entity: Entity, output: Any, error: BaseException | None) -> None:
    try:
        entity.finish(output, error)
    except Exception as exc:
        report(framework, exc)


@contextmanager
def inside(framework: str, entity: Entity) -> Iterator[None]:
    """Run the block in the span's context; a failure of the block ends the span with it
    (and is raised on); the span stays open otherwise.

    Example:
        >>> from opentelemetry import trace
        >>> e = Entity.start(trace.get_tracer("doc"), "task", "step")
        >>> with inside("demo", e):
        ...     pass
        >>> e.finish()
    """
    token = entity.attach()
    try:
        yield
    except BaseException as exc:
        _end(framework, entity, _UNSET, exc)
        raise
    finally:
        entity.detach(token)


def call(
    framework: str,
    open_span: Opener,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    output: Callable[[Any], Any] = lambda result: result,
    failure: Callable[[Any], BaseException | None] | None = None,
) -> Any:
    """``fn(*args, **kwargs)`` inside the span ``open_span()`` starts (none: a plain call);
    ``output(result)`` is
    recorded as its output, its exception as its error, and so is the exception
    ``failure(result)`` finds in a result (a tool error the framework hands to the model).

    Example:
        >>> from opentelemetry import trace
        >>> tracer = trace.get_tracer("doc")
        >>> call("demo", lambda: Entity.start(tracer, "tool", "add"), max, (1, 2), {})
        2
    """
    entity = begin(framework, open_span)
    if entity is None:
        return fn(*args, **kwargs)
    with inside(framework, entity):
        result = fn(*args, **kwargs)
    _done(framework, entity, result, output, failure)
    return result


async def acall(
    framework: str,
    open_span: Opener,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    output: Callable[[Any], Any] = lambda result: result,
    failure: Callable[[Any], BaseException | None] | None = None,
) -> Any:
    """``await fn(*args, **kwargs)`` inside the span ``open_span()`` starts (see :func:`call`).

    Example:
        >>> import asyncio
        >>> from opentelemetry import trace
        >>> async def add(a: int, b: int) -> int:
        ...     return a + b
        >>> opened = lambda: Entity.start(trace.get_tracer("doc"), "tool", "add")
        >>> asyncio.run(acall("demo", opened, add, (1, 2), {}))
        3
    """
    entity = begin(framework, open_span)
    if entity is None:
        return await fn(*args, **kwargs)
    with inside(framework, entity):
        result = await fn(*args, **kwargs)
    _done(framework, entity, result, output, failure)
    return result


def _done(
    framework: str,
    entity: Entity,
    result: Any,
    output: Callable[[Any], Any],
    failure: Callable[[Any], BaseException | None] | None,
) -> None:
    """End the span of a call that returned ``result``: with the error ``failure`` finds in
    it, else with ``output(result)``."""
    error = None if failure is None else _recorded(framework, failure, result)
    if isinstance(error, BaseException):
        _end(framework, entity, _UNSET, error)
    else:
        _end(framework, entity, _recorded(framework, output, result), None)


def _recorded(framework: str, output: Callable[[Any], Any], result: Any) -> Any:
    try:
        return output(result)
    except Exception as exc:
        report(framework, exc)
        return _UNSET


def _same(value: Any) -> Any:
    return value


class _Steps:
    """What a stream's span records of its items: ``output(last item)``, or what ``finish``
    puts on it; ``each`` reads every item (a failure of either is said once, never raised)."""

    __slots__ = ("each", "finish", "framework", "last", "output")

    def __init__(
        self,
        framework: str,
        output: Callable[[Any], Any],
        each: Callable[[Any], None] | None,
        finish: Finish | None,
        last: Any,
    ) -> None:
        self.framework, self.output, self.each, self.finish = framework, output, each, finish
        self.last = last

    def saw(self, item: Any) -> None:
        self.last = item
        if self.each is not None:
            try:
                self.each(item)
            except Exception as exc:
                report(self.framework, exc)

    def end(self, entity: Entity, error: BaseException | None) -> None:
        """Record what the stream gave (or the error) and end the span."""
        framework = self.framework
        if self.finish is not None:
            try:
                self.finish(entity.span, error)
            except Exception as exc:
                report(framework, exc)
            _end(framework, entity, _UNSET, error)
        elif error is not None or self.last is _UNSET:
            _end(framework, entity, _UNSET, error)
        else:
            _end(framework, entity, _recorded(framework, self.output, self.last), None)


def stream(
    framework: str,
    open_span: Opener | Entity,
    gen: Iterator[Any],
    output: Callable[[Any], Any] = _same,
    *,
    each: Callable[[Any], None] | None = None,
    finish: Finish | None = None,
) -> Iterator[Any]:
    """``gen``, each step run in the span ``open_span()`` starts now (under the caller's
    context); the span ends with the generator (exhausted, failed, closed or abandoned) and
    records ``output(last item)``, or what ``finish`` puts on it (see :class:`_Steps`). Each
    step's context is undone before its item is handed on, so the consumer's own work between
    items is not inside the span. A generator closed early is closed in the span's context.

    Example:
        >>> from opentelemetry import trace
        >>> opened = lambda: Entity.start(trace.get_tracer("doc"), "agent", "a")
        >>> list(stream("demo", opened, (n for n in (1, 2)), lambda last: last))
        [1, 2]
    """
    entity = begin(framework, open_span)
    if entity is None:
        return gen
    return _driven(entity, gen, _Steps(framework, output, each, finish, None))


def _step(gen: Any, to_send: Any, thrown: BaseException | None) -> Any:
    """The next item of ``gen`` (an iterator, or a generator sent a value or an error)."""
    if thrown is not None:
        throw = getattr(gen, "throw", None)
        if throw is None:
            raise thrown
        return throw(thrown)
    return next(gen) if to_send is None else gen.send(to_send)


def _driven(entity: Entity, gen: Iterator[Any], steps: _Steps) -> Generator[Any, Any, Any]:
    error: BaseException | None = None
    try:
        to_send: Any = None
        thrown: BaseException | None = None
        while True:
            token = entity.attach()
            try:
                item = _step(gen, to_send, thrown)
            except StopIteration as stop:
                return stop.value
            finally:
                thrown = None
                entity.detach(token)
            steps.saw(item)
            try:
                to_send = yield item
            except GeneratorExit:
                _close(entity, gen)
                raise
            except BaseException as exc:  # thrown into us: forward it on the next step
                thrown = exc
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        steps.end(entity, error)


def _close(entity: Entity, gen: Iterator[Any]) -> None:
    close = getattr(gen, "close", None)
    if close is not None:
        token = entity.attach()
        try:
            close()
        finally:
            entity.detach(token)


async def astream(
    framework: str,
    open_span: Opener | Entity,
    agen: AsyncIterator[Any],
    output: Callable[[Any], Any] = _same,
    *,
    each: Callable[[Any], None] | None = None,
    finish: Finish | None = None,
    early: tuple[type[BaseException], ...] = (),
) -> AsyncIterator[Any]:
    """Yield what ``agen`` yields, each step run inside the span ``open_span()`` starts on
    the first step; the span ends with ``output(last item)`` when the stream ends (an error,
    or an early close, ends it too; a stream that yielded nothing records no output), or with
    what ``finish`` puts on it. An exception among ``early`` (a cancelled consumer) ends the
    stream early, not with an error. Between items the app's code runs in its own context,
    not in the span; a stream left early is closed in the span's context.

    Example:
        >>> import asyncio
        >>> from opentelemetry import trace
        >>> async def numbers() -> AsyncIterator[int]:
        ...     yield 1
        ...     yield 2
        >>> async def main() -> list[int]:
        ...     opened = lambda: Entity.start(trace.get_tracer("doc"), "agent", "a")
        ...     return [n async for n in astream("demo", opened, numbers(), lambda last: last)]
        >>> asyncio.run(main())
        [1, 2]
    """
    entity = begin(framework, open_span)
    if entity is None:
        async for item in agen:
            yield item
        return
    steps = _Steps(framework, output, each, finish, _UNSET)
    error: BaseException | None = None
    done = False
    try:
        while True:
            token = entity.attach()
            try:
                item = await agen.__anext__()
            except StopAsyncIteration:
                done = True
                break
            finally:
                entity.detach(token)
            steps.saw(item)
            yield item
    except GeneratorExit:  # closed early: not an error
        raise
    except BaseException as exc:
        error = None if isinstance(exc, early) else exc
        raise
    finally:
        if not done:  # closed early or failed: let the framework's generator clean up
            await _aclose(framework, entity, agen)
        steps.end(entity, error)


async def _aclose(framework: str, entity: Entity, agen: AsyncIterator[Any]) -> None:
    close = getattr(agen, "aclose", None)
    if close is not None:
        token = entity.attach()
        try:
            await close()
        except Exception as exc:
            report(framework, exc)
        finally:
            entity.detach(token)
