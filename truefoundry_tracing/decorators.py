"""``@workflow``, ``@task``, ``@agent`` and ``@tool``: spans around your own functions.

They emit what traceloop's decorators emit (``traceloop.span.kind``, ``traceloop.entity.name``,
``traceloop.workflow.name``, ``traceloop.entity.path``, ``traceloop.entity.input`` /
``.output``) and set the same context keys, so instrumented LLM calls inside nest under them and
carry the workflow name. Unlike traceloop 0.38.12 to 0.62.1 they behave the same on every
supported traceloop version:

- the workflow name and the current span end with the function (nothing leaks to later spans);
- generators and async generators: the span covers the whole iteration and ends when the
  generator is exhausted, closed, or abandoned; what was yielded is recorded (bounded);
- exceptions are recorded on the span and re-raised unchanged;
- before ``init()`` they trace into whatever tracer provider is set, silently; with
  ``init(enabled=False)`` they are plain calls.

Inputs and outputs are recorded as JSON of at most 64 KiB each (see ``_serialize``); with
``trace_content=False`` they are not recorded at all.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Protocol, TypeVar, cast, overload

from ._context import AGENT_KEY, ENTITY_PATH_KEY, FLAGS, WORKFLOW_KEY

__all__ = ["Decorate", "Decorator", "agent", "task", "tool", "workflow"]

_F = TypeVar("_F", bound=Callable[..., Any])
_M = TypeVar("_M", "classmethod[Any, Any, Any]", "staticmethod[Any, Any]")

_KIND = "traceloop.span.kind"
_NAME = "traceloop.entity.name"
_VERSION = "traceloop.entity.version"
_WORKFLOW = "traceloop.workflow.name"
_PATH = "traceloop.entity.path"
_INPUT = "traceloop.entity.input"
_OUTPUT = "traceloop.entity.output"
_MAX_YIELDED = 100


class _Runtime:
    """OpenTelemetry pieces, imported on the first traced call rather than at import time."""

    def __init__(self) -> None:
        from opentelemetry import context as context_api
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        from ._serialize import clip, to_json

        self.attach = context_api.attach
        self.detach = context_api.detach
        # ``reset(token)`` undoes ``attach`` and may raise; callers fall back to ``detach``,
        # which logs the failure as OpenTelemetry does and never raises.
        self.reset = context_api.detach
        self.get_current = context_api.get_current
        self._bind_context_var(context_api)
        self.context = context_api.Context
        # The key the current span is stored under, found through the public API: the span
        # and our keys then go into one new context instead of one copy per value.
        probe = trace.set_span_in_context(trace.INVALID_SPAN, context_api.Context())
        self.span_key = next(iter(probe))
        self.global_tracer = trace.get_tracer("truefoundry_tracing")
        self.error = StatusCode.ERROR
        self.status = Status
        self.to_json = to_json
        self.clip = clip

    def _bind_context_var(self, context_api: Any) -> None:
        """With OpenTelemetry's default runtime context, use its ContextVar directly.

        attach, detach and get_current run several times per traced call; going through
        ``opentelemetry.context`` adds two Python calls to each. Another runtime context
        (``OTEL_PYTHON_CONTEXT``) keeps the public functions.
        """
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
        var = getattr(runtime, "_current_context", None)
        if type(runtime) is not ContextVarsRuntimeContext or var is None:
            return
        reset = var.reset
        slow_detach = context_api.detach

        def detach(token: Any) -> None:
            try:
                reset(token)
            except Exception:
                slow_detach(token)

        self.attach = var.set
        self.detach = detach
        self.reset = reset
        self.get_current = var.get


_rt: _Runtime | None = None


def _runtime() -> _Runtime:
    global _rt
    if _rt is None:
        _rt = _Runtime()
    return _rt


class _Entity:
    """What one decorated function is: its span name, kind and attributes."""

    __slots__ = ("kind", "name", "span_name", "version")

    def __init__(self, kind: str, name: str, version: int | None) -> None:
        self.kind = kind
        self.name = name
        self.version = version
        self.span_name = f"{name}.{kind}"

    def start(
        self, rt: _Runtime, args: tuple[Any, ...], kwargs: dict[str, Any], parent: Any = None
    ) -> tuple[Any, Any]:
        """Start the span and build the context to run the body in."""
        if FLAGS.before_span is not None:
            FLAGS.before_span()
        ctx = parent if parent is not None else rt.get_current()
        attrs: dict[str, Any] = {_KIND: self.kind, _NAME: self.name}
        if self.version is not None:
            attrs[_VERSION] = self.version
        kind = self.kind
        workflow = ctx.get(WORKFLOW_KEY)
        # As traceloop 0.62: a workflow names itself; an agent inside a workflow keeps the
        # workflow's name, and a bare agent leaves it unset (an agent is not a workflow).
        starts_workflow = kind == "workflow"
        if starts_workflow:
            attrs[_WORKFLOW] = self.name
        elif workflow is not None:  # else the root processor adds it: one locked call more
            attrs[_WORKFLOW] = workflow
        # traceloop.entity.path is the path of the enclosing tasks and tools; a task or tool
        # adds its own name for the spans inside it.
        parent_path = ctx.get(ENTITY_PATH_KEY)
        if parent_path is not None:
            attrs[_PATH] = parent_path
        if kind == "agent":
            attrs["gen_ai.agent.name"] = self.name
        elif kind == "tool":
            attrs["gen_ai.tool.name"] = self.name
        if FLAGS.trace_content:
            attrs[_INPUT] = rt.clip(rt.to_json({"args": args, "kwargs": kwargs}))
        tracer = FLAGS.tracer or rt.global_tracer
        span = tracer.start_span(self.span_name, context=ctx, attributes=attrs)
        values = dict(ctx)
        values[rt.span_key] = span
        if starts_workflow:
            values[WORKFLOW_KEY] = self.name
        if kind == "agent":
            values[AGENT_KEY] = self.name
        if kind in ("task", "tool"):
            values[ENTITY_PATH_KEY] = f"{parent_path}.{self.name}" if parent_path else self.name
        return span, rt.context(values)

    @staticmethod
    def fail(rt: _Runtime, span: Any, exc: BaseException) -> None:
        span.record_exception(exc)
        span.set_status(rt.status(rt.error, f"{type(exc).__name__}: {exc}"))


def _wrap_function(fn: Callable[..., Any], entity: _Entity) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not FLAGS.enabled:
            return fn(*args, **kwargs)
        rt = _rt or _runtime()
        span, ctx = entity.start(rt, args, kwargs)
        token = rt.attach(ctx)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            entity.fail(rt, span, exc)
            span.end()
            raise
        finally:
            rt.detach(token)
        if span.is_recording():
            if inspect.isgenerator(result):  # a plain function that returns a generator
                return _traced_generator(rt, span, ctx, result)
            if FLAGS.trace_content:
                span.set_attribute(_OUTPUT, rt.clip(rt.to_json(result)))
        span.end()
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], entity: _Entity) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not FLAGS.enabled:
            return await fn(*args, **kwargs)
        rt = _rt or _runtime()
        span, ctx = entity.start(rt, args, kwargs)
        token = rt.attach(ctx)
        try:
            result = await fn(*args, **kwargs)
            if FLAGS.trace_content and span.is_recording():
                span.set_attribute(_OUTPUT, rt.clip(rt.to_json(result)))
            return result
        except BaseException as exc:
            entity.fail(rt, span, exc)
            raise
        finally:
            rt.detach(token)
            span.end()

    return wrapper


def _finish_generator(
    rt: _Runtime, span: Any, items: list[Any], count: int, closed_early: bool
) -> None:
    """Record what a traced generator yielded (bounded) and how it ended."""
    if not span.is_recording():
        return
    attrs: dict[str, Any] = {"truefoundry.generator.items": count}
    if FLAGS.trace_content:
        value: Any = items
        if count > len(items):
            value = [*items, f"… {count - len(items)} more items"]
        attrs[_OUTPUT] = rt.clip(rt.to_json(value))
    if closed_early:
        attrs["truefoundry.generator.closed_early"] = True
    span.set_attributes(attrs)


def _traced_generator(rt: _Runtime, span: Any, ctx: Any, gen: Generator[Any, Any, Any]) -> Any:
    """Drive ``gen`` step by step inside the span's context; end the span when it ends.

    Every ``send()`` and ``throw()`` from the caller is forwarded to ``gen`` in the span's
    context, so the decorated generator behaves exactly as the undecorated one.
    """
    # Runs once per item: the loop keeps to local names and calls only C functions.
    attach, reset, detach, send = rt.attach, rt.reset, rt.detach, gen.send
    items: list[Any] = []
    keep = _MAX_YIELDED if FLAGS.trace_content else 0
    count = 0
    closed_early = True
    try:
        thrown: BaseException | None = None
        to_send: Any = None
        while True:
            token = attach(ctx)
            try:
                item = send(to_send) if thrown is None else gen.throw(thrown)
            except StopIteration as stop:
                closed_early = False
                return stop.value
            finally:
                thrown = None
                try:
                    reset(token)
                except Exception:
                    detach(token)
            count += 1
            if count <= keep:
                items.append(item)
            try:
                to_send = yield item
            except GeneratorExit:
                token = attach(ctx)
                try:
                    gen.close()
                finally:
                    detach(token)
                raise
            except BaseException as exc:  # thrown into us: forward it on the next step
                thrown = exc
    except GeneratorExit:
        raise
    except BaseException as exc:
        closed_early = False
        _Entity.fail(rt, span, exc)
        raise
    finally:
        _finish_generator(rt, span, items, count, closed_early)
        span.end()


def _wrap_generator(fn: Callable[..., Any], entity: _Entity) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not FLAGS.enabled:
            return (yield from fn(*args, **kwargs))
        rt = _rt or _runtime()
        parent = rt.get_current()
        gen = fn(*args, **kwargs)
        span, ctx = entity.start(rt, args, kwargs, parent)
        return (yield from _traced_generator(rt, span, ctx, gen))

    return wrapper


def _wrap_async_generator(fn: Callable[..., Any], entity: _Entity) -> Callable[..., Any]:
    # There is no ``yield from`` for async generators: the wrapper forwards asend(), athrow()
    # and aclose() itself, step by step, in the span's context (or without one when disabled).
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        traced = FLAGS.enabled
        rt = (_rt or _runtime()) if traced else None
        agen = fn(*args, **kwargs)
        span: Any = None
        ctx: Any = None
        token: Any = None
        if rt is not None:
            span, ctx = entity.start(rt, args, kwargs)
        items: list[Any] = []
        keep = _MAX_YIELDED if rt is not None and FLAGS.trace_content else 0
        count = 0
        closed_early = True
        try:
            thrown: BaseException | None = None
            to_send: Any = None
            while True:
                token = rt.attach(ctx) if rt is not None else None
                try:
                    if thrown is None:
                        item = await agen.asend(to_send)
                    else:
                        item = await agen.athrow(thrown)
                except StopAsyncIteration:
                    closed_early = False
                    return
                finally:
                    thrown = None
                    if rt is not None:
                        rt.detach(token)
                count += 1
                if count <= keep:
                    items.append(item)
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = rt.attach(ctx) if rt is not None else None
                    try:
                        await agen.aclose()
                    finally:
                        if rt is not None:
                            rt.detach(token)
                    raise
                except BaseException as exc:  # thrown into us: forward it on the next step
                    thrown = exc
        except GeneratorExit:
            raise
        except BaseException as exc:
            closed_early = False
            if rt is not None:
                _Entity.fail(rt, span, exc)
            raise
        finally:
            if rt is not None:
                _finish_generator(rt, span, items, count, closed_early)
                span.end()

    return wrapper


def _decorate(fn: Callable[..., Any], kind: str, name: str | None, version: int | None) -> Any:
    if isinstance(fn, (classmethod, staticmethod)):
        return type(fn)(_decorate(fn.__func__, kind, name, version))
    qualname = getattr(fn, "__qualname__", None)
    # A function defined inside another is named as written: "ask", not "make.<locals>.ask".
    default = qualname.rpartition("<locals>.")[2] if qualname else repr(fn)
    entity = _Entity(kind, name or default, version)
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(fn, entity)
    if inspect.iscoroutinefunction(fn):
        return _wrap_coroutine(fn, entity)
    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(fn, entity)
    return _wrap_function(fn, entity)


def _decorate_class(
    cls: type, kind: str, name: str | None, version: int | None, method_name: str
) -> type:
    method = cls.__dict__.get(method_name)
    if method is None:
        raise TypeError(
            f"@{kind}(method_name={method_name!r}) on class {cls.__qualname__}: the class "
            "defines no such method."
        )
    entity_name = name or _snake(cls.__qualname__)
    setattr(cls, method_name, _decorate(method, kind, entity_name, version))
    return cls


def _snake(text: str) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch.isupper() and i and not text[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Decorate(Protocol):
    """What a called decorator returns: it wraps a function and keeps its exact type."""

    @overload
    def __call__(self, fn: _F, /) -> _F: ...
    @overload
    def __call__(self, fn: _M, /) -> _M: ...


class Decorator(Protocol):
    """The type of ``workflow``, ``task``, ``agent`` and ``tool``: bare or called.

    A decorated function keeps its signature for type checkers: ``@task`` on
    ``def f(x: int) -> str`` is still ``(x: int) -> str``, ``async`` functions stay coroutine
    functions, and a class decorated with ``method_name=`` stays the class.

    Example:
        >>> from typing import assert_type
        >>> from truefoundry_tracing import task
        >>> @task(name="double")
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> assert_type(double(2), int)
        4
    """

    @overload
    def __call__(self, fn: _F, /) -> _F: ...
    @overload
    def __call__(self, fn: _M, /) -> _M: ...
    @overload
    def __call__(
        self,
        name: str | None = None,
        /,
        *,
        version: int | None = None,
        method_name: str | None = None,
    ) -> Decorate: ...
    @overload
    def __call__(
        self,
        *,
        name: str | None = None,
        version: int | None = None,
        method_name: str | None = None,
    ) -> Decorate: ...


def _factory(kind: str, doc: str) -> Decorator:
    def decorator(
        fn_or_name: Any = None,
        /,
        *,
        name: str | None = None,
        version: int | None = None,
        method_name: str | None = None,
    ) -> Any:
        if isinstance(fn_or_name, str):
            name, fn_or_name = fn_or_name, None
        if fn_or_name is not None:
            if not isinstance(fn_or_name, type) and not (
                callable(fn_or_name) or isinstance(fn_or_name, (classmethod, staticmethod))
            ):
                raise TypeError(
                    f"@{kind} decorates functions and classes, not {type(fn_or_name).__name__}."
                )
            return _apply(fn_or_name, kind, name, version, method_name)
        return lambda fn: _apply(fn, kind, name, version, method_name)

    decorator.__name__ = decorator.__qualname__ = kind
    decorator.__doc__ = doc
    return cast(Decorator, decorator)


def _apply(
    fn: Any, kind: str, name: str | None, version: int | None, method_name: str | None
) -> Any:
    if isinstance(fn, type):
        if method_name is None:
            raise TypeError(
                f"@{kind} on a class needs method_name=, e.g. @{kind}(method_name='run')."
            )
        return _decorate_class(fn, kind, name, version, method_name)
    return _decorate(fn, kind, name, version)


workflow: Decorator = _factory(
    "workflow",
    """Trace a function as a workflow: the root of a trace, naming every span inside.

