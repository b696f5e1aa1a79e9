"""The one owner of this library's process state.

Everything ``init()`` changes for the whole process lives in :data:`STATE`: the settings and
status in force, the export counters, the switches the decorators read on every call
(:data:`FLAGS`), what has been said once already, the pytest plugin's view of the environment,
and the start-time enrichers surfaces registered. Other modules read and write these fields;
none keeps process-wide mutable state of its own, except three records of hooks that cannot be
taken back, which are therefore never restored: which libraries were instrumented
(``_instruments``), which import hooks are installed (``_deferred``, ``_import_hooks``),
whether ``threading`` carries the trace context (``_threads``), which duplicate-span rules
those instrumentations switched on (``_frameworks._dedupe``), and the exit, signal and fork
handlers registered with the interpreter (``_lifecycle``).

:func:`snapshot` and :func:`restore` take and put back all of it, the pipeline's configuration
included: ``capture_spans()`` and the test suite use them so that a test's ``init()`` never
outlives the test. :func:`reset` returns to the state of a fresh import.

Importing this module is cheap: it imports nothing of OpenTelemetry.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DESTINATION_VARS",
    "FLAGS",
    "STATE",
    "Flags",
    "Snapshot",
    "effective_env",
    "restore",
    "set_content_env",
    "snapshot",
    "warn_once",
]

#: The variables that name a destination: under pytest, the values the shell set are ignored.
DESTINATION_VARS = ("TFY_HOST", "TFY_BASE_URL", "TFY_TRACING_ENDPOINT", "TRACELOOP_BASE_URL")

StartHook = Callable[[Any, Mapping[str, object]], None]


class Flags:
    """Switches the decorators read on every call; set by ``init()`` (cheap to read)."""

    __slots__ = ("before_span", "enabled", "trace_content", "tracer")

    def __init__(self) -> None:
        self.enabled = True
        self.trace_content = True
        self.tracer: Any = None  # the pipeline's tracer once a provider exists
        # Deferred instrumentations to apply before a decorator starts its span, so their
        # loading time never counts inside the app's trace; None once nothing waits.
        self.before_span: Callable[[], None] | None = None

    def values(self) -> tuple[bool, bool, Any]:
        """What a snapshot keeps (``before_span`` follows the instrumentations, not init)."""
        return self.enabled, self.trace_content, self.tracer


@dataclass
class _Process:
    """The fields; one instance, :data:`STATE`."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    settings: Any = None  # the Settings in force, None before init() and after shutdown()
    status: Any = None  # the TracingStatus init() returned
    stats: Any = None  # the OTLP exporter's ExportStats
    warned: set[str] = field(default_factory=set)  # messages logged once per process
    banner_shown: bool = False
    # Set by the pytest plugin: destination variables present when the session started; under
    # pytest those are ignored, so a developer's shell never makes tests send.
    test_env: dict[str, str] | None = None
    # TRACELOOP_TRACE_CONTENT as it was before init(trace_content=False) set it, and whether
    # init() has set it.
    content_env: tuple[str | None, bool] = (None, False)
    # traceloop's decorators: the provider and the on/off switch the next connection installs.
    traceloop_target: tuple[Any, bool] | None = None
    # Called by the root processor for each span as it starts: a tuple, replaced whole.
    start_hooks: tuple[StartHook, ...] = ()
    # What capture_spans() without init() instrumented: (provider, names, applied), so a
    # capture per test does not apply again while nothing changed.
    capture_instruments: tuple[Any, Any, frozenset[str]] | None = None
    # Log messages the gateway helpers have given once (no key, a scrubbed header...).
    gateway_warned: set[str] = field(default_factory=set)


STATE = _Process()
FLAGS = Flags()

logger = logging.getLogger("truefoundry_tracing")


def warn_once(message: str, level: int = logging.WARNING) -> bool:
    """Log ``message`` (prefixed with the library's name) once per process; True if logged.

    Example:
        >>> from truefoundry_tracing import _state
        >>> _state.warn_once("example: said once", logging.DEBUG)
        True
        >>> _state.warn_once("example: said once", logging.DEBUG)
        False
    """
    with STATE.lock:
        if message in STATE.warned:
            return False
        STATE.warned.add(message)
    logger.log(level, "truefoundry_tracing: %s", message)
    return True


@dataclass(frozen=True)
class Snapshot:
    """All of the process state at one moment (see :func:`snapshot`)."""

    settings: Any
    status: Any
    stats: Any
    warned: frozenset[str]
    banner_shown: bool
    flags: tuple[bool, bool, Any]
    pipeline: Any  # the pipeline's configuration, or None when no pipeline was ever built


def snapshot() -> Snapshot:
    """Everything ``init()`` can change, so it can be put back with :func:`restore`."""
    with STATE.lock:
        pipe = _pipeline()
        return Snapshot(
            STATE.settings,
            STATE.status,
            STATE.stats,
            frozenset(STATE.warned),
            STATE.banner_shown,
            FLAGS.values(),
            pipe.config if pipe is not None else None,
        )


def restore(saved: Snapshot) -> None:
    """Undo every ``init()`` made since ``saved``; retire the exporters they created."""
    with STATE.lock:
        STATE.settings, STATE.status, STATE.stats = saved.settings, saved.status, saved.stats
        STATE.banner_shown = saved.banner_shown
        STATE.warned.clear()
        STATE.warned.update(saved.warned)
        FLAGS.enabled, FLAGS.trace_content, FLAGS.tracer = saved.flags
        _content_env(FLAGS.trace_content)
        traceloop = sys.modules.get("truefoundry_tracing._traceloop")
        if traceloop is not None:
            traceloop.set_enabled(FLAGS.enabled)
        pipe = _pipeline()
        if pipe is None:
            return
        pipe.restore(saved.pipeline)
        if FLAGS.tracer is None and pipe.tracer is not None:
            FLAGS.tracer = pipe.tracer


def effective_env() -> Mapping[str, str]:
    """The environment settings are read from: under pytest, without the shell's destination."""
    import os

    test_env = STATE.test_env
    if test_env is None:
        return os.environ
    return {
        k: v for k, v in os.environ.items() if not (k in DESTINATION_VARS and test_env.get(k) == v)
    }


def set_content_env(trace_content: bool) -> None:
    """traceloop's instrumentations read TRACELOOP_TRACE_CONTENT on every call."""
    _content_env(trace_content)


def _content_env(trace_content: bool) -> None:
    import os

    before, touched = STATE.content_env
    if not trace_content:
        if not touched:
            STATE.content_env = (os.environ.get("TRACELOOP_TRACE_CONTENT"), True)
        os.environ["TRACELOOP_TRACE_CONTENT"] = "false"
    elif touched:
        if before is None:
            os.environ.pop("TRACELOOP_TRACE_CONTENT", None)
        else:
            os.environ["TRACELOOP_TRACE_CONTENT"] = before
        STATE.content_env = (None, False)


def _pipeline() -> Any:
    """The pipeline, if one was ever built (importing it would load OpenTelemetry)."""
    module = sys.modules.get("truefoundry_tracing._pipeline")
    return module.get_pipeline() if module is not None else None
