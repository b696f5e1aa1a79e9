"""A local OTLP/HTTP trace receiver that records exactly what goes over the wire.

:class:`OTLPReceiver` runs on the project's HTTP core (:mod:`._httpd`) and accepts OTLP trace
exports the way an OpenTelemetry collector or TrueFoundry's tracing endpoint does: protobuf or
JSON bodies, optionally gzip- or deflate-compressed, POSTed to ``/v1/traces`` or
``/api/otel/v1/traces``. Every request is kept as a :class:`ReceivedRequest` (headers, raw body,
decoded spans and the status it was answered with), and accepted spans are collected as
:class:`~truefoundry_tracing._model.SpanRecord` objects.

It also plays a misbehaving backend on demand (error statuses, hangs, slow answers, reset
connections, TLS with a private CA) so exporters' reliability can be tested for real. The
tests, the ``tfy_otlp_receiver`` fixture, ``truefoundry-tracing serve`` and the benchmarks all
use this one receiver.

Example:
    >>> import urllib.request
    >>> with OTLPReceiver() as receiver:
    ...     req = urllib.request.Request(
    ...         receiver.url + "/v1/traces",
    ...         data=b"{}",
    ...         headers={"Content-Type": "application/json"},
    ...     )
    ...     with urllib.request.urlopen(req) as resp:
    ...         print(resp.status, resp.read())
    ...     print(receiver.requests[0].status, receiver.spans)
    200 b'{}'
    200 []
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .._model import SpanRecord
from ._httpd import ClientGone, Exchange, HTTPError, HTTPReply, HTTPServer, Serving, url_host
from ._otlp_decode import JSON_TYPE, PROTOBUF_TYPE, decode_export

__all__ = ["HTTPReply", "OTLPReceiver", "ReceivedRequest"]

_log = logging.getLogger(__name__)

_SOCKET_TIMEOUT: Final = 30.0  # per socket operation; also how long an idle keep-alive lives
_JOIN_SECONDS: Final = 2.0  # how long stop() waits for connection threads, all together
_MAX_REASON: Final = 300

_FaultKind = Literal["respond", "hang", "slow", "reset"]


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as the receiver saw it, and how it was answered.

    ``headers`` has lower-cased names (repeated headers are joined with ``", "``); ``body`` is
    the body exactly as it came over the wire (still compressed if the client compressed it);
    ``spans`` holds the decoded spans, or is empty when the body could not be decoded;
    ``status`` is the HTTP status the receiver answered, or ``0`` when it closed the connection
    without an answer (a :meth:`OTLPReceiver.reset_connection` fault, a hang ended by
    :meth:`OTLPReceiver.stop`, or a client that went away); ``reason`` is the short text sent
    with an error answer; ``received_at`` is the arrival time, in seconds since the epoch.

    Example:
        >>> req = ReceivedRequest(
        ...     method="POST", path="/v1/traces", headers={}, content_type="application/json",
        ...     body=b"{}", spans=(), status=200, received_at=0.0,
        ... )
        >>> req.ok
        True
    """

    method: str
    path: str
    headers: dict[str, str]
    content_type: str
    body: bytes
    spans: tuple[SpanRecord, ...]
    status: int
    received_at: float
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the receiver answered with a 2xx status."""
        return 200 <= self.status < 300


@dataclass
class _Fault:
    kind: _FaultKind
    remaining: int | None
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    seconds: float = 0.0


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _check_times(times: int | None) -> int | None:
    if times is not None and times < 1:
        raise ValueError(f"times must be None (until reset_faults()) or at least 1, not {times}")
    return times


def _tls_context(host: str, directory: str) -> tuple[ssl.SSLContext, str]:
    """Make a CA and a server certificate; return the server context and the CA's PEM path."""
    try:
        import trustme
    except ImportError as err:
        raise ImportError(
            "OTLPReceiver(tls=True) needs the 'trustme' package to make its certificates: "
            "pip install trustme"
        ) from err
    names = ["127.0.0.1", "localhost", "::1"]
    if host not in names and host not in ("", "0.0.0.0", "::"):
        names.append(host)
    authority = trustme.CA(organization_name="truefoundry-tracing OTLPReceiver")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert(*names).configure_cert(context)
    cafile = os.path.join(directory, "ca.pem")
    authority.cert_pem.write_to_path(cafile)
    return context, cafile


