"""Process lifecycle: every way a process ends or forks, each in a real child process.

The child sends to a local OTLP receiver in batch mode (spans wait in the queue, as in
production), so a span arrives only if the exit path really flushed it.
"""

from __future__ import annotations

import collections
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from truefoundry_tracing.testing import OTLPReceiver

KEY = "tfy-lifecycle-canary-0c1d2e3f"

# Generous: the bound is what is tested, and a loaded CI machine must not make it flaky.
TIMEOUT = 10.0

PRELUDE = f"""
import os, sys, time
TIMEOUT = {TIMEOUT}
import truefoundry_tracing as tt
from truefoundry_tracing import task, workflow

status = tt.init("lifecycle", console=False, timeout=TIMEOUT)

@task
def step(i):
    return i + 1

@workflow(name="wf")
def wf(label, n=3):
    return [step(i) for i in range(n)]
"""


def run_child(
    receiver: OTLPReceiver, body: str, *, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    # A file, not ``-c``: multiprocessing's spawn re-imports the main module by its path.
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp, "app.py")
        path.write_text(PRELUDE + textwrap.dedent(body))
        return subprocess.run(
            [sys.executable, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_environment(receiver, env),
        )


def child_environment(receiver: OTLPReceiver, env: dict[str, str] | None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_"))}
    out.update({"TFY_HOST": receiver.url, "TFY_API_KEY": KEY, **(env or {})})
    return out


def workflow_labels(receiver: OTLPReceiver) -> list[str]:
    labels = []
    for span in receiver.spans:
        if span.name == "wf.workflow":
            labels.append(str(span.attributes.get("traceloop.entity.input")))
    return labels


def assert_no_duplicates(receiver: OTLPReceiver) -> None:
    ids = collections.Counter(span.span_id for span in receiver.spans)
    assert [i for i, n in ids.items() if n > 1] == []


def test_normal_exit_loses_no_spans(receiver: OTLPReceiver) -> None:
    proc = run_child(receiver, "for i in range(20):\n    wf(f'run-{i}')\n")
    assert proc.returncode == 0, proc.stderr
    assert len(receiver.spans) == 20 * 4
    assert_no_duplicates(receiver)
    assert KEY not in proc.stdout + proc.stderr


def test_sys_exit_flushes(receiver: OTLPReceiver) -> None:
    proc = run_child(receiver, "wf('before-exit')\nsys.exit(3)\n")
    assert proc.returncode == 3, proc.stderr
    assert len(receiver.spans) == 4


def test_uncaught_exception_flushes_and_records_the_error(receiver: OTLPReceiver) -> None:
    proc = run_child(
        receiver,
        """
        @workflow(name="boom")
        def boom():
            raise RuntimeError("unhandled in main")

        wf("first")
        boom()
        """,
    )
    assert proc.returncode == 1
    assert "RuntimeError: unhandled in main" in proc.stderr
    names = sorted(span.name for span in receiver.spans)
    assert names.count("boom.workflow") == 1 and names.count("wf.workflow") == 1
    (failed,) = [span for span in receiver.spans if span.name == "boom.workflow"]
    assert failed.status == "ERROR"


SIGTERM_BODY = """
for i in range(5):
    wf(f"before-term-{i}")
print("ready", flush=True)
time.sleep(60)
"""


def run_until_sigterm(
    receiver: OTLPReceiver, body: str, env: dict[str, str] | None = None
) -> tuple[int, float]:
    child_env = child_environment(receiver, env)
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        return code, time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_flushes_within_the_bound_and_still_ends_the_process(
    receiver: OTLPReceiver,
) -> None:
    code, elapsed = run_until_sigterm(receiver, SIGTERM_BODY)
    assert code == -signal.SIGTERM  # ended by the signal, as without tracing
    assert elapsed < TIMEOUT + 5  # the configured bound, plus slack for a loaded machine
    assert len(receiver.spans) == 5 * 4


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_handling_can_be_turned_off(receiver: OTLPReceiver) -> None:
    code, _ = run_until_sigterm(receiver, SIGTERM_BODY, {"TFY_TRACING_HANDLE_SIGTERM": "false"})
    assert code == -signal.SIGTERM
    assert receiver.spans == []  # batch queue lost: the handler above is what saves it


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_an_apps_own_sigterm_handler_is_never_replaced(receiver: OTLPReceiver) -> None:
    proc = run_child(
        receiver,
        """
        import signal
        def mine(signum, frame):
            print("app handler ran", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, mine)
        tt.init("lifecycle-own", console=False, timeout=TIMEOUT)
        assert signal.getsignal(signal.SIGTERM) is mine
        wf("own-handler")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "app handler ran" in proc.stdout
    assert len(receiver.spans) == 4  # the app's sys.exit() ran the exit flush


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_prefork_workers_like_gunicorn_send_everything_once(receiver: OTLPReceiver) -> None:
    proc = run_child(
        receiver,
        """
        wf("parent-before-fork")  # still queued in the parent's batch processor at fork
        children = []
        for n in range(3):
            pid = os.fork()
            if pid == 0:
                for i in range(2):
                    wf(f"child-{n}-{i}")
                sys.exit(0)  # as a gunicorn worker ends
            children.append(pid)
        for pid in children:
            _, code = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(code) == 0
        wf("parent-after-fork")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    labels = workflow_labels(receiver)
    expected = ["parent-before-fork", "parent-after-fork"] + [
        f"child-{n}-{i}" for n in range(3) for i in range(2)
    ]
    assert len(labels) == len(expected), labels
    for name in expected:
        assert sum(f'"{name}"' in label for label in labels) == 1, (name, labels)
    assert_no_duplicates(receiver)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_flush(receiver: OTLPReceiver, method: str) -> None:
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"start method {method} is not available on this platform")
    proc = run_child(
        receiver,
        f"""
        import multiprocessing

        def child(n):
            import truefoundry_tracing as tt2
            if {method!r} == "spawn":
                tt2.init("lifecycle-child", console=False, timeout=TIMEOUT)  # a new interpreter
            wf(f"mp-child-{{n}}")

        if __name__ == "__main__":
            ctx = multiprocessing.get_context({method!r})
            procs = [ctx.Process(target=child, args=(n,)) for n in range(2)]
            for p in procs:
                p.start()
            for p in procs:
                p.join(60)
                assert p.exitcode == 0, p.exitcode
        """,
    )
    assert proc.returncode == 0, proc.stderr
    labels = workflow_labels(receiver)
    assert sum("mp-child-0" in label for label in labels) == 1, labels
    assert sum("mp-child-1" in label for label in labels) == 1, labels
    assert_no_duplicates(receiver)
