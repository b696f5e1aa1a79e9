"""The span exporters ``init()`` builds: OTLP/HTTP to TrueFoundry, and the console tree.

The OTLP exporter encodes with OpenTelemetry's own protobuf encoder and posts with
``requests`` (so proxy variables work). It differs from the stock exporter where users felt the
difference:

- it explains each failure once, with the fix, instead of once per batch, and says when an
  outage cleared (``status()`` keeps the record: retries, last error, when it cleared);
- it honours ``Retry-After`` and keeps spans from an outage, encoded, in a retry buffer bounded
  by spans and by bytes, and sends them when the collector is back;
- each request may take the request timeout (``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT``, default
  10 s), separate from the ``flush()``/``shutdown()`` deadline; a request that got no answer is
  *unconfirmed* (it may have arrived), never counted as dropped;
- under a deadline, a collector that refuses the connection (or whose name does not resolve)
  costs one attempt, so a script exits at once when nothing listens;
- it counts what it had to drop, with the cause.

Delivery is at least once: a span is sent again only after an attempt that got no usable
answer, which is when a receiver that stored it may see it twice.
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

__all__ = ["ConsoleTreeExporter", "ExportStats", "OTLPExporter", "preload", "request_timeout"]

logger = logging.getLogger("truefoundry_tracing")

# The retry buffer: at most this many spans, and this many bytes of encoded requests. Spans are
# kept encoded (a few hundred bytes each, against several KB as Python objects), so an outage
# costs little memory however long it lasts; past either bound the oldest spans go first.
MAX_PENDING = 2048
MAX_PENDING_BYTES = 2 * 1024 * 1024
# Held chunks are sent together up to these sizes (an OTLP request's serialized form can be
# concatenated: its only field is a repeated one).
MAX_REQUEST_SPANS = 512
MAX_REQUEST_BYTES = 1024 * 1024
_BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_REQUEST_TIMEOUT = 10.0  # OpenTelemetry's own default for OTLP exporters
_TIMEOUT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
# Failures that are instant and mean "nothing can be sent there now": under a deadline they
# are not retried, so an app whose collector is gone exits at once.
_UNREACHABLE = frozenset({"refused", "dns"})
_DEADLINE_CAUSE = (
    "the flush/shutdown deadline passed before they could be sent (raise TFY_TRACING_TIMEOUT "
    "to wait longer)."
)
_BUFFER_CAUSE = (
    f"the retry buffer was full ({MAX_PENDING} spans or {MAX_PENDING_BYTES // 1024 // 1024} MB) "
    "during a long outage."
)


def request_timeout(env: Mapping[str, str] | None = None) -> float:
    """Seconds one export request may take: ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT``, else
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, else 10 s.

    Read as seconds, as OpenTelemetry's Python exporters do. A value that is not a positive
    number is ignored with one warning (it never stops the app).

    Example:
        >>> request_timeout({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "30"})
        30.0
        >>> request_timeout({})
        10.0
    """
    environ = os.environ if env is None else env
    for name in _TIMEOUT_VARS:
        raw = (environ.get(name) or "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value > 0 and value == value and value != float("inf"):
            return value
        logger.warning(
            "truefoundry_tracing: %s=%r is not a positive number of seconds; using %g s. "
            "Set it to a number such as 10, or unset it.",
            name,
            raw[:40],
            DEFAULT_REQUEST_TIMEOUT,
        )
        return DEFAULT_REQUEST_TIMEOUT
    return DEFAULT_REQUEST_TIMEOUT


_preloaded = threading.Event()
_preload_started = False


def _preload_modules() -> None:
    try:
        import requests  # noqa: F401
        from opentelemetry.exporter.otlp.proto.common import trace_encoder  # noqa: F401
    except Exception:  # the export path imports them again and reports a real problem there
        logger.debug("truefoundry_tracing: preloading the exporter failed", exc_info=True)
    finally:
        _preloaded.set()


def preload() -> None:
    """Import what the exporter needs (``requests``, the OTLP encoder) on a background thread.

    Called by ``init()``: a short script then never pays those imports at exit, and the app's
    thread never pays them at all.
    """
    global _preload_started
    if _preload_started:
        return
    _preload_started = True
    if "requests" in sys.modules and (
        "opentelemetry.exporter.otlp.proto.common.trace_encoder" in sys.modules
    ):
        _preloaded.set()
        return
    if hasattr(os, "register_at_fork"):
        # A child forked mid-import would inherit a module lock held by a thread it does not
        # have, and hang at its first export: forking waits for the imports (once, ~0.2 s).
        os.register_at_fork(before=_wait_for_preload)
    thread = threading.Thread(target=_preload_modules, name="tfy-tracing-preload", daemon=True)
    thread.start()


def _wait_for_preload() -> None:
    _preloaded.wait(10.0)


@dataclass
class ExportStats:
    """Counters shared by the exporter and the status object (read them, don't write).

    ``unconfirmed`` spans were sent and got no answer (they may have arrived); ``retried``
    counts spans sent again after an attempt that failed or went unanswered; ``last_error``
    is the latest failure (what happened and the fix), ``last_error_at`` its time and
    ``cleared_at`` when the next export succeeded (``time.time()`` seconds); ``drop_cause``
    says why the latest spans were dropped.
    """

    exported: int = 0
    dropped: int = 0
    pending: int = 0
    unconfirmed: int = 0
    retried: int = 0
    failed_requests: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    cleared_at: float | None = None
    drop_cause: str | None = None
    causes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def drop(self, n: int, cause: str | None) -> None:
        """Count ``n`` spans as dropped because of ``cause`` (a sentence)."""
        if n <= 0:
            return
        with self.lock:
            self.dropped += n
            if cause:
                self.drop_cause = cause


@dataclass(eq=False)  # held chunks are told apart by identity, never by content
class _Chunk:
    """Spans encoded as one request body, kept until the collector confirms them."""

    body: bytes
    count: int
    attempts: int = 0
    sent_before: int = 0  # spans of it an earlier request carried (a resend is a retry)
    unconfirmed: int = 0  # spans of it a request carried without an answer (may have arrived)

    def joins(self, other: _Chunk) -> bool:
        """True when ``other`` fits in the same request."""
        return (
            self.count + other.count <= MAX_REQUEST_SPANS
            and len(self.body) + len(other.body) <= MAX_REQUEST_BYTES
        )


class OTLPExporter(SpanExporter):
    """OTLP/HTTP protobuf exporter with a bounded retry buffer and one warning per cause.

    ``timeout`` is the flush/shutdown deadline (``init(timeout=)``); each request may take
    ``request_timeout`` seconds (default: :func:`request_timeout`).
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        hints: Hints,
        stats: ExportStats | None = None,
        request_timeout: float | None = None,
    ) -> None:
        import dataclasses

        self.url = url
        self._headers = dict(headers)
        self._timeout = timeout
        self._request_timeout = request_timeout or DEFAULT_REQUEST_TIMEOUT
        if hints.timeout is None:
            hints = dataclasses.replace(
                hints,
                timeout=self._request_timeout,
                timeout_source="OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (seconds per request)",
            )
        self._hints = hints
        self.stats = stats or ExportStats()
        self._buffer: list[_Chunk] = []
        self._overflowed = False  # the buffer let spans go during the current outage
        self._buffered_spans = 0
        self._buffered_bytes = 0
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._failing = False
        self._failing_since = 0.0
        self._outage_failures = 0
        self._last_advice: str | None = None
        self._deadline: float | None = None
        self._closing = False
        self._shutdown = False
        self._abandoned = False
        self._in_flight: _Chunk | None = None
        self._session: Any = None
        self._pid = 0
        # After a retryable failure nothing is sent before this time (``time.monotonic()``);
        # a timer then sends what is pending, so an outage heals without new spans.
        self._not_before = 0.0
        self._failures = 0
        self._timer: threading.Timer | None = None
        # Requests that got an outcome so far: lets the pipeline see whether one is stuck.
        self.answers = 0
        self._last_code = ""
        self._last_attempt = 0.0
        self._mark = (0, 0)

    # ---- state the pipeline reads ------------------------------------------------------------

    def closing(self) -> None:
        """Shutdown has begun: a failure from now on is reported by the exit line alone
        (a warning that spans "are kept and retried" would be untrue a moment later)."""
        self._closing = True

    def set_deadline(self, deadline: float | None) -> None:
        """Make exports give up at ``deadline`` (``time.monotonic()``), or None to lift it."""
        self._deadline = deadline

    @property
    def in_flight(self) -> bool:
        """True while a request is waiting for the collector's answer."""
        return self._in_flight is not None

    def settled(self) -> bool:
        """True when nothing is held or in flight and no span was lost since the last call."""
        with self.stats.lock:
            mark = (self.stats.dropped, self.stats.unconfirmed)
        ok = (
            not self._buffer
            and self._in_flight is None
            and mark[0] == self._mark[0]
            and mark[1] <= self._mark[1]
        )
        self._mark = mark
        return ok

    # ---- sending -----------------------------------------------------------------------------

    def _get_session(self) -> Any:
        pid = os.getpid()
        if self._session is None or self._pid != pid:  # a forked child gets its own sockets
            import requests

            self._session = requests.Session()
            self._pid = pid
        return self._session

    def _encode(self, spans: Sequence[ReadableSpan]) -> _Chunk | None:
        try:
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

            return _Chunk(encode_spans(spans).SerializeToString(), len(spans))
        except Exception as exc:  # a span the encoder cannot take must not stop the others
            logger.debug("truefoundry_tracing: encoding spans failed", exc_info=True)
            self.stats.drop(
                len(spans), f"OpenTelemetry's encoder could not encode them ({type(exc).__name__})."
            )
            return None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            if not self._abandoned:
                self.stats.drop(len(spans), "they ended after shutdown() had run.")
            return SpanExportResult.FAILURE
        if spans and self._overflowed and self._not_before > time.monotonic():
            # Still waiting out a backoff with a full buffer: these would only push others
            # out, so give up on them before paying for their encoding.
            self.stats.drop(len(spans), _BUFFER_CAUSE)
            return SpanExportResult.FAILURE
        chunk = self._encode(spans) if spans else None
        with self._lock:
            if chunk is not None:
                self._push(chunk)
            if not self._buffer:
                return SpanExportResult.SUCCESS
            wait = self._not_before - time.monotonic()
            if wait > 0:
                deadline = self._deadline
                if deadline is None or time.monotonic() + wait >= deadline - 0.05:
                    return SpanExportResult.FAILURE  # the collector asked for a pause: kept
                time.sleep(wait)  # flush/shutdown: the pause ends within their deadline
            return self._drain()

    def _push(self, chunk: _Chunk) -> None:
        """Hold ``chunk`` until confirmed (lock held); past the bounds the oldest spans go."""
        self._buffer.append(chunk)
        self._buffered_spans += chunk.count
        self._buffered_bytes += len(chunk.body)
        while len(self._buffer) > 1 and (
            self._buffered_spans > MAX_PENDING or self._buffered_bytes > MAX_PENDING_BYTES
        ):
            self._forget(self._buffer[0], _BUFFER_CAUSE)
            self._overflowed = True
        self.stats.pending = self._buffered_spans

    def _forget(self, chunk: _Chunk, cause: str | None) -> None:
        """Take ``chunk`` out of the buffer without delivery (lock held).

        Spans a request already carried without an answer stay unconfirmed (they may have
        arrived); the others are dropped because of ``cause``.
        """
        self._buffer.remove(chunk)
        self._buffered_spans -= chunk.count
        self._buffered_bytes -= len(chunk.body)
        self.stats.pending = self._buffered_spans
        self.stats.drop(chunk.count - chunk.unconfirmed, cause)

    def _drain(self) -> SpanExportResult:
        """Send held chunks, oldest first, until one fails (lock held)."""
        result = SpanExportResult.SUCCESS
        while self._buffer:
            chunk = self._coalesce()
            verdict = self._send(chunk)
            if self._abandoned:
                return (
                    SpanExportResult.SUCCESS if verdict and verdict.ok else SpanExportResult.FAILURE
                )
            if verdict is None:  # the deadline came first: kept
                return SpanExportResult.FAILURE
            if verdict.ok:
                if self._failing:  # before the counts move: whoever sees them sees this too
                    self._recovered()
                self._buffer.pop(0)
                self._buffered_spans -= chunk.count
                self._buffered_bytes -= len(chunk.body)
                self.stats.pending = self._buffered_spans
                with self.stats.lock:
                    self.stats.exported += chunk.count
                    self.stats.unconfirmed -= chunk.unconfirmed
                self._failures = 0
                self._not_before = 0.0
                self._overflowed = False
                continue
            if verdict.retryable and not self._shutdown:
                delay = self._backoff(verdict)
                self._failures += 1
                self._not_before = time.monotonic() + delay
                self._schedule_retry(delay)
                return SpanExportResult.FAILURE
            if not verdict.retryable:
                self._forget(chunk, verdict.advice)
                result = SpanExportResult.FAILURE
                continue
            return SpanExportResult.FAILURE  # shutting down: shutdown() counts what is left
        return result

    def _coalesce(self) -> _Chunk:
        """Merge the oldest held chunks that fit in one request into the first (lock held)."""
        first = self._buffer[0]
        while len(self._buffer) > 1 and first.joins(self._buffer[1]):
            nxt = self._buffer.pop(1)
            first.body += nxt.body
            first.count += nxt.count
            first.sent_before += nxt.sent_before
            first.unconfirmed += nxt.unconfirmed
            first.attempts = max(first.attempts, nxt.attempts)
        return first

    def _send(self, chunk: _Chunk) -> Verdict | None:
        """Send one chunk: once in the background, retried within a flush/shutdown deadline.

        Returns None when the deadline passed before an attempt could start.
        """
        while True:
            deadline = self._deadline
            if deadline is not None and deadline - time.monotonic() <= 0.05 and chunk.attempts:
                return None
            if chunk.sent_before:
                self.stats.add("retried", chunk.sent_before)
            chunk.attempts += 1
            chunk.sent_before = chunk.count
            self._in_flight = chunk
            try:
                verdict = post(
                    self._get_session(),
                    self.url,
                    chunk.body,
                    self._headers,
                    self._request_timeout,
                    self._hints,
                )
            finally:
                self._in_flight = None
            self.answers += 1
            self._last_code, self._last_attempt = verdict.code, time.monotonic()
            if verdict.ok or self._abandoned:  # abandoned: shutdown already counted these
                return verdict
            if verdict.code == "timeout":
                self.stats.add("unconfirmed", chunk.count - chunk.unconfirmed)
                chunk.unconfirmed = chunk.count
            self._failed(verdict)
            if not verdict.retryable or self._shutdown or self._abandoned:
                return verdict
            deadline = self._deadline
            if deadline is None or verdict.code in _UNREACHABLE:
                return verdict  # background: the retry timer paces; unreachable: no waiting
            delay = self._backoff(verdict)
            if time.monotonic() + delay >= deadline - 0.05:
                return verdict
            self._failures += 1
            time.sleep(delay)

    def _failed(self, verdict: Verdict) -> None:
        """Record a failed attempt; warn once per cause.

        The warning goes out before the counts move: whoever sees the failure counted sees it.
        """
        if verdict.code not in self._warned and not self._closing:
            self._warned.add(verdict.code)
            logger.warning("truefoundry_tracing: %s", verdict.message)
        with self.stats.lock:
            self.stats.failed_requests += 1
            self.stats.causes[verdict.code] = self.stats.causes.get(verdict.code, 0) + 1
            self.stats.last_error = verdict.advice
            self.stats.last_error_at = time.time()
            self.stats.cleared_at = None
        self._last_advice = verdict.advice
        if not self._failing:
            self._failing = True
            self._failing_since = time.monotonic()
            self._outage_failures = 0
        self._outage_failures += 1

    def _recovered(self) -> None:
        lasted = time.monotonic() - self._failing_since
        with self.stats.lock:
            self.stats.cleared_at = time.time()
            last = self.stats.last_error or "-"
        logger.info(
            "truefoundry_tracing: export to %s recovered after %.1f s and %d failed "
            "attempt(s); the spans kept meanwhile were sent. Last error: %s",
            self.url,
            lasted,
            self._outage_failures,
            last,
        )
        self._failing = False
        self._warned.clear()

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
        if self._shutdown or not self._buffer:
            return
        try:
            self.export([])
        except Exception:  # a background retry must never raise into a thread's excepthook
            logger.debug("truefoundry_tracing: retrying the export failed", exc_info=True)

    def _backoff(self, verdict: Verdict) -> float:
        """Seconds to wait before the next attempt: Retry-After, else exponential backoff."""
        if verdict.retry_after is not None:
            return verdict.retry_after
        return _BACKOFF[min(self._failures, len(_BACKOFF) - 1)]

    def _cancel_retry(self) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()

    # ---- ending --------------------------------------------------------------------------------

    def abandon(self, queued: int = 0) -> int:
        """Give up on delivery when shutdown's time is up while an export is still blocked.

        The spans of the request in flight become unconfirmed (they may have arrived); the
        ones held and the ``queued`` ones are dropped. Whatever that export or a later one does
        afterwards is no longer counted. Returns how many spans were dropped.
        """
        self._shutdown = True
        self._cancel_retry()
        if self._abandoned:
            return 0
        self._abandoned = True
        in_flight = self._in_flight
        held, self._buffer = self._buffer, []
        self._buffered_spans = self._buffered_bytes = 0
        lost = queued
        sent = 0
        for chunk in held:
            if chunk is in_flight:
                sent += chunk.count - chunk.unconfirmed
            else:
                lost += chunk.count - chunk.unconfirmed
        with self.stats.lock:
            self.stats.unconfirmed += sent
            self.stats.pending = 0
        self.stats.drop(lost, _DEADLINE_CAUSE)
        return lost

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def reset_after_fork(self) -> None:
        """In a forked child: drop the parent's retry buffer (the parent sends it) and socket."""
        self._lock = threading.Lock()
        self._buffer = []
        self._buffered_spans = self._buffered_bytes = 0
        self._in_flight = None
        self._session = None
        self._timer = None  # the parent's timer thread does not exist here
        self.stats.pending = 0

    def shutdown(self, timeout_millis: float = 30000) -> None:
        """Send what is still held, one more try within the deadline, then stop."""
        own = time.monotonic() + max(0.0, timeout_millis / 1000)
        refused_just_now = (
            self._last_code in _UNREACHABLE and time.monotonic() - self._last_attempt < 1.0
        )
        if self._buffer and not self._shutdown and not refused_just_now:
            if self._deadline is None or own < self._deadline:
                self.set_deadline(own)
            self._not_before = 0.0  # at the end, one more attempt beats waiting out a backoff
            self.export([])
        self._shutdown = True
        self._cancel_retry()
        if self._buffer and not self._abandoned:
            with self._lock:
                for chunk in list(self._buffer):
                    self._forget(chunk, self._last_advice or _DEADLINE_CAUSE)
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
