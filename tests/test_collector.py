"""The app behind a real OpenTelemetry collector: Rotel, installed from PyPI (the ``rotel`` wheel).

app --OTLP/HTTP--> Rotel (loopback) --OTLP/HTTP + headers--> OTLPReceiver (stands in for
TrueFoundry). Rotel runs with the configuration shown on docs/collector.md, read from the page,
with only its addresses and placeholders filled in.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from _polling import wait_until
from _ports import free_port, listener_pid_owns

import truefoundry_tracing as tt
from truefoundry_tracing.testing import OTLPReceiver

pytestmark = pytest.mark.slow

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "collector.md"
KEY = "tfy-collector-canary-Pd3s"
PROJECT = "tenant:tracing-project:collector"


def doc_block(first_line: str) -> str:
    """The fenced block of docs/collector.md whose first line starts with ``first_line``."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", DOCS.read_text(), flags=re.S):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"docs/collector.md has no block starting with {first_line!r}")


def rotel_config() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in doc_block("# rotel.env").splitlines()]
    return {k: v for k, v in (p for p in pairs if len(p) == 2) if not k.startswith("#")}


def _agent() -> str:
    rotel = pytest.importorskip("rotel", reason="rotel is in the test extra (pip install rotel)")
    path = os.path.join(os.path.dirname(rotel.__file__), "rotel-agent")
    try:
        subprocess.run([path, "version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"rotel's agent binary cannot run on this platform: {exc}")
    return path


class Rotel:
    """One Rotel agent in the foreground, on loopback ports, forwarding to ``upstream``."""

    def __init__(self, upstream: str) -> None:
        self.binary = _agent()
        self.http, self.grpc = free_port(), free_port()
        env = rotel_config()
        assert env["ROTEL_OTLP_HTTP_ENDPOINT"].startswith("127.0.0.1:")  # loopback only
        env["ROTEL_OTLP_HTTP_ENDPOINT"] = f"127.0.0.1:{self.http}"
        env["ROTEL_OTLP_GRPC_ENDPOINT"] = f"127.0.0.1:{self.grpc}"
        env["ROTEL_OTLP_EXPORTER_ENDPOINT"] = re.sub(
            r"^https://[^/]+", upstream, env["ROTEL_OTLP_EXPORTER_ENDPOINT"]
        )
        headers = env["ROTEL_OTLP_EXPORTER_CUSTOM_HEADERS"]
        env["ROTEL_OTLP_EXPORTER_CUSTOM_HEADERS"] = headers.replace("<TFY_API_KEY>", KEY).replace(
            "<TFY_TRACING_PROJECT>", PROJECT
        )
        self.env = {"PATH": os.environ.get("PATH", ""), **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http}/v1/traces"

    def start(self, *, same_ports: bool = False) -> None:
        """Start Rotel and wait until it (not another test's server) listens on its port.

        Ports another process took meanwhile are replaced, unless ``same_ports`` (a restart:
        the app already sends to this one).
        """
        for _ in range(1 if same_ports else 5):
            self.proc = subprocess.Popen(
                [self.binary, "start"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                if listener_pid_owns(self.proc.pid, self.http):
                    return
                time.sleep(0.05)
            self.stop()
            # Taken by another test's server between free_port() and Rotel's bind: new ports.
            self.http, self.grpc = free_port(), free_port()
            self.env["ROTEL_OTLP_HTTP_ENDPOINT"] = f"127.0.0.1:{self.http}"
            self.env["ROTEL_OTLP_GRPC_ENDPOINT"] = f"127.0.0.1:{self.grpc}"
        raise AssertionError(f"rotel did not start listening on 127.0.0.1:{self.http} within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@pytest.fixture
def rotel(receiver: OTLPReceiver) -> Iterator[Rotel]:
    agent = Rotel(receiver.url)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@tt.task(name="lookup")
def lookup(n: int) -> int:
    return n + 1


@tt.workflow(name="answer")
def answer(n: int) -> int:
    return lookup(n) + lookup(n + 1)


def run_threads(threads: int, calls: int, start: int = 0) -> None:
    def work(t: int) -> None:
        for i in range(calls):
            answer(start + t * calls + i)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def test_every_span_arrives_once_with_its_parent_and_the_collectors_headers(
    rotel: Rotel, receiver: OTLPReceiver
) -> None:
    status = tt.init("behind-rotel", endpoint=rotel.endpoint, console=False)
    run_threads(8, 25)  # 200 workflows, 600 spans
    assert tt.flush()
    spans = receiver.wait_for_spans(600, timeout=30)
    ids = [s.span_id for s in spans]
    assert len(ids) == len(set(ids)) == 600
    by_id = {s.span_id: s for s in spans}
    for span in spans:
        if span.name == "lookup.task":
            parent = by_id[span.parent_id or ""]
            assert parent.name == "answer.workflow" and parent.trace_id == span.trace_id
    for request in receiver.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["tfy-tracing-project"] == PROJECT
    assert status.exported == 600 and status.dropped == 0


def test_a_collector_restart_in_the_middle_of_a_run_loses_nothing(
    rotel: Rotel, receiver: OTLPReceiver
) -> None:
    status = tt.init("restart", endpoint=rotel.endpoint, console=False, disable_batch=True)
    run_threads(4, 10)
    assert wait_until(lambda: status.exported == 120, timeout=30)
    assert len(receiver.wait_for_spans(120)) == 120
    rotel.stop()  # the app keeps running: its spans are kept while nothing listens
    run_threads(4, 10, start=1000)
    assert wait_until(lambda: status.pending > 0, timeout=30)
    rotel.start(same_ports=True)
    assert wait_until(lambda: status.exported == 240, timeout=30)
    spans = receiver.wait_for_spans(240, timeout=30)
    assert len({s.span_id for s in spans}) == len(spans) == 240
    assert status.dropped == 0 and status.error_cleared_at is not None


def test_a_frozen_collector_never_holds_the_app_past_its_deadline(
    rotel: Rotel, receiver: OTLPReceiver
) -> None:
    status = tt.init("frozen", endpoint=rotel.endpoint, console=False, timeout=2)
    run_threads(2, 5)
    assert tt.flush()
    assert len(receiver.wait_for_spans(30, timeout=30)) == 30  # they went through Rotel
    assert rotel.proc is not None
    rotel.proc.send_signal(signal.SIGSTOP)  # accepts connections (kernel), never answers
    run_threads(2, 5, start=100)
    started = time.monotonic()
    assert tt.flush() is False  # honest: not delivered
    done = tt.shutdown()  # shares the deadline flush() already spent on the same request
    spent = time.monotonic() - started
    assert done is False
    assert spent < 2 * 2 + 5, spent  # one deadline (flush's), never stacked; generous for CI
    assert status.exported == 30
    assert status.unconfirmed + status.dropped == 30  # every span accounted for


def test_the_opentelemetry_collector_configuration_matches_the_tested_one() -> None:
    """otelcol is not on PyPI: its page config must say what the Rotel one (run above) says."""
    yaml = doc_block("# otelcol.yaml")
    rotel = rotel_config()
    assert f"endpoint: {rotel['ROTEL_OTLP_HTTP_ENDPOINT']}" in yaml  # the same loopback port
    assert f"endpoint: {rotel['ROTEL_OTLP_EXPORTER_ENDPOINT']}" in yaml
    assert "otlphttp/truefoundry" in yaml
    assert "Authorization: Bearer ${env:TFY_API_KEY}" in yaml
    assert "TFY-Tracing-Project: ${env:TFY_TRACING_PROJECT}" in yaml
    assert "Authorization=Bearer <TFY_API_KEY>" in rotel["ROTEL_OTLP_EXPORTER_CUSTOM_HEADERS"]
