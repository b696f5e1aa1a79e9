"""One OTLP/HTTP POST and what its outcome means, in words, with the fix.

Shared by the span exporter (which retries and warns once per cause) and by
``truefoundry-tracing doctor`` (which sends one probe and prints the verdict), so both explain
a failure the same way.
"""

from __future__ import annotations

import contextlib
import math
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import Settings

__all__ = [
    "Attempts",
    "Hints",
    "Verdict",
    "classify_exception",
    "classify_status",
    "post",
    "post_retrying",
]

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
# A Retry-After longer than this is treated as this: a misconfigured proxy must not stall
# export for hours while the retry buffer fills up.
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class Hints:
    """Where the settings behind a request came from, so messages can name them."""

    url: str
    key_source: str = "TFY_API_KEY"
    project_source: str = "TFY_TRACING_PROJECT"
    host_source: str = "TFY_HOST"
    has_key: bool = True
    timeout_source: str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (seconds per request)"
    # The request's time limit in seconds, when one fixed limit applies (doctor's probe).
    timeout: float | None = None
    # The fix for a 404, worded for the setting the URL came from (see _config._advice).
    not_found: str = ""

    @classmethod
    def for_settings(
        cls, settings: Settings, url: str, argument: Callable[[str], str] | None = None
    ) -> Hints:
        """Hints naming where each of ``settings``' values came from.

        ``argument(option)`` names an option given as an argument (default: "the <option>
        argument").
        """

        from ._config._advice import not_found_fix

        def label(option: str) -> str:
            return settings.source_label(option, argument(option) if argument else None)

        return cls(
            url=url,
            key_source=label("api_key"),
            project_source=label("tracing_project"),
            host_source=label("endpoint" if settings.endpoint else "host"),
            has_key=settings.api_key is not None,
            not_found=not_found_fix(settings, label(settings.destination_option)),
        )


@dataclass(frozen=True)
class Verdict:
    """The outcome of one export request, in three sentences that callers combine.

    ``code`` is a stable word (``accepted``, ``invalid_request``, ``dns``, ``refused``,
    ``timeout``, ``tls``, ``reset``, ``unauthorized``, ``forbidden``, ``not_found``, ``too_large``,
    ``rate_limited``, ``server_error``, ``http_error``, ``error``). ``problem`` says what happened
    and names the URL; ``action`` is the fix, naming the setting to change (empty when nothing
    needs fixing); ``spans`` says what the exporter does with the spans of that request, which
    only the exporter reports (a probe has no spans to keep). ``status`` is the HTTP status when
    there was one.

    Example:
        >>> v = classify_status(401, {}, Hints(url="https://tfy.example.com/api/otel/v1/traces"))
        >>> v.action
        'Check TFY_API_KEY: it must be a valid TrueFoundry API key.'
        >>> v.message == " ".join([v.problem, v.action, v.spans])
        True
    """

    code: str
    problem: str
    status: int | None = None
    retryable: bool = False
    retry_after: float | None = None
    action: str = ""
    spans: str = ""

    @property
    def ok(self) -> bool:
        """True when the collector accepted the spans."""
        return self.code == "accepted"

    @property
    def advice(self) -> str:
        """What happened and the fix, without what became of the spans."""
        return " ".join(part for part in (self.problem, self.action) if part)

    @property
    def message(self) -> str:
        """The exporter's whole report: what happened, the fix, and what became of the spans."""
        return " ".join(part for part in (self.problem, self.action, self.spans) if part)


