"""Agent and tool spans for this library's own framework instrumentations (AutoGen, AG2).

They carry what traceloop's decorators write and this library's views read
(``traceloop.span.kind``, ``traceloop.entity.name``, ``traceloop.entity.input`` /
``output`` as bounded JSON, the GenAI agent or tool name) and set the context keys the root
processor copies onto the spans inside them (the agent's name, a tool's entity path).
Nothing here raises into the app: a failure of ours is logged once and the framework's call
goes on untraced.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry import trace

from .._context import AGENT_KEY, ENTITY_PATH_KEY
from .._serialize import clip, to_json
from .._state import FLAGS, warn_once
from ._tool_span import tool_attributes

__all__ = ["Entity", "failed", "finish", "start", "traced", "traced_stream"]

_T = TypeVar("_T")

_KIND = "traceloop.span.kind"
_NAME = "traceloop.entity.name"
_INPUT = "traceloop.entity.input"
_OUTPUT = "traceloop.entity.output"
_NOTHING: Any = object()
_OWN = context_api.create_key("truefoundry-own-span")


def failed(framework: str, exc: BaseException) -> None:
    """Say once that tracing ``framework`` went wrong here; the app's call is unaffected."""
    warn_once(
        f"{framework}: recording a call failed ({type(exc).__name__}: {exc}); the call went "
        "on, without its span or with an incomplete one. Report it with your "
        f"truefoundry-tracing and {framework} versions.",
        logging.WARNING,
    )


class Entity:
    """One started agent or tool span, with the context to run the framework's call in.

    Example:
        >>> from opentelemetry import trace
        >>> e = Entity.start(trace.get_tracer("x"), "tool", "get_weather", {"city": "Paris"})
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
        input_value: Any = _NOTHING,
        attributes: Mapping[str, Any] | None = None,
    ) -> Entity:
        """Start a ``<name>.<kind>`` span under the current span."""
        if FLAGS.before_span is not None:
            FLAGS.before_span()
        ctx = context_api.get_current()
        attrs: dict[str, Any]
        if kind == "tool":  # as the other instrumentations of this library write tool spans
            attrs = tool_attributes(name, None if input_value is _NOTHING else input_value)
        else:
            attrs = {_KIND: kind, _NAME: name, "gen_ai.agent.name": name}
            if input_value is not _NOTHING and FLAGS.trace_content:
                attrs[_INPUT] = clip(to_json(input_value))
        attrs.update(attributes or {})
        span = tracer.start_span(f"{name}.{kind}", context=ctx, attributes=attrs)
        ctx = context_api.set_value(_OWN, span, trace.set_span_in_context(span, ctx))
        if kind == "agent":
            ctx = context_api.set_value(AGENT_KEY, name, ctx)
        else:
            path = context_api.get_value(ENTITY_PATH_KEY, ctx)
            ctx = context_api.set_value(ENTITY_PATH_KEY, f"{path}.{name}" if path else name, ctx)
        return cls(span, ctx)

    @staticmethod
    def current() -> Any:
        """The current span when it is one of these (its framework call is starting), else None.

        Example:
            >>> Entity.current() is None
            True
        """
        span = context_api.get_value(_OWN)
        return span if span is not None and span is trace.get_current_span() else None

    def finish(self, output: Any = _NOTHING, error: BaseException | None = None) -> None:
        """Record the output or the error, and end the span."""
        try:
            if error is not None:
                self.span.record_exception(error)
                self.span.set_status(
                    trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}")
                )
            elif output is not _NOTHING and FLAGS.trace_content and self.span.is_recording():
                self.span.set_attribute(_OUTPUT, clip(to_json(output)))
        finally:
            self.span.end()


def start(framework: str, make: Callable[[], Entity]) -> Entity | None:
    """``make()``, or None (said once) when it fails: the call then runs untraced.

    Example:
        >>> start("demo", lambda: 1 / 0) is None
        True
    """
    if not FLAGS.enabled:
        return None
    try:
        return make()
    except Exception as exc:
        failed(framework, exc)
        return None


def finish(
    framework: str,
    entity: Entity,
    result: Any = _NOTHING,
    output: Callable[[Any], Any] | None = None,
    error: BaseException | None = None,
) -> None:
    """End ``entity`` with the error, or with ``output(result)`` (``result`` itself without
    ``output``) as its output; never raises.

    Example:
        >>> from opentelemetry import trace
        >>> finish("demo", Entity.start(trace.get_tracer("x"), "agent", "a"), {"answer": 1})
    """
    try:
        if error is not None and not isinstance(error, GeneratorExit):
            entity.finish(error=error)
        elif result is _NOTHING:
            entity.finish()
        else:
            entity.finish(result if output is None else output(result))
    except Exception as exc:
        if entity.span.is_recording():
            entity.span.end()
        failed(framework, exc)


async def traced(
    framework: str,
    make: Callable[[], Entity],
    call: Callable[[], Awaitable[_T]],
    output: Callable[[_T], Any] | None = None,
    failure: Callable[[_T], BaseException | None] | None = None,
) -> _T:
    """``await call()`` inside the span ``make()`` starts; its result (through ``output``)
    is the span's output, its exception the span's error, and so is the exception
    ``failure(result)`` finds in a result (a tool error the framework hands to the model).

    Example:
        >>> import asyncio
        >>> from opentelemetry import trace
        >>> async def answer() -> int:
        ...     return 42
        >>> make = lambda: Entity.start(trace.get_tracer("x"), "tool", "answer")
        >>> asyncio.run(traced("demo", make, answer))
        42
    """
    entity = start(framework, make)
    if entity is None:
        return await call()
    token = context_api.attach(entity.context)
    try:
        result = await call()
    except BaseException as exc:
        finish(framework, entity, error=exc)
        raise
    finally:
        context_api.detach(token)
    error = _failure(framework, failure, result)
    finish(framework, entity, result, output, error)
    return result


def _failure(
    framework: str, failure: Callable[[_T], BaseException | None] | None, result: _T
) -> BaseException | None:
    if failure is None:
        return None
    try:
        return failure(result)
    except Exception as exc:
        failed(framework, exc)
        return None


async def traced_stream(
    framework: str,
    make: Callable[[], Entity],
    stream: AsyncIterator[Any],
    output: Callable[[Any], Any],
) -> AsyncIterator[Any]:
    """Yield what ``stream`` yields, each step run inside the span ``make()`` starts on the
    first step; end it with ``output(last item)`` when the stream ends (an error, or an early
    close, ends it too). Between items the app's code runs in its own context, not in the
    span."""
    entity = start(framework, make)
    if entity is None:
        async for item in stream:
            yield item
        return
    last: Any = _NOTHING
    error: BaseException | None = None
    done = False
    try:
        while True:
            token = context_api.attach(entity.context)
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                done = True
                break
            finally:
                context_api.detach(token)
            last = item
            yield item
    except BaseException as exc:
        error = exc
        raise
    finally:
        if not done:  # closed early or failed: let the framework's generator clean up
            await _close(stream, framework)
        finish(framework, entity, last, output, error)


async def _close(stream: AsyncIterator[Any], framework: str) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception as exc:
            failed(framework, exc)
