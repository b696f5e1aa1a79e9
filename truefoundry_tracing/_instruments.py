"""Which libraries ``init()`` instruments, and what happened to each.

By default: every LLM provider, agent framework and vector database in :data:`DEFAULT` whose
distribution is installed, through the instrumentation traceloop-sdk ships for it. Generic HTTP
and database instrumentations (:data:`OPT_IN`) only when named. Every library gets an
:class:`InstrumentOutcome` in the status ``init()`` returns: applied, or why not.

traceloop's instrumentations cannot be taken off a running process reliably (several
``_uninstrument`` methods unwrap nothing), so once applied they stay applied: a later
``init()`` that no longer asks for them reports them as ``kept`` and warns once, and one that
asks again never wraps a library twice.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from . import _deferred
from ._frameworks import _dedupe, _fixes, _gaps, _offline
from ._instrument_table import (
    DEFAULT,
    KNOWN,
    OPT_IN,
    Instrumentation,
    InstrumentOutcome,
    Report,
    State,
    check_names,
    module_available,
)
from ._shims import openai_stream_usage
from ._state import FLAGS

__all__ = [
    "DEFAULT",
    "KNOWN",
    "OPT_IN",
    "InstrumentOutcome",
    "Instrumentation",
    "Report",
    "apply",
    "check_names",
]

logger = logging.getLogger("truefoundry_tracing")

# Live instrumentor per name, and outcomes that must not be retried (a failed instrument()
# may have wrapped half of a library; trying again would wrap that half twice).
_active: dict[str, tuple[Any, InstrumentOutcome]] = {}
_final: dict[str, InstrumentOutcome] = {}
_warned: set[str] = set()
# What init() turned off or deduplicates, per library, for its report line (see _frameworks).
_notes: dict[str, str] = {}
_dedupe_notes: dict[str, str] = {}
# Deferred ones: the gate to take down when they fire, and what init() reported; and what
# they became once fired. The provider is the one the latest init() set up.
_pending: dict[str, tuple[_deferred.Gate | None, InstrumentOutcome]] = {}
_resolved: dict[str, InstrumentOutcome] = {}
_provider: Any = None
# Reentrant: applying one instrumentation may import another deferred library, whose import
# hook then applies that one on the same thread.
_lock = threading.RLock()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class _Scan:
    path: tuple[str, ...]  # sys.path when scanned
    watched: tuple[tuple[str, int], ...]  # the folders that hold distributions, with mtimes
    found: dict[str, str] | None  # canonical name -> metadata file; None: unlistable entry

    def fresh(self) -> bool:
        if tuple(sys.path) != self.path:
            return False
        try:
            return all(os.stat(d).st_mtime_ns == m for d, m in self.watched)
        except OSError:
            return False


_scan = _Scan((), (), None)
_METADATA = {"dist-info": "METADATA", "egg-info": "PKG-INFO", "egg": "EGG-INFO/PKG-INFO"}


def _listed_dists() -> dict[str, str] | None:
    """The metadata file of each distribution whose metadata folder lies on ``sys.path``.

    One directory listing per ``sys.path`` entry (the first entry naming a distribution wins,
    as for ``importlib.metadata``), cached until ``sys.path`` or a folder holding distributions
    changes (an install touches it; folders without any, like a script's own, are not
    watched). ``init()`` asks about some forty distributions; an ``importlib.metadata`` search
    for each, and importing that module, cost more than the rest of ``init()``. None when an
    entry is an archive (a zip), which only ``importlib.metadata`` can look into.
    """
    global _scan
    if _scan.path and _scan.fresh():
        return _scan.found
    path = tuple(sys.path)
    found: dict[str, str] = {}
    watched: list[tuple[str, int]] = []
    for entry in path:
        folder = entry or "."
        try:
            mtime = os.stat(folder).st_mtime_ns
            listing = os.listdir(folder)
        except NotADirectoryError:
            _scan = _Scan(path, (), None)
            return None
        except OSError:
            continue
        holds = False
        for item in listing:
            stem, dot, suffix = item.rpartition(".")
            if dot and suffix in _METADATA:
                holds = True
                name = _canonical(stem.partition("-")[0])
                found.setdefault(name, os.path.join(folder, item, _METADATA[suffix]))
        if holds:
            watched.append((folder, mtime))
    _scan = _Scan(path, tuple(watched), found)
    return found


def _read_version(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line[8:].strip() or None
                if not line.strip():  # the headers end at the first blank line
                    break
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    listed = _listed_dists()
    if listed is not None:
        path = listed.get(_canonical(dist))
        return None if path is None else _read_version(path)
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed_dist(inst: Instrumentation) -> tuple[str, str] | None:
    for dist in inst.dists:
        found = _version(dist)
        if found is not None:
            return dist, found
    return None


async def _no_upload(*_args: Any, **_kwargs: Any) -> str:
    """Stands in for traceloop's image uploader: images are never sent anywhere."""
    return ""