class _Export:
    """One request to the receiver: routes it, plays faults, records it and answers it."""

    def __init__(self, receiver: OTLPReceiver, exchange: Exchange) -> None:
        self.receiver = receiver
        self.exchange = exchange
        self.request = exchange.request
        self.body = b""
        self.spans: tuple[SpanRecord, ...] = ()

    def handle(self) -> None:
        try:
            self._route()
        except HTTPError as rejection:
            self.reply(rejection.status, rejection.reason, close=rejection.close)
        except ClientGone:
            self.no_answer("the client went away")
        except Exception:
            _log.exception(
                "OTLP receiver: error handling %s %s", self.request.method, self.request.target
            )
            if not self.exchange.answered:
                self.reply(500, "internal receiver error", close=True)

    def _route(self) -> None:
        receiver, request = self.receiver, self.request
        if request.path not in receiver._paths:
            body = self.exchange.discard_body()
            self.body = body or b""
            if body is not None and receiver._other_routes is not None:
                reply = receiver._other_routes(request.method, request.target, request.headers)
                if reply is not None:
                    self.exchange.reply(reply)
                    return
            known = ", ".join(receiver._path_list)
            self.reply(404, f"no OTLP endpoint at {request.path}; POST to {known}")
            return
        if request.method != "POST":
            self.body = self.exchange.discard_body() or b""
            self.reply(405, f"{request.method} not allowed; use POST", headers={"Allow": "POST"})
            return
        self.body = self.exchange.read_body(require_length=True)
        if receiver._authorize is not None:
            refusal = receiver._authorize(request.headers)
            if refusal is not None:
                self.reply(refusal[0], refusal[1])
                return
        fault = receiver._take_fault()
        if fault is not None and not self._apply_fault(fault):
            return
        self._accept()

    def _decode(self) -> tuple[list[SpanRecord], bool]:
        return decode_export(
            self.body,
            self.request.headers.get("content-type", ""),
            self.request.headers.get("content-encoding", ""),
            limit=self.receiver._max_body_bytes,
        )

    def _accept(self) -> None:
        try:
            spans, is_json = self._decode()
        except HTTPError as rejection:
            self.reply(rejection.status, rejection.reason, close=rejection.close)
            return
        self.spans = tuple(spans)
        # An empty ExportTraceServiceResponse: b"" in protobuf, "{}" in JSON.
        self.reply(
            200,
            body=b"{}" if is_json else b"",
            content_type=JSON_TYPE if is_json else PROTOBUF_TYPE,
            accepted=True,
        )

    def _apply_fault(self, fault: _Fault) -> bool:
        """Play a scripted fault; return True when the request should then be handled as usual."""
        receiver = self.receiver
        decoded: tuple[SpanRecord, ...] | None = None
        if fault.kind in ("respond", "reset"):
            try:
                decoded = tuple(self._decode()[0])
            except HTTPError:
                decoded = None
        self.spans = decoded or ()
        if fault.kind == "respond":
            self.reply(
                fault.status,
                "scripted by respond_with()",
                body=fault.body,
                headers=dict(fault.headers),
                accepted=decoded is not None and 200 <= fault.status < 300,
            )
            return False
        if fault.kind == "reset":
            self.no_answer("connection reset by reset_connection()", reset=True)
            return False
        if fault.kind == "slow":
            if receiver._pause(fault.seconds):
                return True
            self.no_answer("the receiver stopped during a slow() delay")
            return False
        outcome = receiver._hang()
        if outcome == "released":
            return True
        self.no_answer(f"hang() ended by {outcome} without an answer")
        return False

    def record(self, status: int, reason: str, *, accepted: bool = False) -> ReceivedRequest:
        request = self.request
        record = ReceivedRequest(
            method=request.method,
            path=request.target,
            headers=dict(request.headers),
            content_type=request.headers.get("content-type", ""),
            body=self.body,
            spans=self.spans,
            status=status,
            received_at=request.received_at or time.time(),
            reason=_short(reason),
        )
        self.receiver._record(record, accepted=accepted)
        return record

    def reply(
        self,
        status: int,
        reason: str = "",
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
        accepted: bool = False,
    ) -> None:
        """Record the request, run the export hook if accepted, then send the answer."""
        if body is None:
            body = (_short(reason) + "\n").encode() if reason else b""
        if (
            body
            and content_type is None
            and not any(k.lower() == "content-type" for k in headers or {})
        ):
            content_type = "text/plain; charset=utf-8"
        record = self.record(status, reason, accepted=accepted)
        if accepted:
            self.receiver._run_hook(record)
        self.exchange.respond(status, body, content_type, headers, close=close)

    def no_answer(self, reason: str, *, reset: bool = False) -> None:
        self.record(0, reason)
        if not self.exchange.answered:
            self.exchange.drop(reset=reset)


