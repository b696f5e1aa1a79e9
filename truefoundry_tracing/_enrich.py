"""Start-time enrichers that surfaces register with the span pipeline.

The root span processor calls every registered hook with each span as it starts and the
current context. A surface registers its hook when it is first used (the gateway when a
``gateway_metadata()`` block first opens), so the pipeline never imports a surface and spans
pay nothing for a feature the app does not use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["START_HOOKS", "StartHook", "register_start_hook"]

StartHook = Callable[[Any, Mapping[str, object]], None]

#: Read by the root processor on every span start: a tuple, replaced whole on registration.
START_HOOKS: tuple[StartHook, ...] = ()
_lock = threading.Lock()


def register_start_hook(hook: StartHook) -> None:
    """Call ``hook(span, context)`` for every span started from now on (once per hook).

    Example:
        >>> from truefoundry_tracing import _enrich
        >>> def note(span, ctx):
        ...     pass  # e.g. span.set_attribute(...) from a context value
        >>> _enrich.register_start_hook(note)
        >>> _enrich.register_start_hook(note)  # a second registration is ignored
        >>> _enrich.START_HOOKS.count(note)
        1
    """
    global START_HOOKS
    with _lock:
        if hook not in START_HOOKS:
            START_HOOKS = (*START_HOOKS, hook)
