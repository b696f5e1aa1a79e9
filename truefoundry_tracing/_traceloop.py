"""traceloop's own tracing API, fed into this library's pipeline.

Code written for traceloop keeps its imports after ``init()``: ``traceloop.sdk.decorators``,
``Traceloop.set_association_properties``, ``Traceloop.set_prompt`` and
``traceloop.sdk.tracing.manual.track_llm_call`` all start their spans through traceloop's
``TracerWrapper`` singleton. ``init()`` makes that singleton hand out tracers of this library's
provider, so those spans are enriched, redacted, captured and exported like the rest, and
traceloop never prints "Traceloop not initialized".

A ``Traceloop.init()`` left in the app (a module not migrated yet) still runs after ``init()``
(traceloop's own tests rely on what it sets up), and a warning says what it started beside
this library: traceloop's metrics and logs exporters, prompt sync with traceloop.com, or, when
the app reset traceloop's tracer first, a second span pipeline.

Importing traceloop costs about a second, so nothing here imports it: when the app has not
imported traceloop yet, the connection is made right after it does (a post-import hook), before
any of its decorators can run.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

from . import _deferred
from ._state import STATE

__all__ = ["connect", "set_enabled"]

logger = logging.getLogger("truefoundry_tracing")

_MODULE = "traceloop.sdk.tracing.tracing"
_SDK = "traceloop.sdk"
_LATE_INIT = "Traceloop.init() after init()"  # key in STATE.warned: said once per process
_OURS = "_truefoundry_tracing"


class _Flusher:
    """Stands where traceloop keeps its span processor, so its ``flush()`` flushes ours."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        from ._pipeline import get_pipeline

        return get_pipeline().flush(max(0.0, timeout_millis / 1000))

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """traceloop never calls this on a singleton it did not build; nothing to do."""

    def on_end(self, span: Any) -> None:
        """Spans reach the exporters through this library's root processor, not here."""

    def shutdown(self) -> None:
        """Shutting down is ``truefoundry_tracing.shutdown()``'s job."""


def connect(provider: Any, enabled: bool) -> None:
    """Make traceloop's decorators and helpers trace into ``provider`` (now, or on import)."""
    with STATE.lock:
        STATE.traceloop_target = (provider, enabled)
    if _MODULE in sys.modules:
        _install()
    else:
        _deferred.on_import((_MODULE,), _install)
    if _SDK in sys.modules and hasattr(sys.modules[_SDK], "Traceloop"):
        _guard_init()
    else:
        _deferred.on_import((_SDK,), _guard_init)


def _install() -> bool:
    """Point traceloop's ``TracerWrapper`` singleton at the pipeline; never raises."""
    try:
        with STATE.lock:
            target = STATE.traceloop_target
            if target is None:
                return False
            provider, enabled = target
            from traceloop.sdk.tracing.tracing import TracerWrapper

            TracerWrapper.set_disabled(not enabled)
            current = TracerWrapper.__dict__.get("instance")
            if current is not None and not getattr(current, _OURS, False):
                logger.info(
                    "truefoundry_tracing: Traceloop.init() ran in this process; traceloop's "
                    "decorators keep using its tracer provider."
                )
                return False
            wrapper: Any = current if current is not None else object.__new__(TracerWrapper)
            wrapper._TracerWrapper__tracer_provider = provider
            wrapper._TracerWrapper__spans_processor = _Flusher()
            setattr(wrapper, _OURS, True)
            TracerWrapper.instance = wrapper
            return True
    except Exception:
        logger.warning(
            "truefoundry_tracing: traceloop's decorators could not be connected to this "
            "library; use truefoundry_tracing's decorators instead.",
            exc_info=True,
        )
        return False


def set_enabled(enabled: bool) -> None:
    """Turn traceloop's decorators on or off with this library (after a test's ``init()``)."""
    with STATE.lock:
        target = STATE.traceloop_target
        if target is None:
            return
        STATE.traceloop_target = (target[0], enabled)
    if _MODULE in sys.modules:
        _install()


def _guard_init() -> bool:
    """Make a ``Traceloop.init()`` run after this library's say what it changed; never raises."""
    try:
        from traceloop.sdk import Traceloop

        original = Traceloop.__dict__.get("init")
        func = original.__func__ if isinstance(original, staticmethod) else original
        if not callable(func) or getattr(func, _OURS, False):
            return False

        @functools.wraps(func)
        def init(*args: Any, **kwargs: Any) -> Any:
            if STATE.settings is None or STATE.traceloop_target is None:
                return func(*args, **kwargs)  # this library is not tracing: nothing to say
            before = _traceloop_parts()
            try:
                return func(*args, **kwargs)
            finally:
                if before is not None:
                    _report_late_init(before)

        setattr(init, _OURS, True)
        Traceloop.init = staticmethod(init)  # type: ignore[method-assign]
        return True
    except Exception:
        logger.debug("truefoundry_tracing: Traceloop.init could not be wrapped", exc_info=True)
        return False


def _traceloop_parts() -> tuple[bool, Any, Any, Any] | None:
    """What ``Traceloop.init`` may start: (decorators still ours, meter provider, logger
    provider, traceloop.com prompt sync); None if it cannot be read."""
    try:
        from opentelemetry import _logs, metrics
        from traceloop.sdk import Traceloop
        from traceloop.sdk.tracing.tracing import TracerWrapper

        wrapper = TracerWrapper.__dict__.get("instance")
        ours = wrapper is not None and getattr(wrapper, _OURS, False)
        fetcher = getattr(Traceloop, "_Traceloop__fetcher", None)
        return ours, metrics.get_meter_provider(), _logs.get_logger_provider(), fetcher
    except Exception:
        logger.debug("truefoundry_tracing: traceloop's state could not be read", exc_info=True)
        return None


def _report_late_init(before: tuple[bool, Any, Any, Any]) -> None:
    """Warn once that ``Traceloop.init()`` ran after ``init()``, naming what it started."""
    after = _traceloop_parts()
    with STATE.lock:
        if after is None or _LATE_INIT in STATE.warned:
            return  # the first call started what there is to say; later ones change nothing
        STATE.warned.add(_LATE_INIT)
    try:
        started = [
            what
            for what, was, now in (
                ("a global meter provider exporting traceloop's metrics", before[1], after[1]),
                ("a global logger provider exporting logs", before[2], after[2]),
                ("prompt sync with traceloop.com", before[3], after[3]),
            )
            if now is not was
        ]
        where = (
            "spans of traceloop's decorators still go through truefoundry_tracing"
            if after[0]
            else "traceloop's decorators now trace into traceloop's own pipeline, not "
            "truefoundry_tracing's"
        )
        extra = (
            f"; it started {', '.join(started)}, to the endpoint it was given" if started else ""
        )
        logger.warning(
            "truefoundry_tracing: Traceloop.init() ran after truefoundry_tracing.init(): %s%s. "
            "truefoundry_tracing.init() already sets up tracing; remove the Traceloop.init() "
            "call (docs/migrating.md).",
            where,
            extra,
        )
    except Exception:
        logger.debug("truefoundry_tracing: Traceloop.init report failed", exc_info=True)