def _construct(cls: Any) -> Any:
    try:
        params: Mapping[str, Any] = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, Any] = {}
    if "upload_base64_image" in params:
        kwargs["upload_base64_image"] = _no_upload
    if "enrich_token_usage" in params:
        # tiktoken would download encodings; Anthropic's needs none (it reads the stream's
        # usage) and without it traceloop 0.38 records no tokens for a stream
        kwargs["enrich_token_usage"] = cls.__module__.endswith(".anthropic")
    if "enrich_assistant" in params:
        kwargs["enrich_assistant"] = False
    return cls(**kwargs)


def _conflict_reason(conflict: Any, inst: Instrumentation, version: str | None) -> str:
    required = getattr(conflict, "required", None) or " or ".join(
        getattr(conflict, "required_any", None) or ()
    )
    found = getattr(conflict, "found", None) or ", ".join(
        getattr(conflict, "found_any", None) or ()
    )
    have = f"found {found}" if found else "it is not installed"
    return f"{inst.package} {version or '?'} needs {required}; {have}."


def _failure(
    exc: Exception, inst: Instrumentation, lib_version: str | None, inst_version: str | None
) -> InstrumentOutcome:
    wrapt = _version("wrapt") or "0"
    if (
        isinstance(exc, TypeError)
        and "unexpected keyword argument 'module'" in str(exc)
        and int(wrapt.split(".")[0]) >= 2
    ):
        # wrapt 2 renamed wrap_function_wrapper's first parameter; the call failed before
        # wrapping anything.
        return InstrumentOutcome(
            inst.name,
            "incompatible",
            f"{inst.package} {inst_version} does not work with wrapt {wrapt}; "
            "install 'wrapt<2' or a newer traceloop-sdk.",
            lib_version,
            inst_version,
        )
    reason = f"{inst.package} {inst_version} raised {type(exc).__name__}: {exc}"
    hint = _gaps.failure_hint(inst.name, lib_version)  # the versions that work, if known
    if hint:
        reason = reason.rstrip(".") + "." + hint
    return InstrumentOutcome(inst.name, "failed", reason, lib_version, inst_version)


def _partial_ok(exc: Exception, inst: Instrumentation) -> bool:
    """traceloop 0.38's LangChain instrumentation hooks LangChain's callbacks first, then
    fails on a missing langchain-community while adding trace-context headers: the spans work.
    """
    return (
        inst.name == "langchain"
        and isinstance(exc, ModuleNotFoundError)
        and (exc.name or "").startswith("langchain_community")
    )


def _apply_one(inst: Instrumentation, tracer_provider: Any) -> InstrumentOutcome:
    found = _installed_dist(inst)
    if found is None:
        return InstrumentOutcome(inst.name, "not installed", f"{inst.dists[0]} is not installed.")
    dist, lib_version = found
    inst_version = _version(inst.package)
    if not module_available(inst.module):
        return InstrumentOutcome(
            inst.name,
            "unavailable",
            f"{dist} {lib_version} is installed, but {inst.package} is not: this "
            f"traceloop-sdk ({_version('traceloop-sdk') or 'not installed'}) ships no "
            f"instrumentation for it. Install {inst.package} or a newer traceloop-sdk.",
            library_version=lib_version,
        )
    deferred = _defer(inst, lib_version, inst_version)
    if deferred is not None:
        return deferred
    return _instrument(inst, tracer_provider, lib_version, inst_version)