KEPT = "Spans are kept and retried."
UNANSWERED = (
    "Those spans may have arrived: they are kept and retried, and count as unconfirmed rather "
    "than lost (the collector may see them twice)."
)
DROPPED = "Those spans were dropped."


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None."""
    raw: object = headers.get("Retry-After")
    if raw is None:
        raw = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            import email.utils  # only for an HTTP-date Retry-After

            when = email.utils.parsedate_to_datetime(raw)
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def _refused(status: int, hints: Hints) -> Verdict | None:
    """The verdict for a status that names a setting to fix (401, 403, 404, 413), or None."""
    url = hints.url
    if status == 401:
        action = (
            f"Check {hints.key_source}: it must be a valid TrueFoundry API key."
            if hints.has_key
            else "Set TFY_API_KEY (or pass api_key=) to a TrueFoundry API key."
        )
        return Verdict(
            "unauthorized",
            f"401 from {url}: the API key was rejected or missing.",
            status,
            action=action,
            spans=DROPPED,
        )
    if status == 403:
        return Verdict(
            "forbidden",
            f"403 from {url}: the API key has no access to the tracing project.",
            status,
            action=f"Check {hints.project_source} and the key's permissions on that project.",
            spans=DROPPED,
        )
    if status == 404:
        return Verdict(
            "not_found",
            f"404 from {url}: wrong path. TrueFoundry receives traces at "
            "<control-plane-url>/api/otel/v1/traces.",
            status,
            action=hints.not_found
            or f"Set {hints.host_source} to the control-plane URL alone "
            "(no /api/otel, no /api/tracing).",
            spans=DROPPED,
        )
    if status == 413:
        return Verdict(
            "too_large",
            f"413 from {url}: the batch was too large for the collector.",
            status,
            action="Send smaller requests with disable_batch=True "
            "(TFY_TRACING_DISABLE_BATCH=true), or record less content with "
            "trace_content=False (TFY_TRACING_TRACE_CONTENT=false).",
            spans=DROPPED,
        )
    return None


def classify_status(status: int, headers: Mapping[str, str], hints: Hints) -> Verdict:
    """Turn an HTTP status from the collector into a :class:`Verdict`."""
    url = hints.url
    if 200 <= status < 300:
        return Verdict("accepted", f"{status} from {url}: spans accepted.", status)
    refused = _refused(status, hints)
    if refused is not None:
        return refused
    if status in RETRYABLE_STATUS:
        if status == 429:
            code, what = "rate_limited", "rate limited"
            action = (
                "If this persists, lower the sample rate (TFY_TRACING_SAMPLE_RATE) or ask "
                "your TrueFoundry administrator about the limits."
            )
        else:
            code, what = "server_error", "temporarily unavailable"
            action = "If this persists, contact your TrueFoundry administrator."
        return Verdict(
            code,
            f"{status} from {url}: the collector is {what}.",
            status,
            retryable=True,
            retry_after=_retry_after(headers),
            action=action,
            spans="Spans are kept and retried with backoff.",
        )
    if status >= 500:
        return Verdict(
            "server_error",
            f"{status} from {url}: the collector failed to accept the spans.",
            status,
            action="If this persists, contact your TrueFoundry administrator.",
            spans=DROPPED,
        )
    return Verdict(
        "http_error",
        f"{status} from {url}: the collector refused the spans.",
        status,
        action=f"Check that {hints.host_source} names an OTLP/HTTP collector, and give it "
        "the headers it needs with TRACELOOP_HEADERS (or headers=).",
        spans=DROPPED,
    )


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or any(cur is s for s in seen):
            continue
        seen.append(cur)
        todo.extend([cur.__cause__, cur.__context__])
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, BaseException):
                todo.append(arg)
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def _unbuildable(exc: BaseException, chain: list[BaseException], hints: Hints) -> Verdict | None:
    """The verdict when the request could not even be built; None otherwise."""
    import ssl  # loaded with the HTTP client by now; not at init()

    if not any(
        isinstance(e, (UnicodeError, ValueError)) and not isinstance(e, ssl.SSLError) for e in chain
    ):
        return None
    # Raised while building the request (requests' InvalidURL and InvalidHeader are
    # ValueErrors; http.client encodes headers as Latin-1): retrying cannot help.
    return Verdict(
        "invalid_request",
        f"could not build a request to {hints.url} ({type(exc).__name__}): the URL or a header "
        "value holds a character HTTP cannot carry (often a pasted '…' or curly quote).",
        action=f"Check {hints.host_source}, {hints.key_source}, {hints.project_source} "
        "and extra headers for such a character.",
        spans=DROPPED,
    )


def classify_exception(exc: BaseException, hints: Hints) -> Verdict:
    """Turn a network error from posting spans into a :class:`Verdict`."""
    import ssl  # loaded with the HTTP client by now; not at init()

    url = hints.url
    chain = _chain(exc)
    unbuildable = _unbuildable(exc, chain, hints)
    if unbuildable is not None:
        return unbuildable
    names = " ".join(type(e).__name__ for e in chain)
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, socket.gaierror) for e in chain) or "NameResolution" in names:
        return Verdict(
            "dns",
            f"cannot resolve the host of {url}.",
            retryable=True,
            action=f"Check {hints.host_source} for a typo, and the machine's DNS or proxy "
            "settings (HTTPS_PROXY).",
            spans=KEPT,
        )
    if any(isinstance(e, ssl.SSLError) for e in chain) or "SSLError" in names:
        return Verdict(
            "tls",
            f"TLS error talking to {url}: the certificate is not trusted, or the server "
            "does not speak TLS on that port.",
            action="If your company uses its own certificate authority, set "
            "REQUESTS_CA_BUNDLE to a PEM file that holds it; otherwise check the scheme and "
            f"port in {hints.host_source}.",
            spans=DROPPED,
        )
    if any(isinstance(e, (socket.timeout, TimeoutError)) for e in chain) or "Timeout" in names:
        within = "the timeout" if hints.timeout is None else f"{hints.timeout:g} s"
        return Verdict(
            "timeout",
            f"no answer from {url} within {within}; the collector or a proxy is hanging, "
            "or a firewall drops the traffic.",
            retryable=True,
            action="Check that the URL is reachable from this machine (set HTTPS_PROXY and "
            f"NO_PROXY if you need a proxy); if the collector is only slow, raise "
            f"{hints.timeout_source}.",
            spans=UNANSWERED,
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text.lower():
        return Verdict(
            "refused",
            f"connection refused by {url}; nothing listens there.",
            retryable=True,
            action=f"Check {hints.host_source} and the port.",
            spans=KEPT,
        )
    if any(isinstance(e, (ConnectionResetError, BrokenPipeError)) for e in chain) or (
        "RemoteDisconnected" in names or "reset" in text.lower() or "aborted" in text.lower()
    ):
        return Verdict(
            "reset",
            f"the connection to {url} was closed before an answer; a proxy or the collector "
            "dropped it.",
            retryable=True,
            action="If this persists, check the limits and logs of any proxy or load "
            "balancer in between.",
            spans=KEPT,
        )
    return Verdict(
        "error",
        f"could not send spans to {url}: {type(exc).__name__}.",
        retryable=True,
        action="If this repeats, report it with the output of `truefoundry-tracing doctor "
        "--json` (it never contains the key).",
        spans=KEPT,
    )


def post(
    session: Any,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    hints: Hints,
) -> Verdict:
    """POST one OTLP protobuf body; never raises, returns the classified outcome."""
    started = time.monotonic()
    try:
        response = session.post(
            url,
            data=body,
            headers={"Content-Type": "application/x-protobuf", **headers},
            timeout=(min(timeout, 5.0), timeout),
        )
    except Exception as exc:
        verdict = classify_exception(exc, hints)
        if verdict.code == "error" and time.monotonic() - started >= timeout * 0.95:
            return classify_exception(TimeoutError(), hints)
        return verdict
    with contextlib.suppress(Exception):
        response.close()
    return classify_status(response.status_code, response.headers, hints)


@dataclass(frozen=True)
class Attempts:
    """The outcome of a request retried as the exporter retries: the last verdict, the
    failed attempts before it, and the seconds from the first failure to the success.

    Example:
        >>> ok = Verdict("accepted", "200 from http://x/v1/traces: spans accepted.", 200)
        >>> Attempts(ok).retries
        0
    """

    verdict: Verdict
    failures: tuple[Verdict, ...] = ()
    cleared_after: float | None = None

    @property
    def retries(self) -> int:
        """How many attempts failed before the last one."""
        return len(self.failures)


# Retried by a one-shot sender (doctor's probe): transient answers, not "nothing is there".
_TRANSIENT = frozenset({"server_error", "rate_limited", "reset"})


def post_retrying(
    session: Any,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    hints: Hints,
    *,
    retries: int = 2,
) -> Attempts:
    """:func:`post`, retried with backoff after a transient failure (5xx, 429, reset),
    ``retries`` times at most, all within ``timeout`` seconds. Never raises."""
    deadline = time.monotonic() + timeout
    failures: list[Verdict] = []
    first_failure = 0.0
    while True:
        remaining = max(0.05, deadline - time.monotonic())
        verdict = post(session, url, body, headers, remaining, hints)
        if verdict.ok:
            cleared = time.monotonic() - first_failure if failures else None
            return Attempts(verdict, tuple(failures), cleared)
        if not failures:
            first_failure = time.monotonic()
        if verdict.code not in _TRANSIENT or len(failures) >= retries:
            return Attempts(verdict, tuple(failures))
        delay = (
            verdict.retry_after if verdict.retry_after is not None else 0.25 * 2 ** len(failures)
        )
        if time.monotonic() + delay >= deadline:
            return Attempts(verdict, tuple(failures))
        failures.append(verdict)
        time.sleep(delay)
