"""The span pipeline: one tracer provider, one root processor, swappable delegates.

OpenTelemetry lets the global tracer provider be set once per process, so ``init()`` installs a
single :class:`RootProcessor` on it and re-``init()`` swaps what the root delegates to (the
exporters) instead of stacking processors. The root also does, for every span of the provider:
the traceloop context enrichment (workflow name, entity path, association properties), the
redaction of secrets (and of content when ``trace_content=False``), and the hand-off to test
captures. Everything here is internal; the public functions live in ``_api``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)

from . import _enrich
from ._context import AGENT_KEY, ASSOCIATION_KEY, CONVERSATION_KEY, ENTITY_PATH_KEY, WORKFLOW_KEY
from ._frameworks import _dedupe
from ._redact import Redactor, is_content_event

__all__ = ["Capture", "Pipeline", "RootProcessor", "SwitchSampler", "get_pipeline"]

logger = logging.getLogger("truefoundry_tracing")

_ATTR_WORKFLOW = "traceloop.workflow.name"
_ATTR_PATH = "traceloop.entity.path"
_ATTR_ASSOC = "traceloop.association.properties."
_ATTR_AGENT = "gen_ai.agent.name"
_ATTR_CONVERSATION = "gen_ai.conversation.id"
# Context keys traceloop's ``set_prompt``/prompt registry set; recorded on LLM spans only.
_PROMPT_MARKER = "managed_prompt"
_PROMPT_KEYS = (
    ("managed_prompt", "traceloop.prompt.managed"),
    ("prompt_key", "traceloop.prompt.key"),
    ("prompt_version", "traceloop.prompt.version"),
    ("prompt_version_name", "traceloop.prompt.version_name"),
    ("prompt_version_hash", "traceloop.prompt.version_hash"),
    ("prompt_template", "traceloop.prompt.template"),
)
_LLM_MARKERS = ("llm.request.type", "gen_ai.operation.name")


@functools.cache
def _prompt_values_as_text() -> bool:
    """traceloop 0.38 records prompt values as they are; later lines as text."""
    try:
        major, minor = importlib.metadata.version("traceloop-sdk").split(".")[:2]
        return (int(major), int(minor)) > (0, 38)
    except Exception:
        return True


def _record_prompt(span: Span, ctx: Any) -> None:
    """What ``Traceloop.set_prompt`` put in the context, on the LLM span starting now."""
    attrs: Any = span._attributes
    if not attrs or not any(m in attrs for m in _LLM_MARKERS):
        return
    as_text = _prompt_values_as_text()
    for key, attr in _PROMPT_KEYS:
        value = ctx.get(key)
        if value is not None:
            span.set_attribute(attr, str(value) if as_text else value)
    variables = ctx.get("prompt_template_variables")
    if isinstance(variables, dict):
        for name, value in variables.items():
            span.set_attribute(f"traceloop.prompt.template_variables.{name}", value)


TRACER_NAME = "truefoundry_tracing"


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
    """The only processor this library adds to a provider; everything hangs off it."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._p = pipeline
        self.delegates: tuple[SpanProcessor, ...] = ()

    def on_start(self, span: Span, parent_context: context_api.Context | None = None) -> None:
        ctx: Any = context_api.get_current()
        own: Any = span._attributes  # our decorators set their own workflow name and path
        workflow = ctx.get(WORKFLOW_KEY)
        if workflow is not None and _ATTR_WORKFLOW not in own:
            span.set_attribute(_ATTR_WORKFLOW, workflow)
        path = ctx.get(ENTITY_PATH_KEY)
        if path is not None and _ATTR_PATH not in own:
            span.set_attribute(_ATTR_PATH, path)
        agent = ctx.get(AGENT_KEY)
        if agent is not None and _ATTR_AGENT not in own:
            span.set_attribute(_ATTR_AGENT, agent)
        conversation = ctx.get(CONVERSATION_KEY)
        if conversation is not None:
            span.set_attribute(_ATTR_CONVERSATION, str(conversation))
        assoc: Any = ctx.get(ASSOCIATION_KEY)
        if assoc and isinstance(assoc, dict):
            for key, value in assoc.items():
                span.set_attribute(_ATTR_ASSOC + key, value)
        if ctx.get(_PROMPT_MARKER) is not None:
            _record_prompt(span, ctx)
        for hook in _enrich.START_HOOKS:
            hook(span, ctx)
        resource = self._p.resource
        if resource is not None and self._p.owns_provider:
            span._resource = resource  # new app_name/resource applies to spans started now
        if _dedupe.state.active:
            _dedupe.on_start(span)
        for d in self.delegates:
            d.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        p = self._p
        if _dedupe.state.active and _dedupe.drop(span):
            return  # a second record of a call another span records (see _frameworks)
        try:
            redactor = p.redactor
            if redactor is not None:
                _redact_span(span, redactor, drop_content=not p.trace_content)
        except Exception:
            logger.debug("truefoundry_tracing: redaction failed", exc_info=True)
        for capture in p.captures:
            capture.add(span)
        for d in self.delegates:
            try:
                d.on_end(span)
            except Exception:
                logger.debug("truefoundry_tracing: processor failed", exc_info=True)

    def shutdown(self) -> None:
        for d in self.delegates:
            d.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(d.force_flush(timeout_millis) for d in self.delegates)