class OTLPReceiver(Serving):
    """A local OTLP/HTTP trace endpoint that records every request it gets.

    Start it (or use it as a context manager), point an exporter at :attr:`url` plus one of
    ``paths``, and read back :attr:`requests` and :attr:`spans`. Everything is thread-safe.

    Args:
        host: Interface to bind; ``127.0.0.1`` by default (use ``::1`` for IPv6).
        port: Port to bind; ``0`` picks a free one (read it back from :attr:`port`).
        tls: Serve HTTPS with a certificate signed by a throwaway CA (needs ``trustme``);
            :attr:`cafile` is that CA's PEM, for clients that should trust it.
        max_body_bytes: Largest body accepted, compressed or decompressed (larger: 413).
        on_export: Called with each accepted :class:`ReceivedRequest`, in the server's thread,
            after it is recorded and before the client gets its answer (so a slow hook slows
            the client, like a slow backend). Exceptions are logged, never raised.
        paths: The URL paths that accept trace exports.
        authorize: Called with each trace export's headers (lower-cased names) before its
            body is decoded; return None to go on, or ``(status, reason)`` to refuse it.
        other_routes: Called for requests to any other path with ``(method, target,
            headers)``; an :class:`HTTPReply` it returns is sent as is (and not recorded),
            None gets the usual 404. This is how ``truefoundry-tracing serve`` adds its web
            page on the same port.
        max_recorded: Keep only the newest this-many requests and spans in memory (None: all),
            for long-running use.

    Accepted requests are answered 200 with an empty ``ExportTraceServiceResponse`` in the
    request's format. Refused ones get 404 (unknown path), 405 (not POST), 411 (no length),
    413 (too large), 415 (unsupported content type or encoding) or 400 (undecodable body), with
    a short plain-text reason. The server keeps every request in memory: a long-running user
    should call :meth:`clear` from time to time.

    Example:
        >>> from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        >>> with OTLPReceiver() as receiver:
        ...     provider = TracerProvider()
        ...     exporter = OTLPSpanExporter(endpoint=receiver.url + "/v1/traces")
        ...     provider.add_span_processor(SimpleSpanProcessor(exporter))
        ...     with provider.get_tracer("demo").start_as_current_span("hello"):
        ...         pass
        ...     provider.shutdown()
        ...     [span.name for span in receiver.wait_for_spans(1)]
        ['hello']
    """

    #: The longest a :meth:`hang` holds a request before closing it unanswered, in seconds.
    max_hang_seconds: float = 60.0

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = False,
        max_body_bytes: int = 20 * 1024 * 1024,
        on_export: Callable[[ReceivedRequest], None] | None = None,
        paths: Sequence[str] = ("/v1/traces", "/api/otel/v1/traces"),
        authorize: Callable[[Mapping[str, str]], tuple[int, str] | None] | None = None,
        other_routes: Callable[[str, str, Mapping[str, str]], HTTPReply | None] | None = None,
        max_recorded: int | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, not {max_body_bytes}")
        if isinstance(paths, str):
            paths = (paths,)
        if not paths or any(not p.startswith("/") for p in paths):
            raise ValueError(f"paths must be a non-empty list of paths starting with '/': {paths}")
        self._host = host
        self._requested_port = port
        self._tls = tls
        self._max_body_bytes = max_body_bytes
        if max_recorded is not None and max_recorded < 0:
            raise ValueError(f"max_recorded must be None or at least 0, not {max_recorded}")
        self._on_export = on_export
        self._authorize = authorize
        self._other_routes = other_routes
        self._max_recorded = max_recorded
        self._path_list = tuple(paths)
        self._paths = frozenset(paths)

        self._cond = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._spans: list[SpanRecord] = []
        self._faults: deque[_Fault] = deque()
        self._fault_generation = 0
        self._hanging = 0
        self._stopping = False
        self._server: HTTPServer | None = None
        self._port: int | None = None
        self._tempdir: str | None = None
        self._cafile: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> OTLPReceiver:
        """Bind and start serving in a background thread; return ``self``.

        Starting a running receiver does nothing; a stopped one cannot be started again.

        Example:
            >>> receiver = OTLPReceiver().start()
            >>> receiver.port > 0
            True
            >>> receiver.stop()
        """
        with self._cond:
            if self._stopping:
                raise RuntimeError("this OTLPReceiver was stopped; create a new one")
            if self._server is not None:
                return self
            context: ssl.SSLContext | None = None
            if self._tls:
                self._tempdir = tempfile.mkdtemp(prefix="otlp-receiver-")
                try:
                    context, self._cafile = _tls_context(self._host, self._tempdir)
                except BaseException:
                    self._remove_tempdir()
                    raise
            server = HTTPServer(
                self._handle,
                self._host,
                self._requested_port,
                name="otlp-receiver",
                max_body_bytes=self._max_body_bytes,
                timeout=_SOCKET_TIMEOUT,
                ssl_context=context,
                on_error=self._refuse,
            )
            try:
                server.start()
            except BaseException:
                self._remove_tempdir()
                raise
            self._server = server
            self._port = server.port
        return self

    def stop(self) -> None:
        """Stop serving, promptly: hung and slow requests are dropped unanswered.

        Open connections are shut down and their threads joined for at most a couple of
        seconds. Calling it again does nothing. :attr:`requests` and :attr:`spans` stay
        readable afterwards.

        Example:
            >>> receiver = OTLPReceiver().start()
            >>> receiver.stop()
            >>> receiver.stop()  # harmless
        """
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
            server = self._server
        if server is not None:
            server.stop(_JOIN_SECONDS)
        self._remove_tempdir()

    def __repr__(self) -> str:
        with self._cond:
            state = "stopped" if self._stopping else "running" if self._server else "not started"
            where = f"{self._scheme()}://{self._url_host()}:{self._port}" if self._port else "-"
            return (
                f"<OTLPReceiver {where} {state}: {len(self._requests)} requests, "
                f"{len(self._spans)} spans>"
            )

    # -- where it listens -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43127`` (``https`` with ``tls=True``).

        Append one of ``paths`` to get an exporter endpoint.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     endpoint = receiver.url + "/api/otel/v1/traces"
        """
        return f"{self._scheme()}://{self._url_host()}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the free one picked when constructed with ``port=0``).

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.port > 0
            True
        """
        if self._port is None:
            raise RuntimeError("the OTLPReceiver is not started; call start() first")
        return self._port

    @property
    def cafile(self) -> str | None:
        """Path of the PEM of the CA that signed the TLS certificate; None without ``tls``.

        It exists from :meth:`start` until :meth:`stop`.

        Example:
            >>> import ssl
            >>> with OTLPReceiver(tls=True) as receiver:
            ...     context = ssl.create_default_context(cafile=receiver.cafile)
        """
        return self._cafile

    def _scheme(self) -> str:
        return "https" if self._tls else "http"

    def _url_host(self) -> str:
        return url_host(self._host)

    # -- what arrived -----------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A copy of every request received so far, accepted or not, in arrival order.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.requests
            []
        """
        with self._cond:
            return list(self._requests)

    @property
    def spans(self) -> list[SpanRecord]:
        """A copy of all accepted spans, in arrival order.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.spans
            []
        """
        with self._cond:
            return list(self._spans)

    @property
    def hanging(self) -> int:
        """How many requests a :meth:`hang` fault is holding right now.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.hanging
            0
        """
        with self._cond:
            return self._hanging

    def wait_for_spans(self, count: int, timeout: float = 5.0) -> list[SpanRecord]:
        """Wait until at least ``count`` spans were accepted; return all accepted spans.

        Raises:
            AssertionError: on timeout, saying how many spans arrived (with their names) and
                how the requests were answered.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.wait_for_spans(0)
            []
        """
        with self._cond:
            if self._cond.wait_for(lambda: len(self._spans) >= count, timeout=timeout):
                return list(self._spans)
            names = [span.name for span in self._spans]
            raise AssertionError(
                f"expected at least {count} span(s) at {self._url_for_messages()} within "
                f"{timeout:g}s, but {len(names)} arrived: {names}; {self._summary()}"
            )

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Wait until at least ``count`` requests were recorded (any status); return them all.

        A request is recorded once it is answered (or dropped), so a request held by
        :meth:`hang` shows up only when released.

        Raises:
            AssertionError: on timeout, saying how many arrived and how they were answered.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.wait_for_requests(0)
            []
        """
        with self._cond:
            if self._cond.wait_for(lambda: len(self._requests) >= count, timeout=timeout):
                return list(self._requests)
            raise AssertionError(
                f"expected at least {count} request(s) at {self._url_for_messages()} within "
                f"{timeout:g}s, but {len(self._requests)} arrived; {self._summary()}"
            )

    def clear(self) -> None:
        """Forget the recorded requests and spans (scripted faults stay).

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.clear()
        """
        with self._cond:
            self._requests.clear()
            self._spans.clear()

    def _url_for_messages(self) -> str:
        return f"{self._scheme()}://{self._url_host()}:{self._port}"

    def _summary(self) -> str:
        if not self._requests:
            return "no request reached the receiver"
        parts = []
        for request in self._requests[-10:]:
            text = f"{request.method} {request.path} -> {request.status or 'no answer'}"
            if request.reason:
                text += f" ({request.reason})"
            parts.append(text)
        more = len(self._requests) - len(parts)
        shown = "; ".join(parts)
        return f"requests: {shown}" + (f" (and {more} earlier)" if more > 0 else "")

    # -- scripted faults --------------------------------------------------------------------

    def respond_with(
        self,
        status: int,
        *,
        times: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer trace exports with ``status`` (and ``headers``, ``body``) instead of 200.

        Faults are queued: each applies to the next ``times`` export requests (``None``: all of
        them, until :meth:`reset_faults`), then the next scripted fault takes over. The body
        is still read and decoded into the recorded request's ``spans``.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.respond_with(429, times=2, headers={"Retry-After": "1"})
            ...     receiver.respond_with(503, times=1)
        """
        if not 200 <= status <= 599:
            raise ValueError(f"status must be a final HTTP status (200-599), not {status}")
        self._add_fault(
            _Fault(
                "respond",
                _check_times(times),
                status=status,
                headers=tuple((headers or {}).items()),
                body=bytes(body),
            )
        )

    def hang(self, *, times: int | None = None) -> None:
        """Hold trace exports open without answering.

        A held request is handled normally once :meth:`reset_faults` is called, and dropped
        without an answer by :meth:`stop` or after :attr:`max_hang_seconds`. Watch
        :attr:`hanging` to know a request is being held.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.hang(times=1)
        """
        self._add_fault(_Fault("hang", _check_times(times)))

    def slow(self, seconds: float, *, times: int | None = None) -> None:
        """Wait ``seconds`` before handling trace exports (then answer as usual, 200).

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.slow(0.5, times=1)
        """
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, not {seconds}")
        self._add_fault(_Fault("slow", _check_times(times), seconds=float(seconds)))

    def reset_connection(self, *, times: int | None = None) -> None:
        """Read trace exports, then close the socket with a TCP reset and no HTTP answer.

        Clients see a connection error (reset, or closed without a response).

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.reset_connection(times=1)
        """
        self._add_fault(_Fault("reset", _check_times(times)))

    def reset_faults(self) -> None:
        """Drop every scripted fault and release requests held by :meth:`hang`.

        Example:
            >>> with OTLPReceiver() as receiver:
            ...     receiver.respond_with(500)
            ...     receiver.reset_faults()
        """
        with self._cond:
            self._faults.clear()
            self._fault_generation += 1
            self._cond.notify_all()

    def _add_fault(self, fault: _Fault) -> None:
        with self._cond:
            self._faults.append(fault)

    # -- called from connection threads -----------------------------------------------------

    def _take_fault(self) -> _Fault | None:
        with self._cond:
            if not self._faults:
                return None
            fault = self._faults[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.popleft()
            return fault

    def _hang(self) -> Literal["released", "stop", "timeout"]:
        with self._cond:
            generation = self._fault_generation
            self._hanging += 1
            try:
                self._cond.wait_for(
                    lambda: self._stopping or self._fault_generation != generation,
                    timeout=self.max_hang_seconds,
                )
            finally:
                self._hanging -= 1
            if self._stopping:
                return "stop"
            return "released" if self._fault_generation != generation else "timeout"

    def _pause(self, seconds: float) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)
            return not self._stopping

    def _record(self, request: ReceivedRequest, *, accepted: bool) -> None:
        with self._cond:
            self._requests.append(request)
            if accepted:
                self._spans.extend(request.spans)
            limit = self._max_recorded
            if limit is not None:
                del self._requests[: max(0, len(self._requests) - limit)]
                del self._spans[: max(0, len(self._spans) - limit)]
            self._cond.notify_all()

    def _run_hook(self, request: ReceivedRequest) -> None:
        if self._on_export is None:
            return
        try:
            self._on_export(request)
        except Exception:
            _log.exception("OTLPReceiver on_export hook failed for %s", request.path)

    def _handle(self, exchange: Exchange) -> None:
        _Export(self, exchange).handle()

    def _refuse(self, exchange: Exchange, error: HTTPError) -> None:
        """Record and answer a request too malformed to route."""
        _Export(self, exchange).reply(error.status, error.reason, close=True)

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
