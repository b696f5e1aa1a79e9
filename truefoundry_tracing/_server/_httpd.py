"""The one HTTP/1.1 server core: sockets, threads and framing (``h11``), shared by every server.

The OTLP receiver, the LLM stand-ins and ``truefoundry-tracing serve`` are handlers plugged
into :class:`HTTPServer`. The core owns everything that is about HTTP rather than about what a
server answers: accepting connections (one thread each, TLS handshakes included), parsing
requests and framing answers with ``h11`` (keep-alive, chunked bodies both ways, HTTP/1.0
clients, ``HEAD``, ``Expect: 100-continue``), the body size limit, idle timeouts, closing
gracefully (draining what a client still sends, so it reads the answer rather than a reset),
and stopping promptly.

A handler gets an :class:`Exchange` per request: it reads the body with
:meth:`Exchange.read_body` (which applies the limit policy, raising :class:`HTTPError`), then
answers once with :meth:`Exchange.respond`, streams with :meth:`Exchange.start_stream`, or
hangs up with :meth:`Exchange.drop`.

Example:
    >>> import urllib.request
    >>> def hello(exchange: Exchange) -> None:
    ...     exchange.respond(200, b"hi " + exchange.read_body(), "text/plain")
    >>> with HTTPServer(hello) as server:
    ...     req = urllib.request.Request(server.url + "/x", data=b"there")
    ...     with urllib.request.urlopen(req) as resp:
    ...         print(resp.status, resp.read())
    200 b'hi there'
"""

from __future__ import annotations

import contextlib
import http
import logging
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from types import TracebackType
from typing import Final, TypeVar

import h11

__all__ = [
    "ClientGone",
    "Exchange",
    "HTTPError",
    "HTTPReply",
    "HTTPServer",
    "Request",
    "Serving",
    "url_host",
]

_log = logging.getLogger(__name__)

_RECV: Final = 65536
_MAX_HEAD: Final = 64 * 1024  # request line and headers together (larger: 431)
_LINGER_SECONDS: Final = 1.0  # how long to drain an unread body after a closing answer
_BACKLOG: Final = 128  # a burst of concurrent exporters must not see refused connections


