"""A local OTLP/HTTP trace receiver that records exactly what goes over the wire.

:class:`OTLPReceiver` is a small threaded HTTP server (stdlib ``http.server``) that accepts
OTLP trace exports the way an OpenTelemetry collector or TrueFoundry's tracing endpoint does:
protobuf or JSON bodies, optionally gzip- or deflate-compressed, POSTed to ``/v1/traces`` or
``/api/otel/v1/traces``. Every request is kept as a :class:`ReceivedRequest` (headers, raw body,
decoded spans and the status it was answered with), and accepted spans are collected as
:class:`~truefoundry_tracing._model.SpanRecord` objects.

It also plays a misbehaving backend on demand (error statuses, hangs, slow answers, reset
connections, TLS with a private CA) so exporters' reliability can be tested for real.

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

import base64
import contextlib
import json
import logging
import os
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from .._model import SpanRecord, records_from_otlp

__all__ = ["HTTPReply", "OTLPReceiver", "ReceivedRequest"]

_log = logging.getLogger(__name__)

_PROTOBUF_TYPES: Final = frozenset({"application/x-protobuf", "application/protobuf"})
_JSON_TYPE: Final = "application/json"
_SOCKET_TIMEOUT: Final = 30.0  # per socket operation; also how long an idle keep-alive lives
_LINGER_SECONDS: Final = 1.0  # how long to drain an unread body after an early error answer
_JOIN_SECONDS: Final = 2.0  # how long stop() waits for connection threads, all together
_MAX_REASON: Final = 300
_MAX_CHUNK_LINE: Final = 1024

# OTLP/JSON ids are hex strings, while protobuf's JSON mapping expects base64 for bytes fields.
_ID_KEYS: Final = frozenset(
    {"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"}
)
# Accept short enum names ("SERVER", "ERROR") next to ints and full names ("SPAN_KIND_SERVER").
_ENUM_PREFIXES: Final = {"kind": "SPAN_KIND_", "code": "STATUS_CODE_"}

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


@dataclass(frozen=True)
class HTTPReply:
    """An answer to a request outside the trace paths, returned by an ``other_routes`` hook.

    Example:
        >>> HTTPReply(200, b"<h1>traces</h1>", "text/html; charset=utf-8").status
        200
    """

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] | None = None


@dataclass
class _Fault:
    kind: _FaultKind
    remaining: int | None
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    seconds: float = 0.0


class _Reject(Exception):
    """Raised while handling a request to answer it with an error status."""

    def __init__(self, status: int, reason: str, *, close: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.close = close


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _check_times(times: int | None) -> int | None:
    if times is not None and times < 1:
        raise ValueError(f"times must be None (until reset_faults()) or at least 1, not {times}")
    return times


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    wbits_options: tuple[int, ...]
    if coding in ("gzip", "x-gzip"):
        wbits_options = (16 + zlib.MAX_WBITS,)
    elif coding == "deflate":
        # RFC 9110 says zlib-wrapped; some clients send raw deflate.
        wbits_options = (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    else:
        raise _Reject(415, f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")
    error: zlib.error | None = None
    for wbits in wbits_options:
        try:
            return _inflate(body, wbits, limit, multi_member=wbits > zlib.MAX_WBITS)
        except zlib.error as err:
            error = err
    raise _Reject(400, f"invalid {coding} body: {error}")


def _inflate(data: bytes, wbits: int, limit: int, *, multi_member: bool) -> bytes:
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise _Reject(413, f"decompressed body exceeds the {limit}-byte limit")
        if not inflater.eof:
            raise zlib.error("compressed body is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)
        if not multi_member:
            raise zlib.error("trailing bytes after the compressed body")


def _to_proto_json(node: Any) -> Any:
    """Rewrite an OTLP/JSON document into protobuf's JSON mapping (hex ids to base64)."""
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise _Reject(400, f"{key} must be a hex string, got {value!r}") from None
                out[key] = base64.b64encode(raw).decode("ascii")
            elif key in _ENUM_PREFIXES and isinstance(value, str):
                prefix = _ENUM_PREFIXES[key]
                out[key] = value if value.upper().startswith(prefix) else prefix + value.upper()
            else:
                out[key] = _to_proto_json(value)
        return out
    if isinstance(node, list):
        return [_to_proto_json(value) for value in node]
    return node