Usable bare or called, on functions, methods, async functions, generators and async generators.

Example:
    >>> from truefoundry_tracing import workflow, task
    >>> @task
    ... def fetch(q: str) -> str:
    ...     return q.upper()
    >>> @workflow(name="answer_question")
    ... def answer(q: str) -> str:
    ...     return fetch(q)
    >>> answer("hi")
    'HI'
""",
)
task: Decorator = _factory(
    "task",
    """Trace a function as a task: one step of a workflow.

Example:
    >>> from truefoundry_tracing import task
    >>> @task(name="summarize")
    ... def summarize(text: str) -> str:
    ...     return text[:10]
    >>> summarize("a long text here")
    'a long tex'
""",
)
agent: Decorator = _factory(
    "agent",
    """Trace a function as an agent: an autonomous unit that calls tools.

Example:
    >>> from truefoundry_tracing import agent, tool
    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     return a + b
    >>> @agent(name="calculator")
    ... def calculator() -> int:
    ...     return add(2, 3)
    >>> calculator()
    5
""",
)
tool: Decorator = _factory(
    "tool",
    """Trace a function as a tool an agent calls.

Example:
    >>> from truefoundry_tracing import tool
    >>> @tool(name="weather")
    ... def weather(city: str) -> str:
    ...     return f"sunny in {city}"
    >>> weather("Paris")
    'sunny in Paris'
""",
)
