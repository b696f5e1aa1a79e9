"""Delivery: one exit deadline, honest counts, visible outages, re-init, bounded memory.

Each case runs the real exporter over loopback against ``OTLPReceiver`` (or a closed port);
the exit cases run in a child process, as a short script would.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap

import pytest
from _polling import wait_until

import truefoundry_tracing as tt
from truefoundry_tracing.testing import OTLPReceiver

KEY = "tfy-delivery-canary-7Qm2"


@tt.task(name="step")
def step(n: int) -> int:
    return n * 2


@tt.workflow(name="handle")
def handle(n: int) -> int:
    return step(n) + step(n + 1)


def ours(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "truefoundry_tracing" and r.levelno >= level
    ]


# --------------------------------------------------------------------------------------------
# a slow receiver: each span once, nothing reported lost
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_receiver_that_answers_after_8_s_gets_each_span_once_and_no_loss_is_reported(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A cold collector: the 5 s flush deadline is not the request timeout (10 s)."""
    caplog.set_level(logging.INFO, logger="truefoundry_tracing")
    receiver.slow(8.0, times=1)
    status = tt.init("cold", host=receiver.url, api_key=KEY, disable_batch=True)
    for i in range(2):
        handle(i)  # 3 spans each
    assert wait_until(lambda: status.exported == 6, timeout=30)
    assert tt.flush()
    ids = [s.span_id for s in receiver.spans]
    assert len(ids) == len(set(ids)) == 6  # each once
    assert (status.dropped, status.unconfirmed, status.retried) == (0, 0, 0)
    assert status.last_error is None
    tt.shutdown()
    assert not [m for m in ours(caplog) if "dropped" in m or "no answer" in m]


def test_an_unanswered_request_is_unconfirmed_and_its_retry_is_counted(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    receiver.max_hang_seconds = 3.0
    receiver.hang(times=1)
    status = tt.init("unanswered", host=receiver.url, api_key=KEY, disable_batch=True)
    step(1)
    assert wait_until(lambda: status.unconfirmed == 1)  # no answer: maybe arrived, not lost
    assert status.dropped == 0 and status.pending == 1
    assert wait_until(lambda: status.exported == 1)  # the retry was accepted
    assert (status.unconfirmed, status.retried, status.dropped) == (0, 1, 0)
    assert "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" in (status.last_error or "")


def test_the_request_timeout_reads_opentelemetrys_variables(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from truefoundry_tracing._exporters import request_timeout

    assert request_timeout({}) == 10.0
    assert request_timeout({"OTEL_EXPORTER_OTLP_TIMEOUT": "20"}) == 20.0
    both = {"OTEL_EXPORTER_OTLP_TIMEOUT": "20", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "30"}
    assert request_timeout(both) == 30.0
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    assert request_timeout({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "soon"}) == 10.0
    (message,) = ours(caplog)
    assert "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" in message and "Set it to" in message


# --------------------------------------------------------------------------------------------
# outages leave a record
# --------------------------------------------------------------------------------------------


def test_an_outage_that_clears_leaves_a_record_and_one_info_line(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="truefoundry_tracing")
    receiver.respond_with(503, times=2)
    status = tt.init("outage", host=receiver.url, api_key=KEY, disable_batch=True)
    step(1)
    assert wait_until(lambda: status.exported == 1)
    assert status.retried == 2 and status.dropped == 0
    assert status.last_error is not None and "503" in status.last_error
    assert status.last_error_at is not None and status.error_cleared_at is not None
    assert status.error_cleared_at >= status.last_error_at
    recovered = [m for m in ours(caplog, logging.INFO) if "recovered" in m]
    assert len(recovered) == 1 and "2 failed attempt" in recovered[0], recovered
    assert tt.flush()  # delivered in the end


def test_an_outage_s_lines_are_out_before_its_counts_move(receiver: OTLPReceiver) -> None:
    """Whoever waits on the counts (a test, a health check) finds the lines already logged: the
    warning before ``last_error`` is set, the recovery before the spans count as exported."""
    seen: list[tuple[str, str | None, int]] = []

    class Peek(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), status.last_error, status.exported))

    logger = logging.getLogger("truefoundry_tracing")
    peek, level = Peek(logging.INFO), logger.level
    logger.addHandler(peek)
    logger.setLevel(logging.INFO)
    try:
        receiver.respond_with(503, times=2)
        status = tt.init("outage", host=receiver.url, api_key=KEY, disable_batch=True)
        step(1)
        assert wait_until(lambda: status.exported == 1)
    finally:
        logger.removeHandler(peek)
        logger.setLevel(level)
    (warned,) = [(e, n) for m, e, n in seen if "503" in m and "recovered" not in m]
    (recovered,) = [(e, n) for m, e, n in seen if "recovered" in m]
    assert warned == (None, 0)  # logged, then counted
    assert recovered[1] == 0  # logged, then the span counted as exported


