"""Collector faults: what the app and the user see when the OTLP endpoint misbehaves.

Every case runs the real exporter over loopback against the project's ``OTLPReceiver``
scripted to fail (or against a closed port, or over TLS with an untrusted certificate). For
each fault the tests prove: decorated calls return normally and never do network I/O on the
app's thread; one warning per cause names the cause, the URL and the fix, never the key;
retryable faults are retried with backoff (honouring Retry-After) and a short outage heals on
its own, delivering each span exactly once; non-retryable faults drop the spans, and every
dropped span is counted on the status object and in one line at shutdown.

``tests/test_init.py`` covers the first 401 and 503 cases and the shutdown bounds; this file is
the full matrix.
"""

from __future__ import annotations

import contextlib
import email.utils
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from _polling import wait_until
from _ports import HeldPort

import truefoundry_tracing as tt
from truefoundry_tracing.testing import OTLPReceiver

KEY = "tfy-canary-key-Rz8Lq2Vn6"
PROJECT = "tenant:tracing-project:faults"
PATH = "/api/otel/v1/traces"
CALLS = 10
SHUTDOWN_LINE = re.compile(r"\d+ spans? (were|was) dropped and \d+ exported")
Watch = Callable[[], contextlib.AbstractContextManager[list[str]]]


@tt.task(name="step")
def step(n: int) -> int:
    return n * 2


@tt.workflow(name="handle")
def handle(n: int) -> int:
    return step(n) + 1


@tt.tool(name="ping")
def ping(n: int) -> int:
    return n + 1


@dataclass(frozen=True)
class Fault:
    """One way the collector misbehaves, and what the single warning about it must say."""

    name: str
    says: tuple[str, ...]
    retryable: bool
    arrange: Callable[[OTLPReceiver], None] = lambda receiver: None
    tls: bool = False
    down: bool = False


def _status(code: int, **headers: str) -> Callable[[OTLPReceiver], None]:
    return lambda receiver: receiver.respond_with(code, headers=headers)


FAULTS = [
    Fault("down", ("connection refused", "TFY_HOST"), True, down=True),
    Fault(
        "hang",
        ("no answer", "within 1 s", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "may have arrived"),
        True,
        OTLPReceiver.hang,
    ),
    Fault("401", ("401", "API key", "TFY_API_KEY"), False, _status(401)),
    Fault("403", ("403", "TFY_TRACING_PROJECT"), False, _status(403)),
    Fault("404", ("404", "/api/otel/v1/traces", "TFY_HOST"), False, _status(404)),
    Fault("413", ("413", "TFY_TRACING_DISABLE_BATCH"), False, _status(413)),
    Fault("429", ("429", "rate limited", "retried"), True, _status(429, **{"Retry-After": "1"})),
    Fault("500", ("500", "dropped"), False, _status(500)),
    Fault("503", ("503", "temporarily unavailable", "retried"), True, _status(503)),
    Fault("reset", ("closed before an answer", "retried"), True, OTLPReceiver.reset_connection),
    Fault("tls", ("TLS", "not trusted", "REQUESTS_CA_BUNDLE"), False, tls=True),
]
BY_NAME = {fault.name: fault for fault in FAULTS}
RETRYABLE = [fault.name for fault in FAULTS if fault.retryable]
NOT_RETRYABLE = [fault.name for fault in FAULTS if not fault.retryable]


@contextlib.contextmanager
def collector(fault: Fault, closed_port: int) -> Iterator[tuple[str, OTLPReceiver | None]]:
    """The faulty collector's base URL, and its receiver (None when nothing listens)."""
    if fault.down:
        yield f"http://127.0.0.1:{closed_port}", None
        return
    with OTLPReceiver(tls=fault.tls) as receiver:
        receiver.max_hang_seconds = 5.0  # held requests end unanswered, never accepted late
        fault.arrange(receiver)
        yield receiver.url, receiver


def configure_by_env(mp: pytest.MonkeyPatch, url: str, timeout: float = 1.0) -> tt.TracingStatus:
    mp.setenv("TFY_HOST", url)
    mp.setenv("TFY_API_KEY", KEY)
    mp.setenv("TFY_TRACING_PROJECT", PROJECT)
    mp.setenv("TFY_TRACING_DISABLE_BATCH", "true")
    mp.setenv("TFY_TRACING_TIMEOUT", str(timeout))
    mp.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")  # each request (default 10 s)
    return tt.init("faults")