def _parse_json(raw: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise _Reject(400, f"invalid JSON: {err}") from None
    if not isinstance(document, dict):
        raise _Reject(400, "an OTLP/JSON body must be a JSON object")
    try:
        converted = _to_proto_json(document)
    except RecursionError:
        raise _Reject(400, "JSON body is nested too deeply") from None
    message = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(converted, message, ignore_unknown_fields=True)
    except Exception as err:  # ParseError, and whatever odd input makes protobuf raise
        raise _Reject(400, f"invalid OTLP/JSON: {err}") from None
    return message


def _parse_protobuf(raw: bytes) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(raw)
    except Exception as err:  # DecodeError, and whatever odd input makes protobuf raise
        raise _Reject(400, f"invalid OTLP protobuf: {err or type(err).__name__}") from None
    return message


def _check_ids(message: ExportTraceServiceRequest) -> None:
    for resource_spans in message.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                for name, value, size in (
                    ("trace_id", span.trace_id, 16),
                    ("span_id", span.span_id, 8),
                    ("parent_span_id", span.parent_span_id, 8),
                ):
                    if len(value) != size and not (name == "parent_span_id" and not value):
                        raise _Reject(
                            400,
                            f"span {span.name!r}: {name} must be {size} bytes, got {len(value)}",
                        )


def _decode(
    body: bytes, content_type: str, content_encoding: str, limit: int
) -> tuple[list[SpanRecord], bool]:
    """Decode an export body; return its spans and whether it was JSON. Raises ``_Reject``."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _PROTOBUF_TYPES and media_type != _JSON_TYPE:
        shown = content_type or "none"
        raise _Reject(
            415,
            f"unsupported Content-Type {shown!r}; send application/x-protobuf or application/json",
        )
    raw = _decompress(body, content_encoding, limit)
    is_json = media_type == _JSON_TYPE
    message = _parse_json(raw) if is_json else _parse_protobuf(raw)
    _check_ids(message)
    try:
        spans = records_from_otlp(message)
    except Exception as err:
        raise _Reject(400, f"could not read the spans: {err}") from None
    return spans, is_json


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops bursts of concurrent exporters' SYNs

    def __init__(
        self,
        address: tuple[str, int],
        receiver: OTLPReceiver,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.receiver = receiver
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a broken resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[Any, Any]:
        connection, address = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake runs in the connection's own thread (see _Handler.setup), so a slow
            # or failing client never blocks the accept loop.
            connection = self.ssl_context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"otlp-receiver-connection-{client_address}",
            daemon=True,
        )
        if not self.receiver._track(thread, request):
            self.shutdown_request(request)
            return
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.receiver._untrack(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes and clients vanishing mid-request land here; stay quiet.
        _log.debug("OTLP receiver: connection from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "truefoundry-tracing-otlp-receiver"
    sys_version = ""
    timeout = _SOCKET_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    # Per-request state, reset by handle_one_request (one handler serves a keep-alive connection).
    _received_at: float = 0.0
    _body: bytes = b""
    _spans: tuple[SpanRecord, ...] = ()
    _answered: bool = False
    _stale_headers: Any = None  # the previous request's headers, never to be recorded again

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("OTLP receiver %s: %s", self.address_string(), format % args)

    # -- request entry points ---------------------------------------------------------------

    def handle_one_request(self) -> None:
        self._received_at = 0.0
        self._body = b""
        self._spans = ()
        self._answered = False
        self._stale_headers = getattr(self, "headers", None)
        super().handle_one_request()

    def parse_request(self) -> bool:
        self._received_at = time.time()  # the request line has just arrived
        return super().parse_request()

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Only the stdlib calls this, for requests too malformed to reach _dispatch.
        self._record(code, message or "")
        super().send_error(code, message, explain)

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client starts sending it.
        if self._declared_length() > self.server.receiver._max_body_bytes:
            limit = self.server.receiver._max_body_bytes
            self._reply(413, f"body exceeds the {limit}-byte limit", close=True)
            return False
        return super().handle_expect_100()

    # -- the request ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        try:
            self._route()
        except _Reject as rejection:
            self._reply(rejection.status, rejection.reason, close=rejection.close)
        except TimeoutError:
            self._reply(408, "timed out reading the request", close=True)
        except OSError:
            self._no_answer("the client went away")
        except Exception:
            _log.exception("OTLP receiver: error handling %s %s", self.command, self.path)
            if not self._answered:
                self._reply(500, "internal receiver error", close=True)

    def _route(self) -> None:
        receiver = self.server.receiver
        target = urlsplit(self.path).path
        if target not in receiver._paths:
            usable = self._discard_body()
            if usable and receiver._other_routes is not None:
                reply = receiver._other_routes(self.command, self.path, self._header_dict())
                if reply is not None:
                    self._answered = True
                    self._send(
                        reply.status,
                        reply.body,
                        reply.content_type,
                        dict(reply.headers or {}),
                        close=False,
                    )
                    return
            known = ", ".join(receiver._path_list)
            self._reply(404, f"no OTLP endpoint at {target}; POST to {known}", close=not usable)
            return
        if self.command != "POST":
            usable = self._discard_body()
            self._reply(
                405,
                f"{self.command} not allowed; use POST",
                headers={"Allow": "POST"},
                close=not usable,
            )
            return
        self._body = self._read_body(require_length=True)
        if receiver._authorize is not None:
            refusal = receiver._authorize(self._header_dict())
            if refusal is not None:
                self._reply(refusal[0], refusal[1])
                return
        fault = receiver._take_fault()
        if fault is not None and not self._apply_fault(fault):
            return
        self._accept()

    def _accept(self) -> None:
        limit = self.server.receiver._max_body_bytes
        try:
            spans, is_json = _decode(
                self._body,
                self.headers.get("Content-Type", ""),
                self.headers.get("Content-Encoding", ""),
                limit,
            )
        except _Reject as rejection:
            self._reply(rejection.status, rejection.reason, close=rejection.close)
            return
        self._spans = tuple(spans)
        # An empty ExportTraceServiceResponse: b"" in protobuf, "{}" in JSON.
        self._reply(
            200,
            body=b"{}" if is_json else b"",
            content_type=_JSON_TYPE if is_json else "application/x-protobuf",
            accepted=True,
        )

    def _apply_fault(self, fault: _Fault) -> bool:
        """Play a scripted fault; return True when the request should then be handled as usual."""
        receiver = self.server.receiver
        decoded = self._try_decode() if fault.kind in ("respond", "reset") else None
        self._spans = decoded or ()
        if fault.kind == "respond":
            self._reply(
                fault.status,
                "scripted by respond_with()",
                body=fault.body,
                headers=dict(fault.headers),
                accepted=decoded is not None and 200 <= fault.status < 300,
            )
            return False
        if fault.kind == "reset":
            self._reset()
            return False
        if fault.kind == "slow":
            if receiver._pause(fault.seconds):
                return True
            self._no_answer("the receiver stopped during a slow() delay")
            return False
        outcome = receiver._hang()
        if outcome == "released":
            return True
        self._no_answer(f"hang() ended by {outcome} without an answer")
        return False

    def _try_decode(self) -> tuple[SpanRecord, ...] | None:
        try:
            spans, _ = _decode(
                self._body,
                self.headers.get("Content-Type", ""),
                self.headers.get("Content-Encoding", ""),
                self.server.receiver._max_body_bytes,
            )
        except _Reject:
            return None
        return tuple(spans)

    # -- reading the body -------------------------------------------------------------------

    def _declared_length(self) -> int:
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return -1
        try:
            lengths = {int(value) for value in values}
        except ValueError:
            return -1
        return lengths.pop() if len(lengths) == 1 else -1

    def _read_body(self, *, require_length: bool) -> bytes:
        limit = self.server.receiver._max_body_bytes
        transfer_encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if transfer_encoding:
            if transfer_encoding != "chunked":
                raise _Reject(
                    501, f"unsupported Transfer-Encoding {transfer_encoding!r}", close=True
                )
            return self._read_chunked(limit)
        values = self.headers.get_all("Content-Length") or []
        if not values:
            if require_length:
                raise _Reject(411, "a Content-Length header is required")
            return b""
        length = self._declared_length()
        if length < 0:
            raise _Reject(400, f"invalid Content-Length {', '.join(values)!r}", close=True)
        if length > limit:
            raise _Reject(413, f"body of {length} bytes exceeds the {limit}-byte limit", close=True)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionAbortedError("body ended early")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            if not line:
                raise ConnectionAbortedError("chunked body ended early")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Reject(400, "invalid chunk size line", close=True) from None
            if size < 0:
                raise _Reject(400, "invalid chunk size line", close=True)
            if len(body) + size > limit:
                raise _Reject(413, f"chunked body exceeds the {limit}-byte limit", close=True)
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionAbortedError("chunked body ended early")
            body += chunk
            if self.rfile.readline(_MAX_CHUNK_LINE).strip():
                raise _Reject(400, "chunk not followed by CRLF", close=True)
        for _ in range(100):  # trailer fields, up to the empty line
            if self.rfile.readline(_MAX_CHUNK_LINE) in (b"\r\n", b"\n", b""):
                return bytes(body)
        raise _Reject(400, "too many trailer fields", close=True)

    def _discard_body(self) -> bool:
        """Read and drop a refused request's body; False when the connection is unusable."""
        try:
            self._body = self._read_body(require_length=False)
        except _Reject:
            return False
        return True

    # -- answering --------------------------------------------------------------------------

    def _header_dict(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        message = getattr(self, "headers", None)
        if message is not None and message is not self._stale_headers:
            for name, value in message.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def _record(self, status: int, reason: str, *, accepted: bool = False) -> ReceivedRequest:
        headers = self._header_dict()
        record = ReceivedRequest(
            method=getattr(self, "command", None) or "",
            path=getattr(self, "path", None) or "",
            headers=headers,
            content_type=headers.get("content-type", ""),
            body=self._body,
            spans=self._spans,
            status=status,
            received_at=self._received_at or time.time(),
            reason=_short(reason),
        )
        self.server.receiver._record(record, accepted=accepted)
        return record

    def _reply(
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
            if body:
                content_type = "text/plain; charset=utf-8"
        extra = {k: v for k, v in (headers or {}).items() if k.lower() != "content-length"}
        if body and content_type is None and not any(k.lower() == "content-type" for k in extra):
            content_type = "text/plain; charset=utf-8"
        record = self._record(status, reason, accepted=accepted)
        if accepted:
            self.server.receiver._run_hook(record)
        self._answered = True
        self._send(status, body, content_type, extra, close=close)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: Mapping[str, str],
        *,
        close: bool,
    ) -> None:
        if close:
            self.close_connection = True
        try:
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return
        if close:
            self._linger()

    def _linger(self) -> None:
        """Drain what the client still sends, so closing does not reset away our answer."""
        connection: socket.socket = self.connection
        receiver = self.server.receiver
        with contextlib.suppress(OSError):
            socket.socket.shutdown(connection, socket.SHUT_WR)
            connection.settimeout(0.1)
            deadline = time.monotonic() + _LINGER_SECONDS
            while time.monotonic() < deadline and not receiver._stopping:
                try:
                    if not connection.recv(65536):
                        break
                except TimeoutError:
                    continue

    def _no_answer(self, reason: str) -> None:
        self.close_connection = True
        self._record(0, reason)

    def _reset(self) -> None:
        """Close the socket at once with a TCP reset, without an HTTP answer."""
        self._no_answer("connection reset by reset_connection()")
        connection: socket.socket = self.connection
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.rfile.close()  # drops the file's reference, so close() below really closes
            connection.close()


class OTLPReceiver:
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
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._connections: dict[threading.Thread, socket.socket] = {}
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
            server_class = _Server6 if ":" in self._host else _Server
            try:
                server = server_class((self._host, self._requested_port), self, context)
            except BaseException:
                self._remove_tempdir()
                raise
            self._server = server
            self._port = int(server.server_address[1])
            self._serve_thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"otlp-receiver-{self._port}",
                daemon=True,
            )
            self._serve_thread.start()
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
            server, serve_thread = self._server, self._serve_thread
        if server is not None:
            server.shutdown()  # no new connections once this returns
            with self._cond:
                connections = list(self._connections.items())
            for _, connection in connections:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(connection, socket.SHUT_RDWR)
            deadline = time.monotonic() + _JOIN_SECONDS
            current = threading.current_thread()
            for thread, _ in connections:
                if thread is not current:
                    thread.join(max(0.0, deadline - time.monotonic()))
            server.server_close()
            if serve_thread is not None:
                serve_thread.join(max(0.1, deadline - time.monotonic()))
        self._remove_tempdir()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

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
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._host, self._host)
        return f"[{host}]" if ":" in host else host

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

    def _track(self, thread: threading.Thread, connection: socket.socket) -> bool:
        with self._cond:
            if self._stopping:
                return False
            self._connections[thread] = connection
            return True

    def _untrack(self, thread: threading.Thread) -> None:
        with self._cond:
            self._connections.pop(thread, None)

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
