"""The span exporters ``init()`` builds: OTLP/HTTP to TrueFoundry, and the console tree.

The OTLP exporter encodes with OpenTelemetry's own protobuf encoder and posts with
``requests`` (so proxy variables work). It differs from the stock exporter where users felt the
difference: it explains each failure once, with the fix, instead of once per batch; it honours
``Retry-After``; it keeps spans from a short outage and sends them when the collector is back;
it counts what it had to drop; and every request is bounded by a deadline so ``flush()`` and
``shutdown()`` return on time even when the collector hangs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._model import record_from_readable
from ._render import render_tree
from ._transport import Hints, Verdict, post

__all__ = ["ConsoleTreeExporter", "ExportStats", "OTLPExporter"]

logger = logging.getLogger("truefoundry_tracing")

MAX_PENDING = 2048
_BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class ExportStats:
    """Counters shared by the exporter and the status object (read them, don't write)."""

    exported: int = 0
    dropped: int = 0
    pending: int = 0
    failed_requests: int = 0
    last_error: str | None = None
    causes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


class OTLPExporter(SpanExporter):
    """OTLP/HTTP protobuf exporter with bounded retries and one warning per cause."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        hints: Hints,
        stats: ExportStats | None = None,
    ) -> None:
        self.url = url
        self._headers = dict(headers)
        self._timeout = timeout
        self._hints = hints
        self.stats = stats or ExportStats()
        self._pending: list[ReadableSpan] = []
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._failing = False
        self._deadline: float | None = None
        self._shutdown = False
        self._abandoned = False
        self._in_flight = 0
        self._session: Any = None
        self._pid = 0
        # After a retryable failure nothing is sent before this time (``time.monotonic()``);
        # a timer then sends what is pending, so an outage heals without new spans.
        self._not_before = 0.0
        self._failures = 0
        self._timer: threading.Timer | None = None

    def set_deadline(self, deadline: float | None) -> None:
        """Make exports give up at ``deadline`` (``time.monotonic()``), or None to lift it."""
        self._deadline = deadline

    def _get_session(self) -> Any:
        pid = os.getpid()
        if self._session is None or self._pid != pid:  # a forked child gets its own sockets
            import requests

            self._session = requests.Session()
            self._pid = pid
        return self._session

    def _warn_once(self, verdict: Verdict) -> None:
        with self.stats.lock:
            self.stats.causes[verdict.code] = self.stats.causes.get(verdict.code, 0) + 1
            self.stats.last_error = verdict.message
        if verdict.code not in self._warned:
            self._warned.add(verdict.code)
            logger.warning("truefoundry_tracing: %s", verdict.message)

    def abandon(self, queued: int = 0) -> int:
        """Give up on delivery: count what is in flight, pending and ``queued`` as dropped.

        Called when shutdown's time is up while an export is still blocked on the network.
        Whatever that export or a later one does afterwards is no longer counted.
        """
        self._shutdown = True
        self._cancel_retry()
        if self._abandoned:
            return 0
        self._abandoned = True
        lost = self._in_flight + len(self._pending) + queued
        self._pending = []
        with self.stats.lock:
            self.stats.dropped += lost
            self.stats.pending = 0
        return lost

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            if not self._abandoned:
                self.stats.add("dropped", len(spans))
            return SpanExportResult.FAILURE
        with self._lock:
            batch = self._pending + list(spans)
            self._pending = []
            if not batch:
                return SpanExportResult.SUCCESS
            wait = self._not_before - time.monotonic()
            if wait > 0:
                deadline = self._deadline
                if deadline is None or time.monotonic() + wait >= deadline - 0.05:
                    self._keep(batch)  # the collector asked for a pause: the timer sends them
                    return SpanExportResult.FAILURE
                time.sleep(wait)  # flush/shutdown: the pause ends within their deadline
            self._in_flight = len(batch)
            try:
                verdict = self._send(batch)
            finally:
                self._in_flight = 0
            if self._abandoned:
                return SpanExportResult.SUCCESS if verdict.ok else SpanExportResult.FAILURE
            if verdict.ok:
                self.stats.add("exported", len(batch))
                if self._failing:
                    logger.info("truefoundry_tracing: export to %s recovered.", self.url)
                    self._failing = False
                    self._warned.clear()
                self._failures = 0
                self._not_before = 0.0
                self.stats.pending = 0
                return SpanExportResult.SUCCESS
            self._failing = True
            self.stats.add("failed_requests", 1)
            self._warn_once(verdict)
            if verdict.retryable and not self._shutdown:
                self._keep(batch)
                delay = self._backoff(verdict)
                self._failures += 1
                self._not_before = time.monotonic() + delay
                self._schedule_retry(delay)
            else:
                self.stats.add("dropped", len(batch))
                self.stats.pending = len(self._pending)
            return SpanExportResult.FAILURE

    def _keep(self, batch: list[ReadableSpan]) -> None:
        """Hold ``batch`` for a retry (lock held); beyond the cap the oldest spans are dropped."""
        keep = batch[-MAX_PENDING:]
        self.stats.add("dropped", len(batch) - len(keep))
        self._pending = keep
        self.stats.pending = len(keep)

    def _schedule_retry(self, delay: float) -> None:
        timer = self._timer
        if timer is not None and timer.is_alive():
            timer.cancel()
        timer = threading.Timer(delay, self._retry)
        timer.daemon = True
        timer.name = "tfy-tracing-retry"
        self._timer = timer
        timer.start()

    def _retry(self) -> None:
        if self._shutdown or not self._pending:
            return
        try:
            self.export([])
        except Exception:  # a background retry must never raise into a thread's excepthook
            logger.debug("truefoundry_tracing: retrying the export failed", exc_info=True)

    def _send(self, batch: list[ReadableSpan]) -> Verdict:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        body = encode_spans(batch).SerializeToString()
        own_deadline = time.monotonic() + self._timeout
        while True:
            deadline = own_deadline if self._deadline is None else min(own_deadline, self._deadline)
            remaining = deadline - time.monotonic()
            # Near a flush/shutdown deadline a request cannot finish; the export timeout
            # alone may legitimately be shorter than that margin.
            if remaining <= (0.05 if self._deadline is not None else 0.0):
                return Verdict(
                    "timeout",
                    f"no answer from {self.url} before the flush/shutdown deadline; spans "
                    "still unsent at shutdown are counted as dropped.",
                    retryable=True,
                )
            verdict = post(
                self._get_session(), self.url, body, self._headers, remaining, self._hints
            )
            if verdict.ok or not verdict.retryable or self._shutdown:
                return verdict
            delay = self._backoff(verdict)
            if time.monotonic() + delay >= deadline - 0.05:
                return verdict
            self._failures += 1
            time.sleep(delay)

    def _backoff(self, verdict: Verdict) -> float:
        """Seconds to wait before the next attempt: Retry-After, else exponential backoff."""
        if verdict.retry_after is not None:
            return verdict.retry_after
        return _BACKOFF[min(self._failures, len(_BACKOFF) - 1)]

    def _cancel_retry(self) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def reset_after_fork(self) -> None:
        """In a forked child: drop the parent's retry buffer (the parent sends it) and socket."""
        self._lock = threading.Lock()
        self._pending = []
        self._in_flight = 0
        self._session = None
        self._timer = None  # the parent's timer thread does not exist here
        self.stats.pending = 0

    def shutdown(self, timeout_millis: float = 30000) -> None:
        """Send what is still pending within the time left, then stop."""
        deadline = time.monotonic() + max(0.0, timeout_millis / 1000)
        if self._pending and not self._shutdown:
            self.set_deadline(deadline)
            self.export([])
        self._shutdown = True
        self._cancel_retry()
        if self._pending and not self._abandoned:
            self.stats.add("dropped", len(self._pending))
            self._pending = []
            self.stats.pending = 0
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.close()


def _root_ended(span: ReadableSpan) -> bool:
    parent = span.parent
    return parent is None or parent.is_remote


class ConsoleTreeExporter(SpanExporter):
    """Prints each finished trace as an indented tree once its local root span ends.

    Spans are held in memory per trace until the root ends (bounded: the oldest traces are
    printed early if more than 1,000 are open).
    """

    MAX_OPEN_TRACES = 1000
    MAX_SPANS_PER_TRACE = 5000

    def __init__(self, stream: Callable[[], IO[str]] | None = None) -> None:
        self._stream = stream or (lambda: sys.stderr)
        self._open: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ready: list[list[ReadableSpan]] = []
        with self._lock:
            for span in spans:
                ctx = span.get_span_context()
                trace_id = ctx.trace_id if ctx else 0
                bucket = self._open.setdefault(trace_id, [])
                if len(bucket) < self.MAX_SPANS_PER_TRACE:
                    bucket.append(span)
                if _root_ended(span):
                    ready.append(self._open.pop(trace_id))
            while len(self._open) > self.MAX_OPEN_TRACES:
                ready.append(self._open.popitem(last=False)[1])
        for group in ready:
            self._print(group)
        return SpanExportResult.SUCCESS

    def reset_after_fork(self) -> None:
        """In a forked child: the parent prints the traces it had open, not the child."""
        self._lock = threading.Lock()
        self._open = OrderedDict()

    def _print(self, group: list[ReadableSpan]) -> None:
        try:
            text = render_tree([record_from_readable(s) for s in group])
            stream = self._stream()
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # printing must never break the app
            logger.debug("truefoundry_tracing: could not print a trace", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        with self._lock:
            left = list(self._open.values())
            self._open.clear()
        for group in left:
            self._print(group)