def _redact_span(span: ReadableSpan, redactor: Redactor, *, drop_content: bool) -> None:
    # The plain dict inside BoundedAttributes: iterating the public read-only view costs more
    # than the redaction itself.
    attrs = span._attributes
    plain = getattr(attrs, "_dict", attrs)
    if plain:
        new = redactor.attributes(plain, drop_content=drop_content)
        if new is not None:
            span._attributes = new
    events = span._events
    if events:
        from opentelemetry.sdk.trace import Event

        changed = False
        out = []
        for ev in events:
            if drop_content and is_content_event(ev.name):
                ev_attrs: dict[str, Any] | None = {}
            else:
                ev_attrs = redactor.attributes(ev.attributes or {}, drop_content=drop_content)
            if ev_attrs is None:
                out.append(ev)
            else:
                changed = True
                out.append(Event(ev.name, ev_attrs, ev.timestamp))
        if changed:
            span._events = tuple(out)
    status = span._status
    if status is not None and status.description:
        text = redactor.value("status", status.description)
        if text != status.description:
            from opentelemetry.trace import Status

            span._status = Status(status.status_code, text)


class Pipeline:
    """Process-wide tracing state (one instance, from :func:`get_pipeline`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.provider: TracerProvider | None = None
        self.owns_provider = False
        self.is_global = False
        self.provider_note = ""
        self.root = RootProcessor(self)
        self.sampler = SwitchSampler()
        self.resource: Resource | None = None
        self.tracer: trace.Tracer | None = None
        self.captures: tuple[Capture, ...] = ()
        self.redactor: Redactor | None = Redactor()
        self.trace_content = True
        self.enabled = True
        self.exporters: list[SpanExporter] = []
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

    def swap(
        self,
        delegates: Sequence[SpanProcessor],
        exporters: list[SpanExporter],
        timeout: float,
        on_retired: Callable[[Sequence[SpanProcessor]], None] | None = None,
    ) -> None:
        """Make ``delegates`` receive spans from now on; retire the old ones in background.

        The old ones get ``timeout`` to deliver what they hold; ``on_retired(old)`` is called
        when they are done. A ``shutdown()`` meanwhile waits for them within its own deadline.
        """
        with self.lock:
            old = self.root.delegates
            self.root.delegates = tuple(delegates)
            self.exporters = exporters
            self._stalled = {}
        if not old:
            return

        reported = threading.Event()

        def finish() -> None:
            if not reported.is_set():
                reported.set()
                if on_retired is not None:
                    on_retired(old)

        def retire() -> None:
            _closing(_exporters_of(old))
            done = _bounded(lambda: _retire(old, timeout), _exporters_of(old), timeout)
            if not done:
                _abandon(old)
            finish()

        worker = threading.Thread(target=retire, name="tfy-tracing-retire", daemon=True)
        with self.lock:
            self.retiring = [r for r in self.retiring if r[0].is_alive()]
            self.retiring.append((worker, old, finish))
        worker.start()

    def flush(self, timeout: float) -> bool:
        """Export what has ended; True only when every span handed over was accepted."""
        exporters = list(self.exporters)
        done = _bounded(lambda: self.root.force_flush(int(timeout * 1000)), exporters, timeout)
        if not done:
            # Remember which request the deadline ran out on: if it is still unanswered when
            # shutdown() comes, shutdown gives up at once instead of waiting a second time.
            self._stalled = {id(e): getattr(e, "answers", 0) for e in exporters if _stuck(e)}
        settled = [getattr(e, "settled", None) for e in exporters]
        return all([done, *(check() for check in settled if check is not None)])

    def after_fork(self) -> None:
        """In a forked child: forget exporter state copied from the parent (never resend it)."""
        self.lock = threading.RLock()
        self.retiring = []
        self._stalled = {}
        inline = [getattr(d, "span_exporter", None) for d in self.root.delegates]
        for exp in [*self.exporters, *inline]:
            reset = getattr(exp, "reset_after_fork", None)
            if reset is not None:
                reset()

    def shutdown(self, timeout: float) -> bool:
        """Deliver within one deadline, ``timeout`` from now, shared with the processors
        being retired by a re-``init()``; count what could not be delivered."""
        deadline = time.monotonic() + timeout
        with self.lock:
            old = self.root.delegates
            exporters = self.exporters
            self.root.delegates = ()
            self.exporters = []
            retiring, self.retiring = self.retiring, []
            stalled, self._stalled = self._stalled, {}
        _closing(exporters)
        if stalled and all(
            getattr(e, "answers", 0) == stalled.get(id(e)) for e in exporters if _stuck(e)
        ):
            timeout = 0.0  # flush() already waited out this deadline on the same request
        done = _bounded(lambda: _retire(old, timeout), exporters, timeout)
        if not done:
            _abandon(old)
        late = False
        for worker, processors, finish in retiring:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():  # out of time: count what the old destination did not get
                late = True
                _abandon(processors)
                finish()
        return done and not late


def _closing(exporters: Sequence[Any]) -> None:
    for exp in exporters:
        closing = getattr(exp, "closing", None)
        if closing is not None:
            closing()


def _stuck(exporter: Any) -> bool:
    return bool(getattr(exporter, "in_flight", False))


def exporter_of(proc: Any) -> Any:
    """The exporter behind one of our processors (batch or simple), or None."""
    inner = getattr(proc, "_batch_processor", proc)
    return getattr(inner, "_exporter", None) or getattr(proc, "span_exporter", None)


def _exporters_of(processors: Sequence[SpanProcessor]) -> list[SpanExporter]:
    return [e for e in map(exporter_of, processors) if e is not None]


def _abandon(processors: Sequence[SpanProcessor]) -> None:
    """Count what a timed-out shutdown left queued (dropped) or in flight (unconfirmed)."""
    for proc in processors:
        inner = getattr(proc, "_batch_processor", proc)
        abandon = getattr(exporter_of(proc), "abandon", None)
        if abandon is None:
            continue
        queue: Any = getattr(inner, "_queue", None)
        if queue is None:
            queue = getattr(proc, "queue", ())
        try:
            queued = len(queue)
        except TypeError:
            queued = 0
        abandon(queued)


def _retire(processors: Sequence[SpanProcessor], timeout: float) -> bool:
    for proc in processors:
        try:
            inner = getattr(proc, "_batch_processor", None)
            if inner is not None and hasattr(inner, "shutdown"):
                inner.shutdown(int(timeout * 1000))  # the public shutdown() waits 30 s
            else:
                proc.shutdown()
        except Exception:
            logger.debug("truefoundry_tracing: shutdown of a processor failed", exc_info=True)
    return True


def _bounded(work: Callable[[], bool], exporters: list[SpanExporter], timeout: float) -> bool:
    """Run ``work`` with every exporter's deadline set, waiting at most ``timeout``."""
    deadline = time.monotonic() + timeout
    # Requests give up a little earlier, leaving the processors time to count what they drop
    # and the caller its answer before the deadline.
    export_deadline = deadline - min(0.2, timeout * 0.05)
    for exp in exporters:
        setter = getattr(exp, "set_deadline", None)
        if setter is not None:
            setter(export_deadline)
    result: list[bool] = []

    def run() -> None:
        try:
            result.append(bool(work()))
        except Exception:
            logger.debug("truefoundry_tracing: flush failed", exc_info=True)
            result.append(False)

    if timeout <= 0:
        # Nothing to wait for: the processors stop where they are (what they hold is counted).
        # Their deadline stays in the past, so nothing new is attempted.
        threading.Thread(target=run, name="tfy-tracing-flush", daemon=True).start()
        return False
    worker = threading.Thread(target=run, name="tfy-tracing-flush", daemon=True)
    worker.start()
    # Wake a little early: a busy machine can be late waking a thread, and the caller was
    # promised an answer within ``timeout``.
    worker.join(max(0.0, deadline - min(0.1, timeout * 0.02) - time.monotonic()))
    for exp in exporters:
        setter = getattr(exp, "set_deadline", None)
        if setter is not None:
            setter(None)
    return bool(result and result[0])


