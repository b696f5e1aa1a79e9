"""``init()``, ``flush()``, ``shutdown()`` and the status object ``init()`` returns."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from . import _lifecycle as lifecycle
from . import _threads
from ._config import Settings, resolve
from ._state import DESTINATION_VARS, FLAGS, STATE, effective_env, set_content_env, warn_once

if TYPE_CHECKING:
    from ._instruments import InstrumentOutcome

__all__ = ["TracingStatus", "flush", "init", "shutdown", "status"]

logger = logging.getLogger("truefoundry_tracing")


@dataclass(frozen=True)
class TracingStatus:
    """What ``init()`` put in force. ``repr()`` masks the API key.

    ``instruments`` names the libraries being traced; ``instrument_report`` says, for every
    library considered, whether it was applied or why not (not installed, unavailable with
    this traceloop-sdk, incompatible versions, failed with the error).
    ``exported``, ``dropped``, ``pending``, ``unconfirmed`` and ``retried`` are live counters
    of the OTLP exporter; ``last_error`` is the latest export failure, in words, with its fix,
    ``last_error_at`` when it happened and ``error_cleared_at`` when export worked again.

    Example:
        >>> import truefoundry_tracing as tt
        >>> st = tt.init(app_name="demo", console=False)
        >>> st.destination, st.app_name
        ('none', 'demo')
    """

    enabled: bool
    destination: str
    traces_url: str | None
    app_name: str
    tracing_project: str | None
    headers: Mapping[str, str]
    batch: bool
    sample_rate: float
    trace_content: bool
    console: bool
    provider: str
    sources: Mapping[str, str]
    warnings: tuple[str, ...] = ()
    _report: tuple[InstrumentOutcome, ...] = field(default=(), repr=False)
    _stats: Any = field(default=None, repr=False, compare=False)

    @property
    def instrument_report(self) -> tuple[InstrumentOutcome, ...]:
        """One outcome per library considered, as of now: a ``deferred`` one turns into what
        happened when the app first imported or used the library."""
        from ._instruments import current

        return tuple(current(o) for o in self._report)

    @property
    def instruments(self) -> tuple[str, ...]:
        """Names of the libraries being traced (or to be, on first use)."""
        return tuple(o.name for o in self.instrument_report if o.active)

    @property
    def skipped_instruments(self) -> Mapping[str, str]:
        """Name to ``"state: reason"`` for every library considered and not traced."""
        return {o.name: f"{o.state}: {o.reason}" for o in self.instrument_report if not o.active}

    @property
    def exported(self) -> int:
        """Spans the collector accepted so far."""
        return int(self._stats.exported) if self._stats is not None else 0

    @property
    def dropped(self) -> int:
        """Spans given up on (collector refused them, or unreachable past the retry buffer)."""
        return int(self._stats.dropped) if self._stats is not None else 0

    @property
    def pending(self) -> int:
        """Spans kept for retry after a failed export."""
        return int(self._stats.pending) if self._stats is not None else 0

    @property
    def unconfirmed(self) -> int:
        """Spans sent without an answer in time: they may have arrived (not counted as dropped)."""
        return int(self._stats.unconfirmed) if self._stats is not None else 0

    @property
    def retried(self) -> int:
        """Spans sent again after an attempt that failed or got no answer."""
        return int(self._stats.retried) if self._stats is not None else 0

    @property
    def last_error(self) -> str | None:
        """The latest export failure, as a sentence with the fix, or None.

        It stays after the collector recovers; :attr:`error_cleared_at` says when it did.
        """
        return self._stats.last_error if self._stats is not None else None

    @property
    def last_error_at(self) -> float | None:
        """When :attr:`last_error` happened (``time.time()`` seconds), or None."""
        return self._stats.last_error_at if self._stats is not None else None

    @property
    def error_cleared_at(self) -> float | None:
        """When export succeeded again after :attr:`last_error` (``time.time()``), or None
        while the failure lasts (or when there was none)."""
        return self._stats.cleared_at if self._stats is not None else None

    def describe(self) -> str:
        """A few human lines: where traces go and what was instrumented."""
        lines = [
            f"destination: {self.destination}"
            + (f" ({self.traces_url})" if self.traces_url else ""),
            f"app: {self.app_name}",
            f"tracing project: {self.tracing_project or '-'}",
            f"headers: {dict(self.headers) or '-'}",
            f"export: {'batch' if self.batch else 'each span at once'}",
            f"instrumented: {', '.join(self.instruments) or '-'}",
            f"provider: {self.provider}",
        ]
        return "\n".join(lines)


def init(
    app_name: str | None = None,
    *,
    host: str | None = None,
    api_key: str | None = None,
    tracing_project: str | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    disable_batch: bool | None = None,
    trace_content: bool | None = None,
    sample_rate: float | None = None,
    console: bool | None = None,
    exporter: Any = None,
    instruments: Any = None,
    resource_attributes: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
    redact: Callable[[str, Any], Any] | bool | None = None,
    allow_insecure: bool | None = None,
    timeout: float | None = None,
    handle_sigterm: bool | None = None,
    strict: bool | None = None,
) -> TracingStatus:
    """Configure tracing for TrueFoundry (or a local default) in one call.

    Every argument also reads an environment variable (see the configuration reference);
    an explicit argument always wins. With no host, endpoint or exporter configured anywhere,
    nothing is sent over the network and each finished trace is printed as a tree to stderr.

    Calling it again with the same settings does nothing; with new settings, spans started
    afterwards follow them. Raises :class:`~truefoundry_tracing.ConfigError` (before changing
    anything) when an argument is invalid. A bad value in an environment variable is logged as
    one ERROR line with the fix and left out (tracing goes on without it), unless
    ``strict=True`` (``TFY_TRACING_STRICT=true``), which raises for it too.

    Example:
        >>> import truefoundry_tracing as tt
        >>> st = tt.init(app_name="support-bot", console=False)
        >>> st.app_name
        'support-bot'
    """
    arguments = dict(locals())  # first statement: exactly init()'s parameters, by name
    settings = resolve(env=effective_env(), **arguments)
    for problem in settings.errors:  # a bad variable never stops the app: one ERROR line
        warn_once(problem.message, logging.ERROR)
    return _apply(settings)


def _apply(settings: Settings) -> TracingStatus:
    with STATE.lock:
        for note in settings.warnings:
            warn_once(note)
        lifecycle.manage_sigterm(
            settings.handle_sigterm and settings.enabled, shutdown, settings.timeout
        )
        old: Settings | None = STATE.settings
        if old is not None and STATE.status is not None and settings.identity() == old.identity():
            return cast(TracingStatus, STATE.status)

        from opentelemetry.sdk.resources import Resource

        from . import _exporters, _instruments, _pipeline

        pipe = _pipeline.get_pipeline()
        resource = Resource.create(
            {
                **settings.resource_attributes,
                "service.name": settings.app_name,
                "telemetry.sdk.name": "opentelemetry",
            }
        )
        provider = pipe.ensure_provider(resource)
        on_retired = _announce_change(old, settings)
        stats = _exporters.ExportStats()
        delegates, exporters = _destinations(settings, stats)
        pipe.apply(
            _pipeline.PipelineConfig(
                delegates=tuple(delegates),
                exporters=tuple(exporters),
                redactor=_redactor(settings),
                trace_content=settings.trace_content,
                resource=resource,
                sample_rate=settings.sample_rate,
                enabled=settings.enabled,
            ),
            settings.timeout,
            on_retired=on_retired,
        )
        set_content_env(settings.trace_content)
        FLAGS.enabled = settings.enabled
        FLAGS.trace_content = settings.trace_content
        FLAGS.tracer = pipe.tracer

        from . import _traceloop

        _traceloop.connect(provider, settings.enabled)
        report = _instruments.Report(())
        if settings.enabled:
            report = _instruments.apply(settings.instruments, provider)
            _threads.propagate_context()

        status = TracingStatus(
            enabled=settings.enabled,
            destination=settings.destination,
            traces_url=settings.traces_url,
            app_name=settings.app_name,
            tracing_project=settings.tracing_project,
            headers=settings.masked_headers(),
            batch=not settings.disable_batch,
            sample_rate=settings.sample_rate,
            trace_content=settings.trace_content,
            console=settings.console,
            provider=pipe.provider_note,
            sources=dict(settings.sources),
            warnings=settings.warnings,
            _report=report.outcomes,
            _stats=stats,
        )
        STATE.settings, STATE.status, STATE.stats = settings, status, stats
        _show_banner(settings)
        lifecycle.register_exit(shutdown)
        lifecycle.register_fork_hook(pipe.after_fork)
        if any(isinstance(e, _exporters.OTLPExporter) for e in exporters):
            _exporters.preload()  # last: its imports run beside the app, not inside init()
        return status


def _redactor(settings: Settings) -> Any:
    if settings.redact is False:
        return None
    from ._redact import Redactor

    return Redactor(
        secrets=[settings.api_key] if settings.api_key else [],
        hook=settings.redact if callable(settings.redact) else None,
    )


def _destinations(settings: Settings, stats: Any) -> tuple[list[Any], list[Any]]:
    """The processors and exporters ``settings`` send spans to."""
    from . import _exporters, _processors
    from ._transport import Hints

    delegates: list[Any] = []
    exporters: list[Any] = []
    if not settings.enabled:
        return delegates, exporters
    if settings.exporter is not None:
        exporters.append(settings.exporter)
        delegates.append(
            _processors.user_processor(settings.exporter, batch=not settings.disable_batch)
        )
    elif settings.traces_url:
        exp = _exporters.OTLPExporter(
            settings.traces_url,
            settings.export_headers(),
            timeout=settings.timeout,
            hints=Hints.for_settings(settings, settings.traces_url),
            stats=stats,
            request_timeout=_exporters.request_timeout(),
        )
        exporters.append(exp)
        delegates.append(_processors.make_processor(exp, batch=not settings.disable_batch))
    if settings.console:
        delegates.append(_processors.local_processor(_exporters.ConsoleTreeExporter()))
    return delegates, exporters


def _show_banner(settings: Settings) -> None:
    if STATE.banner_shown or settings.destination != "console":
        return
    STATE.banner_shown = True
    ignored = _ignored_under_pytest()
    if ignored:
        sys.stderr.write(
            f"truefoundry_tracing: under pytest, {' and '.join(ignored)} from the shell "
            "environment is ignored on purpose, so a test run never sends traces; they stay on "
            "this machine and are printed below. Pass host= to init() in the test, or run "
            "pytest with --tfy-allow-export, to send them.\n"
        )
        return
    sys.stderr.write(
        "truefoundry_tracing: traces stay on this machine and are printed below. "
        "Set TFY_HOST and TFY_API_KEY to send them to TrueFoundry.\n"
    )


def _ignored_under_pytest() -> list[str]:
    """Destination variables set in the shell that the pytest plugin has set aside."""
    test_env = STATE.test_env
    if test_env is None:
        return []
    return [k for k in DESTINATION_VARS if k in test_env and os.environ.get(k) == test_env[k]]


def status() -> TracingStatus | None:
    """The status object of the last successful ``init()``, or None before it.

    Example:
        >>> import truefoundry_tracing as tt
        >>> tt.status() is None or tt.status().app_name != ""
        True
    """
    return cast("TracingStatus | None", STATE.status)


def flush(timeout: float | None = None) -> bool:
    """Send every finished span now; wait at most ``timeout`` seconds (default: init's).

    Returns True only when every span handed to the exporter so far (since the previous
    ``flush()``) was accepted by the collector: False when spans are still held for a retry,
    were dropped, or got no answer in time (``status()`` says which). Never raises.

    Example:
        >>> import truefoundry_tracing as tt
        >>> tt.flush(timeout=1.0) in (True, False)
        True
    """
    if "truefoundry_tracing._pipeline" not in sys.modules:
        return True
    from ._pipeline import get_pipeline

    return get_pipeline().flush(max(0.0, _limit(timeout)))


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop exporting, within ``timeout`` seconds (default: init's, 5 s).

    Called for you at interpreter exit, sharing one deadline with a ``flush()`` that just
    timed out on the same request. Prints one line if spans were not delivered, with the
    cause. Libraries whose instrumentation was deferred to their first use stay
    uninstrumented. A later ``init()`` starts exporting again.

    Example:
        >>> import truefoundry_tracing as tt
        >>> tt.shutdown(timeout=1.0) in (True, False)
        True
    """
    if "truefoundry_tracing._pipeline" not in sys.modules:
        return True
    from ._pipeline import get_pipeline

    with STATE.lock:
        limit = _limit(timeout)
        stats = STATE.stats
        done = get_pipeline().shutdown(max(0.0, limit))
        if "truefoundry_tracing._instruments" in sys.modules:
            sys.modules["truefoundry_tracing._instruments"].cancel_deferred()
        STATE.settings = STATE.status = STATE.stats = None
    line = _loss_line(stats)
    if line:
        logger.warning("truefoundry_tracing: %s", line)
    return done


def _limit(timeout: float | None) -> float:
    """``timeout``, or the one ``init()`` set, or 5 s."""
    if timeout is not None:
        return timeout
    settings: Settings | None = STATE.settings
    return settings.timeout if settings is not None else 5.0


def _loss_line(stats: Any, where: str = "") -> str:
    """One sentence on what was not delivered and why, or "" when nothing was lost."""
    if stats is None or not (stats.dropped or stats.unconfirmed):
        return ""
    parts = [f"{_were(stats.dropped)} dropped and {stats.exported} exported{where}."]
    if stats.unconfirmed:
        parts.append(
            f"{_were(stats.unconfirmed)} sent but got no answer in time; "
            f"{'it' if stats.unconfirmed == 1 else 'they'} may have arrived."
        )
    if stats.dropped and stats.drop_cause:
        parts.append(f"Dropped because {_lower_first(stats.drop_cause)}")
    elif stats.last_error:
        parts.append(f"Last error: {stats.last_error}")
    return " ".join(parts)


def _were(n: int) -> str:
    return "1 span was" if n == 1 else f"{n} spans were"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text


def _where(settings: Settings | None) -> str:
    """Where ``settings`` send spans, in a few words, for messages."""
    if settings is None:
        return "nowhere"
    if settings.exporter is not None:
        return f"your exporter ({type(settings.exporter).__name__})"
    if settings.traces_url:
        return settings.traces_url
    return "the console" if settings.destination == "console" else "nowhere (tracing is off)"


def _announce_change(old: Settings | None, new: Settings) -> Callable[[Any], None] | None:
    """Say in one line that a re-``init()`` changed where spans go.

    Returns what reports, once the old exporter is retired, the spans it could not deliver.
    """
    if old is None:
        return None
    before, after = _where(old), _where(new)
    if before != after:
        logger.warning(
            "truefoundry_tracing: init() changed the destination: %s -> %s; spans already "
            "queued for %s are sent there within %g s.",
            before,
            after,
            before,
            old.timeout,
        )
    stats = STATE.stats
    if stats is None:
        return None
    with stats.lock:
        lost_before = (stats.dropped, stats.unconfirmed)

    def report(_: Any) -> None:
        if (stats.dropped, stats.unconfirmed) != lost_before:
            line = _loss_line(stats, f" for the previous destination {before}")
            logger.warning("truefoundry_tracing: %s", line)

    return report
