"""The base of the framework instrumentations this library ships (``own(...)`` entries of the
instrument table): a BaseInstrumentor that wraps a table of methods with wrapt and unwraps
them again. What :meth:`OwnInstrumentor.targets` names is needed: the release's lack of one is
for :meth:`~OwnInstrumentor.missing` to decide, and a failure to wrap one undoes the others and
is raised (``init()`` reports the instrumentation failed). What
:meth:`~OwnInstrumentor.optional` names is wrapped where the release has it (its module
included): one it lacks is handed to :meth:`~OwnInstrumentor.unavailable` and the rest goes on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

__all__ = ["OwnInstrumentor", "Targets", "Wrapper"]

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]
#: (module, "Class.method" or "function") -> the wrapt wrapper to put around it
Targets = dict[tuple[str, str], Wrapper]


def _resolve(module: str, path: str) -> tuple[Any, str] | None:
    """The object holding ``path``'s last name and that name, when the release has it."""
    owner: Any = importlib.import_module(module)
    *classes, attr = path.split(".")
    for name in classes:
        owner = getattr(owner, name, None)
    if owner is None or attr not in vars(owner):
        return None
    return owner, attr


class OwnInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Wraps what :meth:`targets` names; :meth:`missing` decides about what a release lacks.

    Example:
        >>> class Demo(OwnInstrumentor):
        ...     def targets(self, tracer): return {("json", "dumps"): lambda w, i, a, k: w(*a, **k)}
        >>> import json
        >>> Demo().instrument(); json.dumps(1); Demo().uninstrument()
        '1'
    """

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ()

    def targets(self, tracer: Any) -> Targets:
        """What to wrap, with wrappers recording through ``tracer``."""
        raise NotImplementedError

    def missing(self, names: list[str]) -> None:
        """Called with the targets this release does not have (default: leave them out)."""

    def optional(self, tracer: Any) -> Targets:
        """More to wrap, where the release has it (default: nothing)."""
        return {}

    def unavailable(self, name: str, exc: Exception) -> None:
        """Called for each optional target this release lacks, or that could not be wrapped
        (default: leave it out)."""

    def _instrument(self, **kwargs: Any) -> None:
        from opentelemetry import trace

        from .._version import __version__

        provider = kwargs.get("tracer_provider")
        tracer = trace.get_tracer(type(self).__module__, __version__, provider)
        targets = self.targets(tracer)
        found = {key: _resolve(*key) for key in targets}
        absent = [f"{module}.{path}" for (module, path), where in found.items() if where is None]
        if absent:
            self.missing(absent)
        self._wrapped: list[tuple[Any, str]] = []
        try:
            for key, where in found.items():
                if where is not None:
                    self._wrap(where, targets[key])
        except Exception:
            self._uninstrument()
            raise
        for (module, path), wrapper in self.optional(tracer).items():
            try:
                where = _resolve(module, path)
                if where is None:
                    raise AttributeError(f"{module!r} has no attribute {path!r}")
                self._wrap(where, wrapper)
            except Exception as exc:
                self.unavailable(f"{module}.{path}", exc)

    def _wrap(self, where: tuple[Any, str], wrapper: Wrapper) -> None:
        from wrapt import wrap_function_wrapper

        wrap_function_wrapper(where[0], where[1], wrapper)
        self._wrapped.append(where)

    def _uninstrument(self, **kwargs: Any) -> None:
        from opentelemetry.instrumentation.utils import unwrap

        for owner, name in getattr(self, "_wrapped", ()):
            unwrap(owner, name)
        self._wrapped = []