def cause_warnings(caplog: pytest.LogCaptureFixture, url: str) -> list[str]:
    """Warnings about this collector, except the summary line of shutdown."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "truefoundry_tracing"
        and r.levelno >= logging.WARNING
        and url in r.getMessage()
        and not SHUTDOWN_LINE.search(r.getMessage())
    ]


def shutdown_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "truefoundry_tracing" and SHUTDOWN_LINE.search(r.getMessage())
    ]


def watched_calls(watch: Watch) -> list[str]:
    """Run CALLS decorated calls on this thread; the network operations it made meanwhile."""
    with watch() as seen:
        for i in range(CALLS):
            assert handle(i) == 2 * i + 1
    return list(seen)


# --------------------------------------------------------------------------------------------
# the app never raises and never waits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*BY_NAME, "slow"])
def test_decorated_calls_never_raise_nor_wait_on_the_collector(
    name: str,
    receiver: OTLPReceiver,
    closed_port: int,
    network_on_this_thread: Watch,
) -> None:
    """Calls return their value and make no network I/O on the app's thread.

    Waiting is ruled out by structure, not by timing (a timed bound flaked on a loaded
    machine): the audit hook sees every socket operation of this thread, and in the hang and
    slow cases the calls complete while the collector still holds an export open.
    """
    tt.init("healthy", host=receiver.url, api_key=KEY, disable_batch=True, timeout=1)
    handle(-1)  # warm up
    healthy_io = watched_calls(network_on_this_thread)
    assert receiver.wait_for_spans(2 * (CALLS + 1))
    assert healthy_io == []  # the watch works both ways: see test_the_network_watch_sees_...

    fault = BY_NAME.get(name) or Fault("slow", (), False, lambda r: r.slow(1.0))
    with collector(fault, closed_port) as (url, faulty):
        timeout = 3 if name == "slow" else 1
        status = tt.init("faulty", host=url, api_key=KEY, disable_batch=True, timeout=timeout)
        handle(-1)
        if name == "hang":
            assert faulty is not None and wait_until(lambda: faulty.hanging >= 1)
        io = watched_calls(network_on_this_thread)
        if name == "hang":
            assert faulty is not None and faulty.hanging >= 1  # still held: we did not wait
        assert io == []
        if name == "slow":
            assert faulty is not None and faulty.requests == []  # no answer yet, calls done
        else:
            assert wait_until(lambda: status.last_error is not None)  # the fault was hit
            assert KEY not in (status.last_error or "")
        tt.shutdown(timeout=1)  # while the collector is still there to fail fast


def test_the_network_watch_sees_an_export_on_the_app_thread(
    receiver: OTLPReceiver, network_on_this_thread: Watch
) -> None:
    """Control for the test above: a synchronous export on this thread is detected."""
    from truefoundry_tracing._exporters import OTLPExporter
    from truefoundry_tracing._transport import Hints

    url = receiver.url + PATH
    exporter = OTLPExporter(url, {}, timeout=1, hints=Hints(url=url))
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with network_on_this_thread() as seen:
        provider.get_tracer("control").start_span("sync").end()
    provider.shutdown()
    assert "http.client.send" in seen


# --------------------------------------------------------------------------------------------
# one warning per cause, with the fix; drops counted; one line at shutdown
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BY_NAME))
def test_one_warning_per_cause_names_the_fix_and_drops_are_counted(
    name: str,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="truefoundry_tracing")
    fault = BY_NAME[name]
    spans = 3
    with collector(fault, closed_port) as (url, receiver):
        status = configure_by_env(monkeypatch, url)
        stats = status._stats  # failed_requests is not public; it only paces this test
        for i in range(spans):
            assert ping(i) == i + 1
        assert wait_until(lambda: stats.failed_requests >= 2, timeout=6)  # several failures
        if fault.retryable:
            assert wait_until(lambda: status.pending == spans)
        else:
            assert wait_until(lambda: status.dropped == spans)

        messages = cause_warnings(caplog, url + PATH)
        assert len(messages) == 1, messages
        for words in fault.says:
            assert words in messages[0], (words, messages[0])
        assert status.last_error is not None and status.last_error in messages[0]
        assert status.exported == 0
        if fault.retryable:  # kept for a retry, not yet given up on
            assert status.pending == spans and status.dropped == 0
        else:  # given up on at once, each span sent exactly once
            assert status.dropped == spans and status.pending == 0
            if receiver is not None and not fault.tls:  # TLS: no request got through
                sent = [s.span_id for r in receiver.requests for s in r.spans]
                assert len(sent) == len(set(sent)) == spans

        tt.shutdown(timeout=1)
    assert status.pending == 0
    lines = shutdown_lines(caplog)
    assert len(lines) == 1, lines
    if name == "hang":  # sent, never answered: it may have arrived, so it is not a loss
        assert (status.dropped, status.unconfirmed) == (0, spans)
        assert f"{spans} spans were sent but got no answer in time" in lines[0]
    else:
        assert (status.dropped, status.unconfirmed) == (spans, 0)
        assert f"{spans} spans were dropped and 0 exported" in lines[0]
        assert url + PATH in lines[0]  # with the cause
        assert "kept and retried" not in lines[0]  # never "dropped" and "kept" at once
    assert KEY not in caplog.text and KEY not in repr(status) and KEY not in status.describe()
    assert len(cause_warnings(caplog, url + PATH)) == 1  # shutdown's retry did not warn again


def test_the_dropped_line_is_logged_once_even_when_shutdown_runs_again_at_exit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, receiver: OTLPReceiver
) -> None:
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    receiver.respond_with(401)
    status = configure_by_env(monkeypatch, receiver.url)
    ping(1)
    assert wait_until(lambda: status.dropped == 1)
    tt.shutdown(timeout=1)
    tt.shutdown(timeout=1)  # what the atexit hook does after the app's own shutdown()
    assert len(shutdown_lines(caplog)) == 1


# --------------------------------------------------------------------------------------------
# retries: backoff, Retry-After, recovery, exactly once
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RETRYABLE)
def test_spans_from_a_short_outage_arrive_once_after_recovery(
    name: str,
    held_port: HeldPort,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No new span, no flush: the retry timer alone delivers the spans kept during the outage."""
    caplog.set_level(logging.INFO, logger="truefoundry_tracing")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    fault = BY_NAME[name]
    spans = 3
    with contextlib.ExitStack() as stack:
        url, receiver = stack.enter_context(collector(fault, held_port.port))
        if name == "hang":
            assert receiver is not None
            receiver.reset_faults()
            receiver.hang(times=2)  # ends by itself; never accepted after the client gave up
        status = tt.init("outage", host=url, api_key=KEY, disable_batch=True, timeout=1)
        for i in range(spans):
            assert ping(i) == i + 1
        assert wait_until(lambda: status.pending == spans, timeout=4)
        assert status.last_error is not None

        if fault.down:  # the collector comes up on the port the exporter keeps trying
            receiver = stack.enter_context(OTLPReceiver(port=held_port.release()))
        elif name != "hang":
            assert receiver is not None
            receiver.reset_faults()
        assert receiver is not None
        arrived = receiver.wait_for_spans(spans, timeout=10)
        assert wait_until(lambda: status.exported == spans and status.pending == 0)
        assert tt.flush(timeout=1)
        ids = [s.span_id for s in receiver.spans]
        assert sorted(s.name for s in arrived) == ["ping.tool"] * spans
        assert len(ids) == len(set(ids)) == spans  # exactly once
        assert status.dropped == 0

        failed = [r.received_at for r in receiver.requests if not r.ok]
        gaps = [b - a for a, b in itertools.pairwise(failed)]
        floor = 0.9 if name == "429" else 0.2  # Retry-After: 1, else backoff from 0.25 s
        assert all(g >= floor for g in gaps), gaps  # never a tight loop
    assert any("recovered" in r.getMessage() for r in caplog.records)


