"""``truefoundry-tracing serve``: a local stand-in for TrueFoundry's tracing endpoint.

It is the project's :class:`~truefoundry_tracing.testing.OTLPReceiver` (the same receiver the
tests and the pytest fixture use) with these additions wired in through its hooks: accepted
spans go into a SQLite :class:`~._store.Store`, each finished trace is printed as a tree, and
the trace viewer's routes answer on the same port.

Like TrueFoundry, it receives traces only at ``/api/otel/v1/traces``: an export POSTed to any
other path (``/v1/traces`` is the usual one, from an endpoint set without ``/api/otel``) gets a
404 saying which setting to use, and one line in serve's output, so a configuration that would
fail against TrueFoundry fails here too.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .._config import is_loopback
from .._render import render_tree
from .._server._httpd import HTTPReply
from .._server._receiver import OTLPReceiver, ReceivedRequest
from ._store import Store
from ._web import WebRoutes

__all__ = ["LocalServer"]

DEFAULT_PORT = 4318
DEFAULT_MAX_BODY = 20 * 1024 * 1024
TRACES_PATH = "/api/otel/v1/traces"  # where TrueFoundry answers, and nowhere else
_SETTLE_SECONDS = 0.3  # after a root span arrives, wait this long for stragglers, then print
_ORPHAN_SECONDS = 5.0  # a trace whose root never arrives is printed after this much quiet


class LocalServer:
    """OTLP/HTTP receiver + SQLite store + trace viewer, on one port.

    Args:
        data_dir: Directory of the SQLite database; spans stored there survive restarts.
        host: Interface to bind; loopback by default.
        port: Port to bind (0 picks a free one).
        require_key: When set, trace exports without ``Authorization: Bearer <require_key>``
            are answered 401, as TrueFoundry would.
        max_body_bytes: Larger request bodies are answered 413.
        out: Where finished traces and reports are printed (None: nowhere).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with LocalServer(tmp, port=0, out=None) as server:
        ...         server.url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        require_key: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        out: IO[str] | None = None,
    ) -> None:
        self.store = Store(data_dir)
        self._out = out
        self._require_key = require_key
        self._lock = threading.Lock()
        self._counts = {
            "missing_authorization": 0,
            "missing_project": 0,
            "rejected": 0,
            "wrong_path": 0,
        }
        self._reported: set[str] = set()
        self._due: dict[str, float] = {}
        self._rooted: set[str] = set()
        self._stop = threading.Event()
        self._printer: threading.Thread | None = None
        self._web = WebRoutes(self.store, status=self.status, check_host=is_loopback(host))
        self.receiver = OTLPReceiver(
            host,
            port,
            max_body_bytes=max_body_bytes,
            on_export=self._on_export,
            paths=(TRACES_PATH,),
            authorize=self._authorize,
            other_routes=self._other_routes,
            max_recorded=100,
        )

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Bind and serve in background threads; return ``self``."""
        try:
            self.receiver.start()
        except BaseException:
            self.store.close()
            raise
        self._printer = threading.Thread(target=self._print_loop, name="serve-printer", daemon=True)
        self._printer.start()
        return self

    def stop(self) -> None:
        """Stop serving, print traces still waiting to be printed, close the database."""
        self.receiver.stop()
        self._stop.set()
        if self._printer is not None:
            self._printer.join(5)
        self._print_due(force=True)
        self.store.close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL; apps use it as ``TFY_HOST``, the browser opens it for the viewer."""
        return self.receiver.url

    def status(self) -> Mapping[str, Any]:
        """Counters the web page shows: requests missing headers, requests rejected."""
        with self._lock:
            return {**self._counts, "host_hint": f"TFY_HOST={self.url}"}

    # -- receiver hooks ---------------------------------------------------------------------

    def _authorize(self, headers: Mapping[str, str]) -> tuple[int, str] | None:
        auth = headers.get("authorization", "")
        if not auth:
            self._report(
                "missing_authorization",
                "a trace export came without an Authorization header; TrueFoundry would "
                "answer 401. Set TFY_API_KEY (or pass api_key=) in the app.",
            )
        elif not auth.lower().startswith("bearer "):
            self._report(
                "not_bearer",
                "a trace export has an Authorization header that is not 'Bearer <key>'; "
                "TrueFoundry would answer 401. Set TFY_API_KEY instead of building the header.",
            )
        if not headers.get("tfy-tracing-project"):
            self._report(
                "missing_project",
                "a trace export came without a TFY-Tracing-Project header; TrueFoundry cannot "
                "tell which tracing project its spans belong to. Set TFY_TRACING_PROJECT.",
            )
        if self._require_key is None:
            return None
        expected = f"Bearer {self._require_key}".encode()
        if hmac.compare_digest(auth.encode("utf-8", "replace"), expected):
            return None
        self._report(
            "rejected",
            "rejected a trace export with 401: its API key is missing or is not the one given "
            "to --require-key.",
        )
        return 401, "the API key is missing or wrong; send Authorization: Bearer <key>"

    def _other_routes(
        self, method: str, target: str, headers: Mapping[str, str]
    ) -> HTTPReply | None:
        reply = self._web(method, target, headers)
        if reply is None and method == "POST":
            return self._wrong_path(urlsplit(target).path)
        return reply

    def _wrong_path(self, path: str) -> HTTPReply:
        """A 404 for an export POSTed where TrueFoundry would not answer, saying the fix."""
        advice = wrong_path_advice(self.url, path)
        self._report("wrong_path", advice, once=f"wrong_path {path}")
        return HTTPReply(404, (advice + "\n").encode())

    def _on_export(self, request: ReceivedRequest) -> None:
        if not request.spans:
            return
        self.store.add(request.spans, request.received_at)
        now = time.monotonic()
        with self._lock:
            for span in request.spans:
                if span.parent_id is None:
                    self._rooted.add(span.trace_id)
            for trace_id in {s.trace_id for s in request.spans}:
                wait = _SETTLE_SECONDS if trace_id in self._rooted else _ORPHAN_SECONDS
                self._due[trace_id] = now + wait

    # -- printing ---------------------------------------------------------------------------

    def _report(self, cause: str, text: str, *, once: str | None = None) -> None:
        key = once or cause
        with self._lock:
            if cause in self._counts:
                self._counts[cause] += 1
            first = key not in self._reported
            self._reported.add(key)
        if first:
            self._write(f"! {text} (reported once; the viewer counts them)\n")

    def _write(self, text: str) -> None:
        if self._out is None:
            return
        try:
            self._out.write(text)
            self._out.flush()
        except (OSError, ValueError):
            pass

    def _print_loop(self) -> None:
        while not self._stop.wait(0.1):
            self._print_due(force=False)

    def _print_due(self, *, force: bool) -> None:
        now = time.monotonic()
        with self._lock:
            ready = [t for t, due in self._due.items() if force or due <= now]
            for trace_id in ready:
                del self._due[trace_id]
                self._rooted.discard(trace_id)
        for trace_id in ready:
            try:
                spans = self.store.spans(trace_id)
            except Exception:  # the database was closed under us while stopping
                return
            if not spans:
                continue
            app = next((s.service_name for s in spans if s.service_name), "-")
            self._write(
                f"trace {trace_id}  app={app}  spans={len(spans)}\n{render_tree(spans)}\n\n"
            )


