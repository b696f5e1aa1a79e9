"""traceloop's own tracing API, fed into this library's pipeline.

Code written for traceloop keeps its imports after ``init()``: ``traceloop.sdk.decorators``,
``Traceloop.set_association_properties``, ``Traceloop.set_prompt`` and
``traceloop.sdk.tracing.manual.track_llm_call`` all start their spans through traceloop's
``TracerWrapper`` singleton. ``init()`` makes that singleton hand out tracers of this library's
provider, so those spans are enriched, redacted, captured and exported like the rest, and
traceloop never prints "Traceloop not initialized".

Importing traceloop costs about a second, so nothing here imports it: when the app has not
imported traceloop yet, the connection is made right after it does (a post-import hook), before
any of its decorators can run.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from . import _deferred

__all__ = ["connect", "set_enabled"]

logger = logging.getLogger("truefoundry_tracing")

_MODULE = "traceloop.sdk.tracing.tracing"
_OURS = "_truefoundry_tracing"
_lock = threading.Lock()
# What the next connection installs: the provider and whether tracing is on.
_target: tuple[Any, bool] | None = None


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
    global _target
    with _lock:
        _target = (provider, enabled)
    if _MODULE in sys.modules:
        _install()
    else:
        _deferred.on_import((_MODULE,), _install)


def _install() -> bool:
    """Point traceloop's ``TracerWrapper`` singleton at the pipeline; never raises."""
    try:
        with _lock:
            target = _target
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
    global _target
    with _lock:
        if _target is None:
            return
        _target = (_target[0], enabled)
    if _MODULE in sys.modules:
        _install()
