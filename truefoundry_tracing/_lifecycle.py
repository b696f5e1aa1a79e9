"""Process lifecycle: flush at exit and on SIGTERM, and start clean in forked children.

- Normal exit, ``sys.exit()`` and an uncaught exception run :mod:`atexit` handlers, where
  :func:`~truefoundry_tracing.shutdown` flushes within its timeout.
- SIGTERM (what ``docker stop``, Kubernetes and process managers send) ends a Python process
  without running atexit handlers. When the app has no SIGTERM handler of its own, ``init()``
  installs one that flushes within the timeout and then lets the signal end the process as
  before (same exit status). An app that installs its own handler later replaces ours; it
  should call ``truefoundry_tracing.shutdown()`` itself (``sys.exit()`` in it is enough).
- ``os.fork()`` (gunicorn's pre-fork workers): OpenTelemetry's batch processor restarts its
  worker in the child with an empty queue; the exporters here drop the retry buffer they
  inherited, so a span the parent still holds is sent by the parent only, never twice.
- ``multiprocessing`` children started with "fork" end with ``os._exit()``, skipping atexit;
  they run multiprocessing's own finalizers instead, and one is registered there to flush.
  Children started with "spawn" or "forkserver" are new interpreters: call ``init()`` in them.
- A child that ends with ``os._exit()`` itself must call ``truefoundry_tracing.flush()``
  first: nothing runs after ``os._exit()``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["manage_sigterm", "register_exit", "register_fork_hook"]

_exit_registered = False
_sigterm_installed = False
_shutdown: Callable[[float | None], bool] | None = None
_fork_hooks: list[Callable[[], None]] = []


def register_exit(shutdown: Callable[[float | None], bool]) -> None:
    """Call ``shutdown`` once at interpreter exit (normal end, sys.exit, uncaught exception)."""
    global _exit_registered, _shutdown
    _shutdown = shutdown
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    if _shutdown is not None:
        with contextlib.suppress(Exception):
            _shutdown(None)


def manage_sigterm(want: bool, shutdown: Callable[[float | None], bool], timeout: float) -> bool:
    """Install (or remove) the flushing SIGTERM handler; True when ours is in place.

    Only from the main thread, and only over the default disposition: an app's own handler is
    never replaced.
    """
    global _sigterm_installed, _shutdown, _bound
    if threading.current_thread() is not threading.main_thread():
        return _sigterm_installed
    _shutdown = shutdown
    _bound = timeout
    try:
        current = signal.getsignal(signal.SIGTERM)
        if want and current in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
            _sigterm_installed = True
        elif not want and current is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _sigterm_installed = False
        elif current is not _on_sigterm:
            _sigterm_installed = False
    except (ValueError, OSError):  # not allowed here (e.g. an embedded interpreter)
        return False
    return _sigterm_installed


_bound = 5.0


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Flush in a helper thread: the main thread may hold a lock shutdown() needs, so waiting
    # here must be bounded rather than blocking on it.
    if _shutdown is not None:
        worker = threading.Thread(target=_at_exit, name="tfy-tracing-sigterm", daemon=True)
        worker.start()
        worker.join(_bound + 1.0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def register_fork_hook(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child before it runs any of the app's code."""
    if not _fork_hooks and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)
    if hook not in _fork_hooks:
        _fork_hooks.append(hook)


class _Anchor:
    """A long-lived object multiprocessing's after-fork registry can hold a weak reference to."""


_ANCHOR = _Anchor()


def _after_fork() -> None:
    for hook in _fork_hooks:
        with contextlib.suppress(Exception):
            hook()
    # multiprocessing imports its util module before it forks, so a fork without it is not
    # a multiprocessing child. Its own after-fork step clears finalizers, then runs ours.
    mp_util: Any = sys.modules.get("multiprocessing.util")
    if mp_util is not None and _shutdown is not None:
        with contextlib.suppress(Exception):
            mp_util.register_after_fork(_ANCHOR, _register_mp_finalizer)


def _register_mp_finalizer(_: object) -> None:
    sys.modules["multiprocessing.util"].Finalize(None, _at_exit, exitpriority=100)