# OpenTelemetry's batch processor logs "Queue full, dropping Span." through this logger for
# every span ended while its queue is full, i.e. on each call while the collector is down. The
# record is deduplicated only after it is built, which doubled the app's time per traced call
# during an outage. Our exporter's own warning names the outage; spans dropped on that full
# queue are not in ``status.dropped``, which counts the exporter's drops only.
_QUEUE_FULL_LOGGER = "opentelemetry.sdk._shared_internal"


def _quiet_queue_full() -> None:
    """Raise that logger to ERROR, unless the app has set its level itself."""
    queue_logger = logging.getLogger(_QUEUE_FULL_LOGGER)
    if queue_logger.level == logging.NOTSET:
        queue_logger.setLevel(logging.ERROR)


def make_processor(exporter: SpanExporter, *, batch: bool) -> SpanProcessor:
    """Background export always; ``batch=False`` sends each span as soon as it ends."""
    _quiet_queue_full()
    if batch:
        return BatchSpanProcessor(exporter)
    return BatchSpanProcessor(exporter, schedule_delay_millis=50, max_export_batch_size=1)


def user_processor(exporter: SpanExporter, *, batch: bool) -> SpanProcessor:
    """The processor for an exporter the app passed to ``init(exporter=...)``.

    With ``disable_batch`` it is OpenTelemetry's simple processor, as under
    ``Traceloop.init``: the exporter has each span when the traced call returns, which test
    suites written against traceloop rely on. Such an exporter is the app's own (an in-memory
    one, usually); the OTLP exporter this library builds never runs on the app's thread.
    """
    if batch:
        return make_processor(exporter, batch=True)
    return SimpleSpanProcessor(exporter)


def local_processor(exporter: SpanExporter) -> SpanProcessor:
    """In-process exporters (console tree) run inline: nothing can block."""
    return SimpleSpanProcessor(exporter)


_PIPELINE = Pipeline()


def get_pipeline() -> Pipeline:
    """The process-wide pipeline."""
    return _PIPELINE