def _defer(
    inst: Instrumentation, lib_version: str, inst_version: str | None
) -> InstrumentOutcome | None:
    """Arrange for ``inst`` to be applied on first import or first use; None: apply it now."""

    def fire() -> bool:
        return _fire(inst.name)

    def deferred(reason: str, gate: _deferred.Gate | None) -> InstrumentOutcome:
        outcome = InstrumentOutcome(inst.name, "deferred", reason, lib_version, inst_version)
        _pending[inst.name] = (gate, outcome)
        return outcome

    if not _deferred.imported(inst.imports):
        # top-level names only: finding a dotted one would import its parent package
        if not any(module_available(m.partition(".")[0]) for m in inst.imports):
            return None  # installed under a module name this table does not know: apply now
        # registered first: the hook fires at once if another thread imported it meanwhile
        outcome = deferred(
            f"{inst.imports[0]} is not imported yet; it is instrumented as the app imports it.",
            None,
        )
        _deferred.on_import(inst.imports, fire)
        return outcome
    if inst.name == "openai":
        gate = _deferred.openai_gate(fire)
        if gate is not None:
            FLAGS.before_span = _fire_gated
            return deferred(
                "instrumented when the app first creates or uses an OpenAI client or starts its "
                "first traced function, so init() stays fast.",
                gate,
            )
    return None


def _fire(name: str) -> bool:
    """Apply a deferred instrumentation now, if it still is pending. Never raises."""
    try:
        with _lock:
            pending = _pending.pop(name, None)
            if pending is None:
                return False
            gate, was = pending
            if gate is not None:
                gate.remove()
            outcome = _instrument(
                KNOWN[name], _provider, was.library_version, was.instrumentation_version
            )
            _resolved[name] = outcome
    except Exception:
        logger.warning(
            "truefoundry_tracing: instrumenting %s on first use failed; it is not traced.",
            name,
            exc_info=True,
        )
        return False
    if outcome.active:
        logger.debug("truefoundry_tracing: instrumented %s on first use", name)
    else:
        logger.warning("truefoundry_tracing: %s is not traced: %s", name, outcome)
    return True


def _fire_gated() -> None:
    """Apply what waits behind a first-use gate, ahead of the first span a decorator starts.

    The gate alone would load the instrumentation inside the first traced call and make that
    span look seconds slower than the app's own work. Threads racing here wait on the lock
    in ``_fire`` until the instrumentation is in place.
    """
    for name, (gate, _) in list(_pending.items()):
        if gate is not None:
            _fire(name)
    FLAGS.before_span = None


def _cancel(names: Iterable[str]) -> None:
    for name in names:
        gate = _pending.pop(name)[0]
        if gate is not None:
            gate.remove()


def cancel_deferred() -> None:
    """Drop every deferred instrumentation not applied yet (``shutdown()``)."""
    with _lock:
        _cancel(list(_pending))
        FLAGS.before_span = None


def current(outcome: InstrumentOutcome) -> InstrumentOutcome:
    """What became of ``outcome`` since: a deferred one once its library was first used.

    Example:
        >>> o = InstrumentOutcome("x", "not installed", "x is not installed.")
        >>> current(o) is o
        True
    """
    resolved = _resolved.get(outcome.name) if outcome.state == "deferred" else None
    return outcome if resolved is None else _annotate(resolved)


_NOT_APPLIED = ("unavailable", "incompatible", "failed")


def _annotate(outcome: InstrumentOutcome) -> InstrumentOutcome:
    """``outcome`` with what init() turned off or deduplicates for its library."""
    if outcome.state == "not installed":
        return outcome
    notes = (outcome.reason, _notes.get(outcome.name), _dedupe_notes.get(outcome.name))
    reason = "; ".join(dict.fromkeys(n for n in notes if n))
    return outcome if reason == outcome.reason else replace(outcome, reason=reason)


@contextmanager
def _quiet_instrumentations() -> Iterator[None]:
    """Ignore deprecation warnings raised by traceloop's instrumentation modules themselves.

    Only their maintainers can act on them (opentelemetry-instrumentation-openai defines a
    pydantic model with a class-based ``Config``), and under ``-W error`` or pytest's
    ``filterwarnings = error`` one of them aborted the import and left the library untraced.
    """
    with warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning):
            warnings.filterwarnings(
                "ignore", category=category, module=r"opentelemetry\.instrumentation\."
            )
        yield


