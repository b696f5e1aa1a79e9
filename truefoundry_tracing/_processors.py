"""Span processors: how each destination receives spans, and how they are retired.

Background batches for network export, OpenTelemetry's simple processor for an app's own
exporter under ``disable_batch`` and for the console tree, and the bounded shutdown and
flush of a set of processors (``bounded``) with the count of what a timed-out one left
behind (``abandon``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from ._otel_compat import QUEUE_FULL_LOGGER, batch_parts, batch_shutdown

__all__ = [
    "abandon",
    "bounded",
    "closing",
    "exporter_of",
    "exporters_of",
    "local_processor",
    "make_processor",
    "retire",
    "stuck",
    "user_processor",
]

logger = logging.getLogger("truefoundry_tracing")


def closing(exporters: Sequence[Any]) -> None:
    for exp in exporters:
        closing = getattr(exp, "closing", None)
        if closing is not None:
            closing()


def stuck(exporter: Any) -> bool:
    return bool(getattr(exporter, "in_flight", False))


def exporter_of(proc: Any) -> Any:
    """The exporter behind one of our processors (batch or simple), or None."""
    return batch_parts(proc)[0]


def exporters_of(processors: Sequence[SpanProcessor]) -> list[SpanExporter]:
    return [e for e in map(exporter_of, processors) if e is not None]


def abandon(processors: Sequence[SpanProcessor]) -> None:
    """Count what a timed-out shutdown left queued (dropped) or in flight (unconfirmed)."""
    for proc in processors:
        exporter, queue = batch_parts(proc)
        give_up = getattr(exporter, "abandon", None)
        if give_up is None:
            continue
        if queue is None:
            queue = getattr(proc, "queue", ())
        try:
            queued = len(queue)
        except TypeError:
            queued = 0
        give_up(queued)


def retire(processors: Sequence[SpanProcessor], timeout: float) -> bool:
    for proc in processors:
        try:
            bounded_shutdown = batch_shutdown(proc)
            if bounded_shutdown is not None:
                bounded_shutdown(int(timeout * 1000))  # the public shutdown() waits 30 s
            else:
                proc.shutdown()
        except Exception:
            logger.debug("truefoundry_tracing: shutdown of a processor failed", exc_info=True)
    return True


def bounded(work: Callable[[], bool], exporters: list[SpanExporter], timeout: float) -> bool:
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


def _quiet_queue_full() -> None:
    """Raise that logger to ERROR, unless the app has set its level itself."""
    queue_logger = logging.getLogger(QUEUE_FULL_LOGGER)
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