def test_backoff_grows_while_the_collector_stays_down(receiver: OTLPReceiver) -> None:
    receiver.respond_with(503)
    status = tt.init("backoff", host=receiver.url, api_key=KEY, disable_batch=True, timeout=1)
    ping(1)
    receiver.wait_for_requests(3, timeout=8)  # at 0, 0.25 and 0.75 s
    receiver.reset_faults()
    receiver.wait_for_spans(1, timeout=8)
    times = [r.received_at for r in receiver.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3  # the last one delivered the span
    assert all(later > 1.5 * earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert wait_until(lambda: status.exported == 1) and status.dropped == 0


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_longer_than_the_timeout_pauses_every_export(
    receiver: OTLPReceiver, form: str
) -> None:
    """Spans that end during the pause wait for it too, then go in one request."""
    when = "2" if form == "seconds" else email.utils.formatdate(time.time() + 3, usegmt=True)
    receiver.respond_with(429, times=1, headers={"Retry-After": when})
    status = tt.init("pause", host=receiver.url, api_key=KEY, disable_batch=True, timeout=1)
    ping(1)
    receiver.wait_for_requests(1)
    ping(2)
    ping(3)
    spans = receiver.wait_for_spans(3, timeout=8)
    requests = receiver.requests
    assert [r.status for r in requests] == [429, 200]
    assert len(spans) == 3
    assert requests[1].received_at - requests[0].received_at >= 1.5
    assert wait_until(lambda: status.exported == 3) and status.dropped == 0


@pytest.mark.parametrize("garbage", ["soon", "Wed, 99 Foo 2015 07:28:00 GMT"])
def test_unusable_retry_after_falls_back_to_backoff(receiver: OTLPReceiver, garbage: str) -> None:
    receiver.respond_with(429, times=2, headers={"Retry-After": garbage})
    status = tt.init("garbage", host=receiver.url, api_key=KEY, disable_batch=True, timeout=1)
    ping(1)
    receiver.wait_for_spans(1, timeout=8)
    assert [r.status for r in receiver.requests] == [429, 429, 200]
    assert wait_until(lambda: status.exported == 1) and status.dropped == 0


# --------------------------------------------------------------------------------------------
# slow collector, and the fix for a private certificate authority
# --------------------------------------------------------------------------------------------


def test_a_slow_collector_gets_everything_without_a_warning(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    receiver.slow(1.0)
    status = tt.init("slow", host=receiver.url, api_key=KEY, timeout=3)  # batched
    for i in range(5):
        assert handle(i) == 2 * i + 1
    assert tt.flush(timeout=3)
    spans = receiver.wait_for_spans(10)
    assert len({s.span_id for s in spans}) == len(spans) == 10
    assert [r.status for r in receiver.requests] == [200]
    assert wait_until(lambda: status.exported == 10)
    assert status.dropped == 0 and status.last_error is None
    assert cause_warnings(caplog, receiver.url) == []


def test_a_private_ca_is_trusted_through_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The TLS warning's advice works: REQUESTS_CA_BUNDLE pointing at the CA's PEM file."""
    with OTLPReceiver(tls=True) as receiver:
        assert receiver.cafile is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", receiver.cafile)
        status = tt.init("private-ca", host=receiver.url, api_key=KEY, disable_batch=True)
        ping(1)
        assert [s.name for s in receiver.wait_for_spans(1)] == ["ping.tool"]
        assert receiver.url.startswith("https://")
        assert wait_until(lambda: status.exported == 1)
        assert status.last_error is None


# --------------------------------------------------------------------------------------------
# failures that are the configuration's, not the collector's
# --------------------------------------------------------------------------------------------


def test_an_export_timeout_shorter_than_the_deadline_margin_still_sends(
    receiver: OTLPReceiver,
) -> None:
    status = tt.init("quick", host=receiver.url, api_key=KEY, disable_batch=True, timeout=0.05)
    ping(1)
    assert [s.name for s in receiver.wait_for_spans(1)] == ["ping.tool"]
    assert wait_until(lambda: status.exported == 1)


def test_a_header_http_cannot_carry_is_explained_once_and_dropped(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A pasted '…' in a header fails before any byte is sent: no retry, one clear warning.

    (``resolve()`` should refuse such values up front: see test_fuzz.py's strict xfail.)
    """
    from opentelemetry.sdk.trace import TracerProvider

    from truefoundry_tracing._exporters import ExportStats, OTLPExporter
    from truefoundry_tracing._transport import Hints

    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    url = receiver.url + PATH
    headers = {"Authorization": f"Bearer {KEY}", "TFY-Tracing-Project": "caf\u00e9-\u2026"}
    exporter = OTLPExporter(url, headers, timeout=1, hints=Hints(url=url), stats=ExportStats())
    tracer = TracerProvider().get_tracer("unsendable")
    spans = []
    for name in ("a", "b"):
        span = tracer.start_span(name)
        span.end()
        spans.append(span)
    for span in spans:
        exporter.export([span])
    exporter.shutdown()
    assert receiver.requests == []
    assert (exporter.stats.dropped, exporter.stats.pending, exporter.stats.exported) == (2, 0, 0)
    messages = cause_warnings(caplog, url)
    assert len(messages) == 1, messages
    assert "could not build a request" in messages[0] and "TFY_TRACING_PROJECT" in messages[0]
    assert KEY not in caplog.text
