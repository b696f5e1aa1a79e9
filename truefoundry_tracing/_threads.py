"""Carry the trace context into threads started inside a span.

``init()`` and ``gateway_metadata()`` call :func:`propagate_context` once per process. It
does what OpenTelemetry's threading instrumentation does (``threading.Thread`` and
``threading.Timer`` remember the context current at ``start()`` and attach it around
``run()``; ``ThreadPoolExecutor.submit`` runs the submitted function in the context current at
submission), without importing that instrumentation: loading it pulls in
``opentelemetry.instrumentation``'s dependency checks, ``packaging``'s grammar and an
``importlib.metadata`` scan, about half of what a bare ``init()`` used to cost.

It composes with the real instrumentation: when an app or another library applies
``ThreadingInstrumentor`` too, both attach the same context, and uninstrumenting it removes
only its own wrappers. As with that instrumentation, a ``Thread`` subclass that overrides
``run()`` without calling ``super().run()`` starts with an empty context.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from opentelemetry import context

logger = logging.getLogger("truefoundry_tracing")

_R = TypeVar("_R")
_ATTR = "_otel_context"  # the attribute OpenTelemetry's threading instrumentation uses too
_lock = threading.Lock()
_done = False


def _named(wrapper: Callable[..., Any], original: Callable[..., Any]) -> None:
    # no __wrapped__: OpenTelemetry's unwrap() follows it and would remove this wrapper when
    # the app uninstruments its own ThreadingInstrumentor
    wrapper.__name__ = original.__name__
    wrapper.__qualname__ = original.__qualname__
    wrapper.__doc__ = original.__doc__


def _patch_start() -> None:
    start = threading.Thread.start

    def traced_start(self: threading.Thread) -> None:
        setattr(self, _ATTR, context.get_current())
        start(self)

    _named(traced_start, start)
    threading.Thread.start = traced_start  # type: ignore[method-assign]


def _patch_run(cls: type[threading.Thread]) -> None:
    run = cls.run

    def traced_run(self: threading.Thread) -> None:
        ctx = getattr(self, _ATTR, None)
        token = context.attach(ctx) if ctx is not None else None
        try:
            run(self)
        finally:
            if token is not None:
                context.detach(token)

    _named(traced_run, run)
    cls.run = traced_run  # type: ignore[method-assign]


def _patch_pool() -> None:
    submit = ThreadPoolExecutor.submit

    def traced_submit(
        self: ThreadPoolExecutor, fn: Callable[..., _R], /, *args: Any, **kwargs: Any
    ) -> Future[_R]:
        ctx = context.get_current()

        def in_context(*a: Any, **kw: Any) -> _R:
            token = context.attach(ctx)
            try:
                return fn(*a, **kw)
            finally:
                context.detach(token)

        return submit(self, in_context, *args, **kwargs)

    _named(traced_submit, submit)
    ThreadPoolExecutor.submit = traced_submit  # type: ignore[method-assign, assignment]


def _instrumented_already() -> bool:
    """True when OpenTelemetry's own threading instrumentation is in place (checked only if
    something imported it: importing it to ask would cost what this module saves)."""
    module = sys.modules.get("opentelemetry.instrumentation.threading")
    instrumentor = getattr(module, "ThreadingInstrumentor", None)
    return bool(instrumentor is not None and instrumentor().is_instrumented_by_opentelemetry)


def propagate_context() -> None:
    """Make threads and thread pools started inside a span continue its trace. Never raises.

    Idempotent; the first call patches ``threading.Thread``, ``threading.Timer`` and
    ``ThreadPoolExecutor`` for the life of the process.

    Example:
        >>> import threading
        >>> from opentelemetry import context
        >>> propagate_context()
        >>> key = context.create_key("demo")
        >>> token = context.attach(context.set_value(key, "seen"))
        >>> seen = []
        >>> t = threading.Thread(target=lambda: seen.append(context.get_value(key)))
        >>> t.start(); t.join(); context.detach(token)
        >>> seen
        ['seen']
    """
    global _done
    with _lock:
        if _done:
            return
        _done = True
        try:
            if _instrumented_already():
                return
            _patch_start()
            _patch_run(threading.Thread)
            if "run" in vars(threading.Timer):  # Timer overrides run(): wrap its own too
                _patch_run(threading.Timer)
            _patch_pool()
        except Exception:
            logger.debug(
                "truefoundry_tracing: threading context propagation unavailable", exc_info=True
            )