def wrong_path_advice(url: str, path: str) -> str:
    """What to tell a client that POSTed a trace export to ``path`` instead of TrueFoundry's.

    Example:
        >>> print(wrong_path_advice("http://127.0.0.1:4318", "/v1/traces"))
        ... # doctest: +NORMALIZE_WHITESPACE
        a trace export was POSTed to /v1/traces, but TrueFoundry (and serve) receive traces
        only at /api/otel/v1/traces, so this app would fail against TrueFoundry too. Set
        TFY_HOST=http://127.0.0.1:4318 (truefoundry_tracing), or
        TRACELOOP_BASE_URL=http://127.0.0.1:4318/api/otel (traceloop), or
        OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318/api/otel (any other OpenTelemetry
        exporter).
    """
    return (
        f"a trace export was POSTed to {path}, but TrueFoundry (and serve) receive traces only "
        f"at {TRACES_PATH}, so this app would fail against TrueFoundry too. Set "
        f"TFY_HOST={url} (truefoundry_tracing), or TRACELOOP_BASE_URL={url}/api/otel "
        f"(traceloop), or OTEL_EXPORTER_OTLP_ENDPOINT={url}/api/otel (any other OpenTelemetry "
        "exporter)."
    )


def serve_forever(server: LocalServer, out: IO[str], greeting: str) -> None:
    """Print ``greeting``, run until Ctrl-C or SIGTERM, then stop cleanly."""
    import signal

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        out.write(greeting)
        out.flush()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        out.write("stopping\n")
        out.flush()
        server.stop()


def banner(server: LocalServer, host: str, require_key: bool) -> str:
    """The lines ``serve`` prints when it starts."""
    url = server.url
    lines = [
        f"truefoundry-tracing serve: receiving OTLP/HTTP (protobuf or JSON) at "
        f"{url}{TRACES_PATH}, TrueFoundry's path",
        f"  trace viewer:  {url}/",
        f"  point an app:  TFY_HOST={url}",
        f"       traceloop: TRACELOOP_BASE_URL={url}/api/otel",
        f"   OpenTelemetry: OTEL_EXPORTER_OTLP_ENDPOINT={url}/api/otel",
        f"  spans stored:  {server.store.path}",
    ]
    if require_key:
        lines.append("  exports without the --require-key key are answered 401")
    if not is_loopback(host):
        lines.append(
            f"  warning: listening on {host}, not loopback: anyone who can reach this port can "
            "read the traces (prompts and outputs included) and send spans."
        )
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines) + "\n"