@_quiet_instrumentations()
def _instrument(
    inst: Instrumentation,
    tracer_provider: Any,
    lib_version: str | None,
    inst_version: str | None,
) -> InstrumentOutcome:
    def outcome(state: State, reason: str = "") -> InstrumentOutcome:
        return InstrumentOutcome(inst.name, state, reason, lib_version, inst_version)

    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    try:
        instrumentor = _construct(getattr(importlib.import_module(inst.module), inst.cls))
        conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
    except Exception as exc:
        return _failure(exc, inst, lib_version, inst_version)
    if conflict is not None:
        hint = _gaps.failure_hint(inst.name, lib_version)  # the versions that work, if known
        return outcome("incompatible", _conflict_reason(conflict, inst, inst_version) + hint)
    if inst.name == "openai":
        openai_stream_usage.apply()  # 0.38: the usage a stream carries goes on its span
        _fixes.skip_openai_omit()  # no "Invalid type Omit" warnings (Pydantic AI passes omit)
    if instrumentor.is_instrumented_by_opentelemetry:
        _active[inst.name] = (
            instrumentor,
            outcome("applied", "it was already instrumented before init()."),
        )
        return _active[inst.name][1]
    try:
        instrumentor.instrument(tracer_provider=tracer_provider)
        _dedupe_notes[inst.name] = _dedupe.activate(inst.name)
    except Exception as exc:
        if not _partial_ok(exc, inst):
            _final[inst.name] = _failure(exc, inst, lib_version, inst_version)
            return _final[inst.name]
        _dedupe_notes[inst.name] = _dedupe.activate(inst.name)  # applied: corrected as well
        _active[inst.name] = (
            instrumentor,
            outcome(
                "applied",
                f"without trace-context headers to the model provider: {inst.package} "
                f"{inst_version} needs langchain-community for them.",
            ),
        )
        return _active[inst.name][1]
    _active[inst.name] = (instrumentor, outcome("applied"))
    return _active[inst.name][1]


def _keep(inst: Instrumentation) -> InstrumentOutcome:
    if inst.name not in _warned:
        _warned.add(inst.name)
        logger.warning(
            "truefoundry_tracing: %s stays instrumented: it was instrumented by an earlier "
            "init() and traceloop's instrumentation cannot be removed from a running process. "
            "Restart the process to stop tracing it.",
            inst.name,
        )
    was = _active[inst.name][1]
    return InstrumentOutcome(
        inst.name,
        "kept",
        "instrumented by an earlier init(); it cannot be removed until the process restarts.",
        was.library_version,
        was.instrumentation_version,
    )


def apply(names: tuple[str, ...] | None, tracer_provider: Any) -> Report:
    """Instrument the named libraries (None: the installed :data:`DEFAULT` ones).

    Libraries applied by an earlier call and no longer named are uninstrumented when their
    instrumentation supports it (:data:`OPT_IN`), else kept and reported as ``kept``.
    Never raises.
    """
    global _provider
    wanted = DEFAULT if names is None else tuple(KNOWN[n] for n in check_names(names))
    wanted_names = {i.name for i in wanted}
    outcomes: list[InstrumentOutcome] = []
    with _lock:
        _provider = tracer_provider
        _cancel(name for name in list(_pending) if name not in wanted_names)
        for name in list(_active):
            if name in wanted_names:
                continue
            inst = KNOWN[name]
            if not inst.removable:
                outcomes.append(_keep(inst))
                continue
            try:
                _active.pop(name)[0].uninstrument()
            except Exception as exc:
                logger.warning("truefoundry_tracing: could not uninstrument %s: %s", name, exc)
        for inst in wanted:
            if inst.name in _offline.SWITCHES and _installed_dist(inst) is not None:
                _notes[inst.name] = _offline.apply(inst.name)  # before the app imports it
            if inst.name in _active:
                outcomes.append(_active[inst.name][1])
            elif inst.name in _pending:
                outcomes.append(_pending[inst.name][1])
            elif inst.name in _final:
                outcomes.append(_final[inst.name])
            else:
                outcomes.append(_apply_one(inst, tracer_provider))
                if inst.name == "openai_agents" and outcomes[-1].state in _NOT_APPLIED:
                    _notes[inst.name] = _offline.apply(inst.name, _offline.AGENTS_UNOBSERVED)
    order = {i.name: n for n, i in enumerate(DEFAULT + OPT_IN)}
    ordered = [_annotate(o) for o in sorted(outcomes, key=lambda o: order[o.name])]
    gaps = _gaps.untraced(_version) if names is None else []
    return Report((*ordered, *(_gap(*g) for g in gaps)))


def _gap(name: str, version: str, reason: str) -> InstrumentOutcome:
    """A library whose model calls nothing sees: reported, and warned about once."""
    if name not in _warned:
        _warned.add(name)
        logger.warning("truefoundry_tracing: %s is not traced: %s", name, reason)
    return InstrumentOutcome(name, "unavailable", reason, version)
