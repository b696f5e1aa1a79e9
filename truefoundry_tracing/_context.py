"""Context keys shared with traceloop, and scoped association properties.

The keys are the plain strings traceloop-sdk's span processor and instrumentations read with
``opentelemetry.context.get_value``; using the same ones keeps code that calls traceloop's
helpers working next to ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "ASSOCIATION_KEY",
    "CONVERSATION_KEY",
    "ENTITY_PATH_KEY",
    "WORKFLOW_KEY",
    "association_properties",
    "conversation",
]

_F = TypeVar("_F", bound=Callable[..., Any])

WORKFLOW_KEY = "workflow_name"
ENTITY_PATH_KEY = "entity_path"
ASSOCIATION_KEY = "association_properties"
CONVERSATION_KEY = "conversation_id"
_ATTR_ASSOC = "traceloop.association.properties."


def _check(props: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for key, value in props.items():
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(
                f"association property {key!r} must be a str, int, float or bool, "
                f"not {type(value).__name__}."
            )
        out[key] = value
    return out


@contextmanager
def association_properties(**properties: str | int | float | bool) -> Iterator[None]:
    """Tag every span started inside the block (yours and instrumented LLM calls).

    Properties land on spans as ``traceloop.association.properties.<key>``, which TrueFoundry
    and traceloop use to group traces by user, session or customer. Nested blocks merge, inner
    keys winning; the tags end with the block, in threads and asyncio tasks alike.

    Example:
        >>> import truefoundry_tracing as tt
        >>> with tt.association_properties(user_id="u-42", session_id="s-1"):
        ...     pass  # spans started here carry both properties
    """
    from opentelemetry import context as context_api
    from opentelemetry import trace

    new = _check(properties)
    outer: Any = context_api.get_value(ASSOCIATION_KEY) or {}
    merged = {**outer, **new}
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in new.items():
            span.set_attribute(_ATTR_ASSOC + key, value)
    token = context_api.attach(context_api.set_value(ASSOCIATION_KEY, merged))
    try:
        yield
    finally:
        context_api.detach(token)


class _Flags:
    """Switches the decorators read on every call; set by ``init()`` (cheap to read)."""

    __slots__ = ("before_span", "enabled", "trace_content", "tracer")

    def __init__(self) -> None:
        self.enabled = True
        self.trace_content = True
        self.tracer: Any = None  # the pipeline's tracer once a provider exists
        # Deferred instrumentations to apply before a decorator starts its span, so their
        # loading time never counts inside the app's trace; None once nothing waits.
        self.before_span: Callable[[], None] | None = None


FLAGS = _Flags()
AGENT_KEY = "agent_name"


class conversation:
    """Tag every span started inside with the conversation id (``gen_ai.conversation.id``).

    Use it as a decorator on a function, coroutine function, generator or async generator
    (traceloop's ``@conversation``), or as a ``with`` block around one turn of a chat. Spans of
    your decorators and of instrumented LLM calls inside carry the id; it ends with the block
    or the call.

    Example:
        >>> import truefoundry_tracing as tt
        >>> @tt.conversation("conv-123")
        ... @tt.workflow(name="chat_turn")
        ... def chat_turn(message: str) -> str:
        ...     return f"Response to: {message}"
        >>> chat_turn("Hello")
        'Response to: Hello'
        >>> with tt.conversation("conv-456"):
        ...     chat_turn("Again")
        'Response to: Again'
    """

    def __init__(self, conversation_id: str) -> None:
        if not isinstance(conversation_id, str) or not conversation_id:
            raise TypeError(
                "conversation() needs the conversation id as a non-empty string, "
                f"not {conversation_id!r}."
            )
        self.conversation_id = conversation_id
        self._tokens: list[Any] = []

    def _attach(self) -> Any:
        from opentelemetry import context as context_api

        return context_api.attach(context_api.set_value(CONVERSATION_KEY, self.conversation_id))

    @staticmethod
    def _detach(token: Any) -> None:
        from opentelemetry import context as context_api

        context_api.detach(token)

    def __enter__(self) -> conversation:
        self._tokens.append(self._attach())
        return self

    def __exit__(self, *exc: object) -> None:
        self._detach(self._tokens.pop())

    def __call__(self, fn: _F) -> _F:
        import functools
        import inspect

        attach, detach = self._attach, self._detach
        wrapper: Any
        if inspect.isasyncgenfunction(fn):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                agen = fn(*args, **kwargs)
                to_send: Any = None
                thrown: BaseException | None = None
                while True:
                    token = attach()
                    try:
                        if thrown is None:
                            item = await agen.asend(to_send)
                        else:
                            item = await agen.athrow(thrown)
                    except StopAsyncIteration:
                        return
                    finally:
                        thrown = None
                        detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as exc:  # thrown into us: forward it
                        thrown = exc

        elif inspect.iscoroutinefunction(fn):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                token = attach()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    detach(token)

        elif inspect.isgeneratorfunction(fn):

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                gen = fn(*args, **kwargs)
                to_send: Any = None
                thrown: BaseException | None = None
                while True:
                    token = attach()
                    try:
                        item = gen.send(to_send) if thrown is None else gen.throw(thrown)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        thrown = None
                        detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as exc:  # thrown into us: forward it
                        thrown = exc

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                token = attach()
                try:
                    return fn(*args, **kwargs)
                finally:
                    detach(token)

        return functools.wraps(fn)(wrapper)  # type: ignore[return-value]
