"""Triggers that instrument a library when the app first needs it rather than in ``init()``.

Loading an instrumentation costs what importing its library costs, and more: traceloop's
OpenAI instrumentation alone imports hundreds of the client's models (about 0.6 s here). Two
triggers move that work to the moment it is needed, without losing a call:

* a library not imported yet is instrumented right after the app imports it (a post-import
  hook, :mod:`truefoundry_tracing._import_hooks`: the mechanism of wrapt's, without importing
  wrapt), before the importing statement returns, so no call can come first;
* the OpenAI client, already imported, is instrumented when the app creates a client, which
  apps mostly do while starting, outside any request or span; or, for a client created
  before ``init()``, when the app builds its first API resource (``client.chat``,
  ``client.embeddings``...): every call goes through one, and the client builds them on first
  attribute access. A resource built *before* ``init()`` is the one way past that gate; the
  client's request method catches it, instruments then, and says that this one call went
  untraced.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("truefoundry_tracing")

# Instruments the library if that is still to be done; True when this call did it.
Fire = Callable[[], bool]

_hooked: set[str] = set()
_lock = threading.Lock()


def on_import(modules: tuple[str, ...], fire: Fire) -> None:
    """Call ``fire`` once, right after the first of ``modules`` is imported.

    ``fire`` must be idempotent and must never raise: it runs inside the app's import statement.
    Hooks cannot be unregistered, so each module is hooked once per process; ``fire`` decides
    whether anything is still to be done.
    """
    from ._import_hooks import when_imported

    def hook(_module: object) -> None:
        fire()

    for module in modules:
        with _lock:
            if module in _hooked:
                continue
            _hooked.add(module)
        when_imported(module, hook)


def imported(modules: tuple[str, ...]) -> bool:
    """True when any of ``modules`` is already imported."""
    return any(m in sys.modules for m in modules)


class Gate:
    """Replacement methods on a library's classes that fire once, then put the originals back.

    ``entry`` methods fire before the original runs (nothing of the library is usable yet);
    ``late`` methods fire too, and report that the call in progress started before the
    instrumentation was in place.
    """

    def __init__(self) -> None:
        self._saved: list[tuple[type, str, Any]] = []

    def install(self, targets: list[tuple[type, str]], before: Callable[[bool], None]) -> None:
        """Wrap each ``(cls, method)``; ``before(late)`` runs ahead of the original method."""
        for cls, attr in targets:
            original = cls.__dict__[attr]
            self._saved.append((cls, attr, original))
            setattr(cls, attr, _gated(original, attr != "__init__", before))

    def remove(self) -> None:
        """Put every original method back (idempotent)."""
        while self._saved:
            cls, attr, original = self._saved.pop()
            setattr(cls, attr, original)


def _gated(original: Any, late: bool, before: Callable[[bool], None]) -> Any:
    gated: Any
    if inspect.iscoroutinefunction(original):

        async def gated(*args: Any, **kwargs: Any) -> Any:
            before(late)
            return await original(*args, **kwargs)

    else:

        def gated(*args: Any, **kwargs: Any) -> Any:
            before(late)
            return original(*args, **kwargs)

    gated.__name__ = getattr(original, "__name__", "gated")
    gated.__qualname__ = getattr(original, "__qualname__", "gated")
    gated.__doc__ = getattr(original, "__doc__", None)
    gated.__wrapped__ = original
    return gated


def openai_gate(fire: Fire) -> Gate | None:
    """Gate the already-imported OpenAI client on its first client or API resource, or None.

    None means this client version cannot be gated safely (it predates the shared resource
    base class, or builds its resources when the client is constructed, so clients made
    before ``init()`` would never pass the gate): the caller instruments at once instead.
    """
    try:
        from openai import AsyncOpenAI, OpenAI
        from openai._base_client import AsyncAPIClient, SyncAPIClient
        from openai._resource import AsyncAPIResource, SyncAPIResource
    except ImportError:
        return None
    if "chat" not in vars(OpenAI) or "chat" not in vars(AsyncOpenAI):
        return None
    targets: list[tuple[type, str]] = [
        (OpenAI, "__init__"),
        (AsyncOpenAI, "__init__"),
        (SyncAPIResource, "__init__"),
        (AsyncAPIResource, "__init__"),
        (SyncAPIClient, "request"),
        (AsyncAPIClient, "request"),
    ]
    if not all(attr in vars(cls) for cls, attr in targets):
        return None
    gate = Gate()

    def before(late: bool) -> None:
        if fire() and late:
            logger.warning(
                "truefoundry_tracing: an OpenAI call started before the OpenAI "
                "instrumentation was in place, so that call is not traced; later calls are. "
                "The client it went through was first used before init(): call init() "
                "before the first use of an OpenAI client."
            )

    gate.install(targets, before)
    return gate
