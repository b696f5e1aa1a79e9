"""The span pipeline: one tracer provider, one root processor, a configuration swapped whole.

OpenTelemetry lets the global tracer provider be set once per process, so ``init()`` installs a
single :class:`RootProcessor` on it, and each ``init()`` builds a frozen :class:`PipelineConfig`
(processors, exporters, redactor, content switch, resource) that :meth:`Pipeline.apply` puts in
force in one assignment: a span ending meanwhile sees the old configuration or the new one,
never half of each. The root processor only sequences: enrich from the context (``_enrich``),
redact (``_redact``), hand to open captures, then to the configured processors. Everything here
is internal; the public functions live in ``_api``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)

from ._enrich import from_context
from ._frameworks import _dedupe
from ._otel_compat import context_var, set_resource, slim_finished
from ._processors import abandon, bounded, closing, exporters_of, retire, stuck
from ._redact import Redactor, redact_span

__all__ = [
    "Capture",
    "Pipeline",
    "PipelineConfig",
    "RootProcessor",
    "SwitchSampler",
    "get_pipeline",
]

logger = logging.getLogger("truefoundry_tracing")

TRACER_NAME = "truefoundry_tracing"


@dataclass(frozen=True)
class PipelineConfig:
    """What the root processor does with spans; built by ``init()``, swapped in whole."""

    delegates: tuple[SpanProcessor, ...] = ()
    exporters: tuple[SpanExporter, ...] = ()
    redactor: Redactor | None = field(default_factory=Redactor)
    trace_content: bool = True
    resource: Resource | None = None
    sample_rate: float = 1.0
    enabled: bool = True
    # The delegates whose on_start does something (a batch processor's does nothing): the
    # root processor calls only these as each span starts.
    starters: tuple[SpanProcessor, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starters = tuple(d for d in self.delegates if _starts(d))
        object.__setattr__(self, "starters", starters)


def _starts(processor: SpanProcessor) -> bool:
    """False when ``processor.on_start`` compiles to what a body of ``pass`` does (as
    OpenTelemetry's batch and simple processors' do): calling it would only cost time."""
    code = getattr(getattr(type(processor), "on_start", None), "__code__", None)
    return code is None or code.co_code != _pass.__code__.co_code


def _pass(self: Any, span: Any, parent_context: Any = None) -> None:
    pass


class SwitchSampler(Sampler):
    """A sampler whose rate (or off switch) can change after the provider is built."""

    def __init__(self) -> None:
        self._delegate = ParentBased(ALWAYS_ON)

    @property
    def _delegate(self) -> Sampler:
        return self._current

    @_delegate.setter
    def _delegate(self, sampler: Sampler) -> None:
        self._current = sampler
        # Called for every span: bind the delegate's method to skip a layer of calls.
        self.should_sample = sampler.should_sample  # type: ignore[method-assign]

    def configure(self, rate: float, enabled: bool) -> None:
        if not enabled:
            self._delegate = ALWAYS_OFF
        elif rate >= 1.0:  # same decisions as TraceIdRatioBased(1.0), without the arithmetic
            self._delegate = ParentBased(ALWAYS_ON)
        else:
            self._delegate = ParentBased(TraceIdRatioBased(rate))

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return self._current.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"truefoundry_tracing({self._delegate.get_description()})"


class Capture:
    """Spans finished while a capture is open (a test's ``tfy_spans``, ``capture_spans()``).

    A span is captured when it started after the capture opened and ends before it closes.
    """

    def __init__(self) -> None:
        self.opened_ns = time.time_ns()
        self._spans: list[ReadableSpan] = []
        self._lock = threading.Lock()

    def add(self, span: ReadableSpan) -> None:
        if (span.start_time or 0) >= self.opened_ns:
            with self._lock:
                self._spans.append(span)

    def spans(self) -> list[ReadableSpan]:
        """A snapshot of the captured spans, in the order they ended."""
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        """Forget what was captured so far; later spans are still captured."""
        with self._lock:
            self._spans.clear()
            self.opened_ns = time.time_ns()


class RootProcessor(SpanProcessor):
    """The only processor this library adds to a provider: it sequences the others."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._p = pipeline
        var = context_var(context_api)  # the current context, without two calls around it
        self._current: Callable[[], context_api.Context] = (
            context_api.get_current if var is None else var.get
        )
        self._config: PipelineConfig | None = None
        self._resource: Resource | None = None  # set on each span: the config's, if new

    def _retag(self, config: PipelineConfig) -> Resource | None:
        """The resource spans must be given: a re-``init()``'s new app_name, else None."""
        self._config = config
        p = self._p
        provider = p.provider
        resource = config.resource
        if resource is None or not p.owns_provider or provider is None:
            return None
        return None if resource is provider.resource else resource

    def on_start(self, span: Span, parent_context: context_api.Context | None = None) -> None:
        p = self._p
        config = p.config
        from_context(span, self._current())
        if config is not self._config:
            self._resource = self._retag(config)
        if self._resource is not None:
            set_resource(span, self._resource)  # a new app_name applies to spans started now
        if _dedupe.state.active:
            _dedupe.on_start(span)
        for d in config.starters:
            d.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        p = self._p
        if _dedupe.state.active and _dedupe.drop(span):
            return  # a second record of a call another span records (see _frameworks)
        config = p.config
        try:
            # Lighter while it waits in an export queue (a collector down fills that queue).
            plain = slim_finished(span)
            if config.redactor is not None:
                redact_span(
                    span, config.redactor, drop_content=not config.trace_content, attributes=plain
                )
        except Exception:
            logger.debug("truefoundry_tracing: redaction failed", exc_info=True)
        for capture in p.captures:
            capture.add(span)
        for d in config.delegates:
            try:
                d.on_end(span)
            except Exception:
                logger.debug("truefoundry_tracing: processor failed", exc_info=True)

    def shutdown(self) -> None:
        for d in self._p.config.delegates:
            d.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(d.force_flush(timeout_millis) for d in self._p.config.delegates)


class Pipeline:
    """The process-wide span pipeline (one instance, from :func:`get_pipeline`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.provider: TracerProvider | None = None
        self.owns_provider = False
        self.is_global = False
        self.provider_note = ""
        self.root = RootProcessor(self)
        self.sampler = SwitchSampler()
        self.tracer: trace.Tracer | None = None
        self.captures: tuple[Capture, ...] = ()
        self.config = PipelineConfig()
        # Re-init: threads still delivering what the previous exporters held, with those
        # processors and the function that reports what they lost.
        self.retiring: list[
            tuple[threading.Thread, Sequence[SpanProcessor], Callable[[], None]]
        ] = []
        # flush(): exporter id -> its answer count, when flush's deadline ran out on a request.
        self._stalled: dict[int, int] = {}

    def ensure_provider(self, resource: Resource | None = None) -> TracerProvider:
        """Create (or join) the tracer provider the first time; later calls return it."""
        with self.lock:
            if self.provider is not None:
                return self.provider
            current = trace.get_tracer_provider()
            if isinstance(current, trace.ProxyTracerProvider):
                provider = TracerProvider(
                    resource=resource or Resource.create({}), sampler=self.sampler
                )
                trace.set_tracer_provider(provider)
                self.is_global = trace.get_tracer_provider() is provider
                self.owns_provider = True
                self.provider_note = (
                    "truefoundry_tracing set the global OpenTelemetry tracer provider"
                    if self.is_global
                    else "another tracer provider was set at the same time; "
                    "truefoundry_tracing uses its own for its decorators and instrumentations"
                )
            elif isinstance(current, TracerProvider):
                provider = current
                self.owns_provider = False
                self.is_global = True
                self.provider_note = (
                    "joined the OpenTelemetry SDK tracer provider that was already set; its "
                    "resource and sampler stay in force (app_name and sample_rate do not apply)"
                )
                logger.info("truefoundry_tracing: %s.", self.provider_note)
            else:
                provider = TracerProvider(
                    resource=resource or Resource.create({}), sampler=self.sampler
                )
                self.owns_provider = True
                self.is_global = False
                self.provider_note = (
                    f"the global tracer provider is a {type(current).__name__} set before "
                    "init(); truefoundry_tracing traces its decorators and the libraries it "
                    "instruments with its own provider, but spans of other OpenTelemetry "
                    "code go to that provider"
                )
                logger.warning("truefoundry_tracing: %s.", self.provider_note)
            provider.add_span_processor(self.root)
            self.provider = provider
            self.tracer = provider.get_tracer(TRACER_NAME)
            return provider

    def add_capture(self, capture: Capture) -> None:
        with self.lock:
            self.ensure_provider()
            self.captures = (*self.captures, capture)

    def remove_capture(self, capture: Capture) -> None:
        with self.lock:
            self.captures = tuple(c for c in self.captures if c is not capture)

    @property
    def exporters(self) -> tuple[SpanExporter, ...]:
        """The exporters of the configuration in force."""
        return self.config.exporters

    def apply(
        self,
        config: PipelineConfig,
        timeout: float,
        on_retired: Callable[[Sequence[SpanProcessor]], None] | None = None,
    ) -> None:
        """Put ``config`` in force in one step; retire the old processors in background.

        The old ones get ``timeout`` to deliver what they hold; ``on_retired(old)`` is called
        when they are done. A ``shutdown()`` meanwhile waits for them within its own deadline.
        """
        with self.lock:
            old = self.config.delegates
            self.sampler.configure(config.sample_rate, config.enabled)
            self.config = config
            self._stalled = {}
        kept = set(map(id, config.delegates))
        old = tuple(d for d in old if id(d) not in kept)
        if not old:
            return

        reported = threading.Event()

        def finish() -> None:
            if not reported.is_set():
                reported.set()
                if on_retired is not None:
                    on_retired(old)

        def run() -> None:
            closing(exporters_of(old))
            done = bounded(lambda: retire(old, timeout), exporters_of(old), timeout)
            if not done:
                abandon(old)
            finish()

        worker = threading.Thread(target=run, name="tfy-tracing-retire", daemon=True)
        with self.lock:
            self.retiring = [r for r in self.retiring if r[0].is_alive()]
            self.retiring.append((worker, old, finish))
        worker.start()

    def restore(self, config: PipelineConfig | None) -> None:
        """Put back a configuration taken by ``_state.snapshot()`` (a fresh one for None).

        Processors that configuration does not have are shut down before this returns, and
        those a re-``init()`` is still retiring in the background stop where they are: what
        they lost is reported now, not in the middle of whatever runs next (the next test).
        """
        config = config if config is not None else PipelineConfig()
        with self.lock:
            current = self.config.delegates
            self.sampler.configure(config.sample_rate, config.enabled)
            self.config = config
            retiring, self.retiring = self.retiring, []
        kept = set(map(id, config.delegates))
        stale = [d for d in current if id(d) not in kept]
        if stale:
            retire(stale, 2.0)
        for worker, processors, finish in retiring:
            if worker.is_alive():
                abandon(processors)
                finish()

    def flush(self, timeout: float) -> bool:
        """Export what has ended; True only when every span handed over was accepted."""
        exporters = list(self.config.exporters)
        done = bounded(lambda: self.root.force_flush(int(timeout * 1000)), exporters, timeout)
        if not done:
            # Remember which request the deadline ran out on: if it is still unanswered when
            # shutdown() comes, shutdown gives up at once instead of waiting a second time.
            self._stalled = {id(e): getattr(e, "answers", 0) for e in exporters if stuck(e)}
        settled = [getattr(e, "settled", None) for e in exporters]
        return all([done, *(check() for check in settled if check is not None)])

    def after_fork(self) -> None:
        """In a forked child: forget exporter state copied from the parent (never resend it)."""
        self.lock = threading.RLock()
        self.retiring = []
        self._stalled = {}
        inline = [getattr(d, "span_exporter", None) for d in self.config.delegates]
        for exp in [*self.config.exporters, *inline]:
            reset = getattr(exp, "reset_after_fork", None)
            if reset is not None:
                reset()

    def shutdown(self, timeout: float) -> bool:
        """Deliver within one deadline, ``timeout`` from now, shared with the processors
        being retired by a re-``init()``; count what could not be delivered."""
        deadline = time.monotonic() + timeout
        with self.lock:
            config = self.config
            old, exporters = config.delegates, list(config.exporters)
            self.config = PipelineConfig(
                redactor=config.redactor,
                trace_content=config.trace_content,
                resource=config.resource,
                sample_rate=config.sample_rate,
                enabled=config.enabled,
            )
            retiring, self.retiring = self.retiring, []
            stalled, self._stalled = self._stalled, {}
        closing(exporters)
        if stalled and all(
            getattr(e, "answers", 0) == stalled.get(id(e)) for e in exporters if stuck(e)
        ):
            timeout = 0.0  # flush() already waited out this deadline on the same request
        done = bounded(lambda: retire(old, timeout), exporters, timeout)
        if not done:
            abandon(old)
        late = False
        for worker, processors, finish in retiring:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():  # out of time: count what the old destination did not get
                late = True
                abandon(processors)
                finish()
        return done and not late


_PIPELINE = Pipeline()


def get_pipeline() -> Pipeline:
    """The process-wide pipeline."""
    return _PIPELINE