# --------------------------------------------------------------------------------------------
# flush() tells the truth
# --------------------------------------------------------------------------------------------


def test_flush_is_true_only_when_every_span_was_accepted(
    receiver: OTLPReceiver, closed_port: int
) -> None:
    receiver.respond_with(401, times=1)
    status = tt.init("honest", host=receiver.url, api_key=KEY)
    step(1)
    assert tt.flush() is False  # refused: dropped
    assert status.dropped == 1
    step(2)
    assert tt.flush() is True  # this one was accepted
    tt.init("honest", host=f"http://127.0.0.1:{closed_port}", api_key=KEY)
    step(3)
    assert tt.flush() is False  # nothing listens: kept for a retry, not delivered
    assert tt.status() is not None and tt.status().pending == 1  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# re-init to another destination
# --------------------------------------------------------------------------------------------


def test_reinit_to_another_destination_says_so_and_delivers_the_old_queue(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    tt.init("first", host=receiver.url, api_key=KEY)  # batched: the spans wait in the queue
    handle(1)
    tt.init("second", console=False)
    lines = [m for m in ours(caplog) if "changed the destination" in m]
    assert len(lines) == 1, lines
    assert f"{receiver.url}/api/otel/v1/traces -> nowhere" in lines[0]
    assert len(receiver.wait_for_spans(3)) == 3  # the old queue went where it was meant to
    assert KEY not in caplog.text


@pytest.mark.slow
def test_spans_the_old_destination_could_not_take_are_counted_and_reported(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    tt.init("first", host=f"http://127.0.0.1:{closed_port}", api_key=KEY, timeout=1)
    handle(1)
    tt.init("second", console=False)
    assert tt.shutdown(timeout=2) in (True, False)  # waits for the retirement, in its deadline
    lines = [m for m in ours(caplog) if "previous destination" in m]
    assert len(lines) == 1, ours(caplog)
    assert "3 spans were dropped" in lines[0] and "connection refused" in lines[0]


# --------------------------------------------------------------------------------------------
# the exit path of a short script
# --------------------------------------------------------------------------------------------

EXIT_SCRIPT = """
import atexit, json, sys, threading
connects = []
imports = {}

def audit(event, args):
    if event == "socket.connect":
        connects.append(1)
    elif event == "import" and args[0] in ("requests", "opentelemetry.proto.trace.v1.trace_pb2"):
        imports.setdefault(args[0], threading.current_thread().name)

sys.addaudithook(audit)
# registered before init(): runs after the exit flush
atexit.register(lambda: print(json.dumps({"connects": len(connects), "imports": imports})))
import truefoundry_tracing as tt

@tt.workflow(name="job")
def job(i):
    return i

tt.init("exit", console=False)
for i in range(5):
    job(i)
FLUSH
"""


def run_exit_script(env: dict[str, str], flush: bool) -> tuple[dict[str, object], str]:
    import json

    script = EXIT_SCRIPT.replace("FLUSH", "print('flushed', tt.flush())" if flush else "")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_"))}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout + proc.stderr


@pytest.mark.parametrize("flush", [False, True], ids=["exit", "flush-then-exit"])
def test_a_refused_collector_costs_one_attempt_at_exit_and_the_line_says_why(
    closed_port: int, flush: bool
) -> None:
    env = {"TFY_HOST": f"http://127.0.0.1:{closed_port}", "TFY_API_KEY": KEY}
    seen, output = run_exit_script(env, flush)
    assert seen["connects"] == 1  # no backoff, no second try for shutdown after flush's
    if flush:
        assert "flushed False" in output
    (line,) = [x for x in output.splitlines() if "were dropped" in x]
    assert "5 spans were dropped and 0 exported" in line
    assert "connection refused" in line and "TFY_HOST" in line  # the cause and the fix
    assert "kept and retried" not in line
    if not flush:  # at exit, the exit line alone speaks: no "kept and retried" just before it
        assert "kept and retried" not in output
    assert KEY not in output


def test_exporter_imports_load_in_the_background_after_init(receiver: OTLPReceiver) -> None:
    env = {"TFY_TRACING_ENDPOINT": receiver.url + "/v1/traces"}
    seen, _ = run_exit_script(env, flush=False)
    imports = seen["imports"]
    assert isinstance(imports, dict)
    # loaded by the preload thread right after init(), or by the exporter's own thread when
    # the script ends before that finished; never by the app's thread
    assert set(imports) == {"requests", "opentelemetry.proto.trace.v1.trace_pb2"}, imports
    assert "MainThread" not in imports.values(), imports
    assert imports["requests"] == "tfy-tracing-preload", imports
    assert len(receiver.wait_for_spans(5)) == 5


def test_a_local_collector_without_a_key_works_without_a_warning(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status = tt.init("via-collector", endpoint=receiver.url + "/v1/traces")
    handle(1)
    assert tt.flush()
    assert status.destination == "otlp" and status.exported == 3
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert all("authorization" not in r.headers for r in receiver.requests)


# --------------------------------------------------------------------------------------------
# memory while the collector is down
# --------------------------------------------------------------------------------------------


def test_the_retry_buffer_is_bounded_in_bytes_and_counts_what_it_lets_go(
    closed_port: int,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from truefoundry_tracing import _exporters
    from truefoundry_tracing._transport import Hints

    url = f"http://127.0.0.1:{closed_port}/v1/traces"
    exporter = _exporters.OTLPExporter(url, {}, timeout=1, hints=Hints(url=url))
    tracer = TracerProvider().get_tracer("memory")
    total = 0
    for _ in range(40):
        batch = []
        for _ in range(50):
            span = tracer.start_span("big", attributes={"payload": "x" * 4000})
            span.end()
            batch.append(span)
        exporter.export(batch)
        total += len(batch)
    stats = exporter.stats
    assert exporter._buffered_bytes <= _exporters.MAX_PENDING_BYTES
    assert stats.pending < _exporters.MAX_PENDING  # the bytes bound came first
    assert stats.dropped + stats.pending == total  # every span is accounted for
    assert stats.drop_cause is not None and "retry buffer was full" in stats.drop_cause
    exporter.shutdown(0)


def test_doctor_shows_an_outage_that_cleared_as_status_does(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import json

    from truefoundry_tracing.cli import main

    monkeypatch.setenv("TFY_HOST", receiver.url)
    monkeypatch.setenv("TFY_API_KEY", KEY)
    receiver.respond_with(503, times=1)
    out = io.StringIO()
    assert main(["doctor"], out=out) == 0
    text = out.getvalue()
    assert "Probe: OK" in text
    assert re.search(r"after 1 failed attempt\(s\); cleared after [\d.]+ ms; last error: 503", text)
    receiver.respond_with(503, times=1)
    out = io.StringIO()
    assert main(["doctor", "--json"], out=out) == 0
    doc = json.loads(out.getvalue())
    assert doc["retries"] == 1 and doc["cleared_after_ms"] is not None
    assert "503" in doc["last_error"] and KEY not in out.getvalue()
