"""``messages.stream()`` on traceloop's 0.38 Anthropic instrumentation.

opentelemetry-instrumentation-anthropic 0.38 wraps ``Messages.stream`` like ``create``, but
``stream()`` returns a ``MessageStreamManager`` that sends the request only when the app
enters it. The instrumentation took the manager for a finished response and ended the span at
once: an empty ``anthropic.chat`` span (no output, no model, no tokens) for every streamed call
made with the helper, while ``create(stream=True)`` was recorded completely.

Here ``stream()`` returns the manager without that empty span, and the manager's request goes
through the instrumentation's own wrapper when the app enters it: the request is then a real
stream, which the instrumentation records as it does for ``create(stream=True)`` (input
messages, model, the whole streamed text, token usage), ending the span when the stream ends.
The text, events and final message the app reads are unchanged. Newer lines record
``stream()`` themselves and are left alone.
"""

from __future__ import annotations

import importlib
from typing import Any

import wrapt

__all__ = ["FAILURE", "patch"]

# What the log says, once, when patch() fails ({exc!r}: why).
FAILURE = (
    "Anthropic messages.stream() could not be corrected ({exc!r}): its spans stay "
    "empty on opentelemetry-instrumentation-anthropic 0.38. Use "
    "messages.create(stream=True) or a newer traceloop-sdk to record streamed calls."
)

_INSTRUMENTATION = "opentelemetry.instrumentation.anthropic"
_METHODS = (
    ("anthropic.resources.messages", "Messages.stream"),
    ("anthropic.resources.messages", "AsyncMessages.stream"),
)


def patch() -> bool:
    """Correct ``stream()`` on the 0.38 line; False on other lines.

    Applied once, through :func:`._fixes.correct`, which reports a failure (``FAILURE``).

    Example:
        >>> from truefoundry_tracing._frameworks._fixes import correct
        >>> isinstance(correct('anthropic'), bool)
        True
    """
    version = importlib.import_module(_INSTRUMENTATION + ".version").__version__
    if not str(version).startswith("0.38."):
        return False
    for module, name in _METHODS:
        wrapt.wrap_function_wrapper(module, name, _stream)
    return True


def _traceloops(wrapped: Any) -> Any:
    """traceloop's wrapper function under ``wrapped``, or None."""
    wrapper = getattr(wrapped, "_self_wrapper", None)
    module = getattr(wrapper, "__module__", None) or ""
    return wrapper if module.startswith(_INSTRUMENTATION) else None


def _stream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    traceloop = _traceloops(wrapped)
    if traceloop is None or args:  # stream() takes keyword arguments only
        return wrapped(*args, **kwargs)
    manager = wrapped.__wrapped__(**kwargs)  # no span yet: it opens when the app enters
    try:
        _route(manager, traceloop, instance, kwargs)
    except Exception:  # an unexpected manager: the call is made, recorded as before
        return wrapped(*args, **kwargs)
    return manager


def _route(manager: Any, traceloop: Any, instance: Any, kwargs: dict[str, Any]) -> None:
    """Send the manager's request through traceloop's wrapper when the app enters it."""
    attr = f"_{type(manager).__name__}__api_request"
    request = getattr(manager, attr)
    if callable(request):  # MessageStreamManager: a function making the request

        def traced() -> Any:
            sent: list[Any] = []

            def send(*_: Any, **__: Any) -> Any:
                sent.append(request())
                return sent[0]

            events = traceloop(send, instance, (), kwargs)
            return _Events(sent[0], events) if sent and events is not sent[0] else events

        setattr(manager, attr, traced)
        return

    async def atraced() -> Any:  # AsyncMessageStreamManager: the request's awaitable
        sent: list[Any] = []

        async def send(*_: Any, **__: Any) -> Any:
            sent.append(await request)
            return sent[0]

        events = await traceloop(send, instance, (), kwargs)
        return _AsyncEvents(sent[0], events) if sent and events is not sent[0] else events

    setattr(manager, attr, atraced())


class _Events(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """The raw stream, read through the instrumentation's recording generator."""

    def __init__(self, stream: Any, events: Any) -> None:
        super().__init__(stream)
        self._self_events = events

    def __iter__(self) -> Any:
        return iter(self._self_events)

    def __next__(self) -> Any:
        return next(self._self_events)


class _AsyncEvents(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """The raw async stream, read through the instrumentation's recording generator."""

    def __init__(self, stream: Any, events: Any) -> None:
        super().__init__(stream)
        self._self_events = events

    def __aiter__(self) -> Any:
        return self._self_events.__aiter__()

    async def __anext__(self) -> Any:
        return await self._self_events.__anext__()
