"""Call a function right after a module is first imported: a light post-import hook.

``init()`` defers each library's instrumentation to the moment the app imports that library
(:mod:`truefoundry_tracing._deferred`). wrapt's ``register_post_import_hook`` does the same,
but importing wrapt 2 pulls in ``asyncio`` and ``importlib.metadata`` (about 25 ms, a third of
a bare ``init()``) for a feature that needs neither. This module adds one finder at the front
of ``sys.meta_path`` that answers only for the hooked module names: it asks the other finders
for the real spec and wraps its loader so the hooks run once the module's code has run, before
the importing statement returns. Afterwards the module's ``__loader__`` and ``__spec__.loader``
are the real loader again. As with wrapt's, a namespace package (no loader until Python makes
one) is not hooked: hook one of its regular subpackages (``llama_index.core``) instead.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

logger = logging.getLogger("truefoundry_tracing")

Hook = Callable[[ModuleType], None]

_lock = threading.RLock()
_hooks: dict[str, list[Hook]] = {}
_finder: _Finder | None = None


def _run(hooks: list[Hook], module: ModuleType) -> None:
    for hook in hooks:
        try:
            hook(module)
        except Exception:  # a hook must never break the app's import
            logger.warning(
                "truefoundry_tracing: a post-import hook for %s failed",
                module.__name__,
                exc_info=True,
            )


class _Loader:
    """The real loader, plus the hooks once the module's code has run."""

    def __init__(self, loader: Any, spec: ModuleSpec) -> None:
        self._loader = loader
        self._spec = spec

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        self._spec.loader = self._loader
        self._loader.exec_module(module)
        with _lock:
            hooks = _hooks.pop(module.__name__, [])
        _run(hooks, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Finder:
    """Answers for hooked module names only, with the spec the other finders give."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in _hooks or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec: ModuleSpec | None = find(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy.name = None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, spec)  # type: ignore[assignment]
        return spec


def when_imported(module: str, hook: Hook) -> None:
    """Call ``hook(module)`` once, right after ``module`` is first imported; at once if it is.

    Example:
        >>> seen = []
        >>> when_imported("json", lambda m: seen.append(m.__name__))  # json is imported
        >>> seen
        ['json']
    """
    global _finder
    with _lock:
        loaded = sys.modules.get(module)
        if loaded is None:
            _hooks.setdefault(module, []).append(hook)
            if _finder is None:
                _finder = _Finder()
                sys.meta_path.insert(0, _finder)
            return
    _run([hook], loaded)