class HTTPError(Exception):
    """A request the server refuses: answer ``status`` with ``reason``.

    ``close`` means the connection cannot be reused (its framing is lost or its body unread).

    Example:
        >>> HTTPError(413, "too large", close=True).status
        413
    """

    def __init__(self, status: int, reason: str, *, close: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.close = close


class ClientGone(ConnectionError):
    """The client closed or reset the connection, or stopped sending, mid-request."""


@dataclass(frozen=True)
class HTTPReply:
    """A complete answer: status, body, content type and extra headers.

    Example:
        >>> HTTPReply(200, b"<h1>traces</h1>", "text/html; charset=utf-8").status
        200
    """

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Request:
    """A request's head, as the handler sees it.

    ``target`` is the request target as sent (path and query); ``path`` and ``query`` are its
    two parts; ``headers`` has lower-cased names, repeated headers joined with ``", "``;
    ``received_at`` is when its head arrived, in seconds since the epoch.

    Example:
        >>> Request("GET", "/a?b=1", {}, "1.1", 0.0).path
        '/a'
    """

    method: str
    target: str
    headers: dict[str, str] = field(repr=False)
    http_version: str
    received_at: float

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The query string, without the ``?``."""
        return self.target.partition("?")[2]


def url_host(host: str) -> str:
    """The host part of a URL for a server bound to ``host`` (wildcards become loopback).

    Example:
        >>> url_host("0.0.0.0"), url_host("::1")
        ('127.0.0.1', '[::1]')
    """
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def _reason_phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


class Exchange:
    """One request on a connection and its answer.

    Read the body at most once (:meth:`read_body` or :meth:`discard_body`), then answer once.
    A handler that returns without answering gets a 500.
    """

    def __init__(self, connection: _Connection, request: Request, *, head_ok: bool) -> None:
        self._conn = connection
        self.request = request
        self._head_ok = head_ok  # False for the placeholder of a request that did not parse
        self._body: bytes | None = None
        self.answered = False
        self.closing = False

    # -- the body -------------------------------------------------------------------------------

    @property
    def declared_length(self) -> int | None:
        """The ``Content-Length`` the client declared, or None (absent, chunked or invalid)."""
        raw = self.request.headers.get("content-length")
        if raw is None or "transfer-encoding" in self.request.headers:
            return None
        try:
            values = {int(v) for v in raw.split(",")}
        except ValueError:
            return None
        return values.pop() if len(values) == 1 else None

    def read_body(self, *, require_length: bool = False) -> bytes:
        """Read the whole body, at most the server's ``max_body_bytes`` (else 413).

        With ``require_length``, a body framed neither by ``Content-Length`` nor chunked gets
        411. Raises :class:`HTTPError` to refuse and :class:`ClientGone` if the client left.
        """
        if self._body is not None:
            return self._body
        headers = self.request.headers
        if (
            require_length
            and "content-length" not in headers
            and "transfer-encoding" not in headers
        ):
            raise HTTPError(411, "a Content-Length header is required")
        limit = self._conn.server.max_body_bytes
        length = self.declared_length
        if length is not None and length > limit:
            raise HTTPError(
                413, f"body of {length} bytes exceeds the {limit}-byte limit", close=True
            )
        self._body = self._conn.read_body(limit)
        return self._body

    def discard_body(self) -> bytes | None:
        """Read a body nobody asked for; return it, or None when the connection is unusable."""
        try:
            return self.read_body()
        except HTTPError:
            self.closing = True
            return None

    # -- answering ------------------------------------------------------------------------------

    def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        """Send the complete answer. A client that is gone is not an error here."""
        self._prepare(close)
        fields = self._fields(content_type, headers)
        fields.append(("Content-Length", str(len(body))))
        rest: list[h11.Event] = []
        if self.request.method != "HEAD" and body:
            rest.append(h11.Data(data=body))
        rest.append(h11.EndOfMessage())
        try:
            self._conn.send_head(status, fields, *rest, close=self.closing)  # one write
        except (ClientGone, h11.LocalProtocolError):
            self.closing = True

    def reply(self, reply: HTTPReply, *, close: bool = False) -> None:
        """Send an :class:`HTTPReply` (see :meth:`respond`)."""
        self.respond(reply.status, reply.body, reply.content_type, reply.headers, close=close)

    def start_stream(
        self, status: int, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Start a streamed answer (chunked; close-delimited for HTTP/1.0 clients).

        Follow with :meth:`write` calls, then :meth:`end_stream`, or :meth:`drop` to break it.
        """
        self._prepare(False)
        fields = self._fields(content_type, headers)
        fields.append(("Transfer-Encoding", "chunked"))
        self._conn.send_head(status, fields, close=self.closing)

    def write(self, data: bytes) -> None:
        """Send one piece of a streamed answer; raises :class:`ClientGone` if the client left."""
        if data:
            self._conn.send(h11.Data(data=data))

    def end_stream(self) -> None:
        """Finish a streamed answer."""
        self._conn.send(h11.EndOfMessage())

    def drop(self, *, reset: bool = False) -> None:
        """Hang up without (finishing) an answer; with ``reset``, with a TCP reset."""
        self.answered = True
        self.closing = True
        self._conn.hang_up(reset=reset)

    def _prepare(self, close: bool) -> None:
        if self.answered:
            raise RuntimeError("this request was already answered")
        self.answered = True
        self.closing = self.closing or close or not self._head_ok
        if self._body is None and not self.closing:
            if self._conn.waiting_for_continue():
                self.closing = True  # the client may or may not send the body now
            else:
                self.discard_body()

    def _fields(
        self, content_type: str | None, headers: Mapping[str, str] | None
    ) -> list[tuple[str, str]]:
        extra = {k: v for k, v in (headers or {}).items() if k.lower() != "content-length"}
        fields = [("Server", self._conn.server.name), ("Date", formatdate(usegmt=True))]
        if content_type is not None and not any(k.lower() == "content-type" for k in extra):
            fields.append(("Content-Type", content_type))
        fields.extend(extra.items())
        return fields


Handler = Callable[[Exchange], None]
ErrorHandler = Callable[[Exchange, HTTPError], None]


def plain_error(exchange: Exchange, error: HTTPError) -> None:
    """The default answer to a request that did not parse: its reason as plain text."""
    body = (error.reason + "\n").encode("utf-8", "replace")
    exchange.respond(error.status, body, "text/plain; charset=utf-8", close=True)


class _Connection:
    """One client connection: reads requests with ``h11`` and hands them to the handler."""

    def __init__(self, server: HTTPServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        self._closed = False

    # -- reading --------------------------------------------------------------------------------

    def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = self.sock.recv(_RECV)
            except TimeoutError:
                raise
            except OSError as err:
                raise ClientGone(str(err)) from None
            self.h11.receive_data(data)

    def read_body(self, limit: int) -> bytes:
        body = bytearray()
        if self.waiting_for_continue():
            self.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
        while True:
            try:
                event = self._next_event()
            except h11.RemoteProtocolError as err:
                raise HTTPError(err.error_status_hint, f"invalid body: {err}", close=True) from None
            except TimeoutError:
                raise HTTPError(408, "timed out reading the request", close=True) from None
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    raise HTTPError(413, f"body exceeds the {limit}-byte limit", close=True)
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:  # ConnectionClosed
                raise ClientGone("the body ended early")

    def waiting_for_continue(self) -> bool:
        return bool(self.h11.they_are_waiting_for_100_continue)

    # -- writing --------------------------------------------------------------------------------

    def send_head(
        self, status: int, fields: list[tuple[str, str]], *then: h11.Event, close: bool
    ) -> None:
        if close:
            fields.append(("Connection", "close"))
        encoded = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in fields]
        head = h11.Response(status_code=status, headers=encoded, reason=_reason_phrase(status))
        self.send(head, *then)

    def send(self, *events: h11.Event) -> None:
        data = b"".join(self.h11.send(event) or b"" for event in events)
        if not data:
            return
        try:
            self.sock.sendall(data)
        except OSError as err:
            raise ClientGone(str(err)) from None

    def hang_up(self, *, reset: bool) -> None:
        if reset:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                self.sock.close()

    def linger(self) -> None:
        """Drain what the client still sends, so closing does not reset away our answer."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(0.1)
            deadline = time.monotonic() + _LINGER_SECONDS
            while time.monotonic() < deadline and not self.server.stopping:
                try:
                    if not self.sock.recv(_RECV):
                        break
                except TimeoutError:
                    continue

    # -- the loop -------------------------------------------------------------------------------

    def serve(self) -> None:
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                self.sock.do_handshake()
            while not self._closed and self._serve_one():
                self.h11.start_next_cycle()
        except (OSError, ssl.SSLError, h11.ProtocolError):
            _log.debug("%s: connection failed", self.server.name, exc_info=True)
        finally:
            self.close()

    def _serve_one(self) -> bool:
        """Serve one request; True when the connection can carry another."""
        received_at = 0.0
        try:
            event = self._next_event()
            received_at = time.time()
        except (TimeoutError, ClientGone):
            return False
        except h11.RemoteProtocolError as err:
            if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                return False
            stub = Request("", "", {}, "", received_at or time.time())
            self._refuse(
                Exchange(self, stub, head_ok=False), HTTPError(err.error_status_hint, str(err))
            )
            return False
        if not isinstance(event, h11.Request):
            return False  # ConnectionClosed (or PAUSED, which a server never sees here)
        exchange = Exchange(self, _request_of(event, received_at), head_ok=True)
        if exchange.request.http_version not in ("1.0", "1.1"):
            version = exchange.request.http_version
            self._refuse(exchange, HTTPError(505, f"HTTP/{version} is not supported; use HTTP/1.1"))
            return False
        try:
            self.server.handler(exchange)
        except ClientGone:
            return False
        except HTTPError as err:
            if exchange.answered:
                return False
            self._refuse(exchange, err)
        except Exception:
            _log.exception("%s: error answering %s", self.server.name, exchange.request.target)
            if exchange.answered:
                return False
            with contextlib.suppress(Exception):
                exchange.respond(500, b"internal server error\n", "text/plain", close=True)
        if not exchange.answered:
            with contextlib.suppress(Exception):
                exchange.respond(500, b"no answer\n", "text/plain", close=True)
        if exchange.closing or self._closed or self.h11.our_state is not h11.DONE:
            if not self._closed:
                self.linger()
            return False
        return self.h11.their_state is h11.DONE

    def _refuse(self, exchange: Exchange, error: HTTPError) -> None:
        try:
            self.server.on_error(exchange, error)
        except Exception:
            _log.exception("%s: error answering a refused request", self.server.name)
        if not exchange.answered:
            with contextlib.suppress(Exception):
                plain_error(exchange, error)
        if not self._closed:
            self.linger()
        self.close()


def _request_of(event: h11.Request, received_at: float) -> Request:
    headers: dict[str, str] = {}
    for raw_name, raw_value in event.headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(
        method=event.method.decode("latin-1"),
        target=event.target.decode("latin-1"),
        headers=headers,
        http_version=event.http_version.decode("latin-1"),
        received_at=received_at,
    )


_S = TypeVar("_S", bound="Serving")


class Serving:
    """``with`` support for a server: ``start()`` on entry (returning it), ``stop()`` on exit."""

    def start(self: _S) -> _S:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class HTTPServer(Serving):
    """A threaded HTTP/1.1 server running ``handler`` for each request.

    Args:
        handler: Called with each request's :class:`Exchange`, in that connection's thread.
        host: Interface to bind; ``::1``-style hosts bind IPv6.
        port: Port to bind; 0 picks a free one (read it back from :attr:`port`).
        name: Sent as the ``Server`` header and used in thread names and logs.
        max_body_bytes: The limit :meth:`Exchange.read_body` applies.
        timeout: Seconds a socket operation may wait (also how long an idle keep-alive lives).
        ssl_context: Serve HTTPS with this server-side context.
        on_error: Answers requests that did not parse (default: :func:`plain_error`).

    Example:
        >>> server = HTTPServer(lambda ex: ex.respond(204)).start()
        >>> server.port > 0
        True
        >>> server.stop()
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "truefoundry-tracing",
        max_body_bytes: int = 20 * 1024 * 1024,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        on_error: ErrorHandler = plain_error,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, not {max_body_bytes}")
        self.handler = handler
        self.on_error = on_error
        self.host = host
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.stopping = False
        self._requested_port = port
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._listener: socket.socket | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> HTTPServer:
        """Bind and accept connections on a background thread; return ``self``."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self._requested_port))
            listener.listen(_BACKLOG)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._wakeup = socket.socketpair()
        self._port = int(listener.getsockname()[1])
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-{self._port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self, join_seconds: float = 2.0) -> None:
        """Stop accepting, shut open connections down, and join their threads (bounded)."""
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
            connections = list(self._connections.items())
        if self._wakeup is not None:
            with contextlib.suppress(OSError):
                self._wakeup[1].send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(join_seconds)
        for _, sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + join_seconds
        current = threading.current_thread()
        for thread, _ in connections:
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._close_wakeup()

    @property
    def port(self) -> int:
        """The bound port; raises ``RuntimeError`` before :meth:`start`."""
        if self._port is None:
            raise RuntimeError("the server is not started; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43127`` (``https`` with TLS)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{url_host(self.host)}:{self.port}"

    # -- accepting ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener, wakeup = self._listener, self._wakeup
        assert listener is not None and wakeup is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wakeup[0], selectors.EVENT_READ)
            try:
                while not self.stopping:
                    for key, _ in selector.select():
                        if key.fileobj is listener and not self.stopping:
                            self._accept(listener)
            finally:
                listener.close()

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, address = listener.accept()
        except OSError:
            return
        sock.settimeout(self.timeout)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl_context is not None:
            # The handshake runs in the connection's thread: a slow client never blocks accept.
            try:
                sock = self._ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except (OSError, ssl.SSLError):
                sock.close()
                return
        thread = threading.Thread(
            target=self._serve, args=(sock,), name=f"{self.name}-connection-{address}", daemon=True
        )
        with self._lock:
            if self.stopping:
                sock.close()
                return
            self._connections[thread] = sock
        thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            _Connection(self, sock).serve()
        finally:
            with self._lock:
                self._connections.pop(threading.current_thread(), None)

    def _close_wakeup(self) -> None:
        for sock in self._wakeup or ():
            with contextlib.suppress(OSError):
                sock.close()
