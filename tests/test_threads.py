"""Threads started inside a span join its trace, and ``init()`` stays cheap to start.

``init()`` carries the trace context into ``threading.Thread``, ``threading.Timer`` and
``ThreadPoolExecutor`` work (truefoundry_tracing._threads) without importing OpenTelemetry's
threading instrumentation, and finds installed libraries with one directory scan instead of an
``importlib.metadata`` search per library.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import truefoundry_tracing as tt
from truefoundry_tracing import _instruments, task, workflow
from truefoundry_tracing.testing import CapturedSpans

ROOT = Path(__file__).resolve().parent.parent


@task
def leaf(n: int) -> int:
    return n + 1


def _children_of_root(spans: CapturedSpans, root_name: str) -> list[str]:
    (root,) = [s for s in spans if s.name == root_name]
    assert all(s.trace_id == root.trace_id for s in spans)
    return sorted(s.name for s in spans if s.parent_id == root.span_id)


def test_thread_timer_and_pool_work_started_in_a_span_join_its_trace(
    tfy_spans: CapturedSpans,
) -> None:
    tt.init("threads", console=False)

    @workflow(name="fan_out")
    def fan_out() -> list[int]:
        out: list[int] = []
        thread = threading.Thread(target=lambda: out.append(leaf(1)))
        timer = threading.Timer(0.0, lambda: out.append(leaf(2)))
        thread.start()
        timer.start()
        with ThreadPoolExecutor(2) as pool:
            out.extend(pool.map(leaf, [3, 4]))
            out.append(pool.submit(leaf, 5).result())
        thread.join()
        timer.join()
        return sorted(out)

    assert fan_out() == [2, 3, 4, 5, 6]
    assert _children_of_root(tfy_spans, "fan_out.workflow") == ["leaf.task"] * 5


def test_a_thread_started_outside_any_span_starts_its_own_trace(
    tfy_spans: CapturedSpans,
) -> None:
    tt.init("threads", console=False)
    thread = threading.Thread(target=leaf, args=(1,))
    thread.start()
    thread.join()
    (span,) = tfy_spans
    assert span.parent_id is None


def _fresh_init(code: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_init_loads_no_threading_instrumentation_packaging_metadata_or_wrapt() -> None:
    result = _fresh_init(
        "import json, sys, threading\n"
        "import truefoundry_tracing as tt\n"
        "st = tt.init(app_name='x', console=False)\n"
        "names = ('opentelemetry.instrumentation.threading', 'packaging.requirements',\n"
        "         'opentelemetry.instrumentation.dependencies', 'importlib.metadata', 'wrapt')\n"
        "print(json.dumps({'loaded': sorted(m for m in names if m in sys.modules),\n"
        "    'patched': threading.Thread.start.__module__}))\n"
    )
    assert result == {"loaded": [], "patched": "truefoundry_tracing._threads"}


def test_init_loads_no_framework_code_for_frameworks_not_in_use() -> None:
    """What corrects or records a framework is loaded when that framework is instrumented;
    init() itself needs only the machinery _instruments imports."""
    result = _fresh_init(
        "import json, sys\n"
        "import truefoundry_tracing as tt\n"
        "st = tt.init(app_name='x', console=False)\n"
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.startswith(\n"
        "    'truefoundry_tracing._frameworks.') and m.rsplit('.', 1)[1] not in\n"
        "    ('_dedupe', '_fixes', '_gaps', '_offline'))}))\n"
    )
    assert result == {"loaded": []}


def test_opentelemetry_threading_instrumentation_applied_first_is_left_alone() -> None:
    result = _fresh_init(
        "import json, threading\n"
        "from opentelemetry.instrumentation.threading import ThreadingInstrumentor\n"
        "ThreadingInstrumentor().instrument()\n"
        "import truefoundry_tracing as tt\n"
        "tt.init(app_name='x', console=False)\n"
        "print(json.dumps({'ours': threading.Thread.start.__module__ == "
        "'truefoundry_tracing._threads'}))\n"
    )
    assert result == {"ours": False}


def test_installed_versions_match_importlib_metadata() -> None:
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        assert _instruments._version(name) == dist.version, name
    assert _instruments._version("no-such-distribution-anywhere") is None


def test_a_distribution_installed_after_the_first_scan_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    first = tmp_path / "early_bird-0.1.dist-info"  # a folder holding distributions is watched
    first.mkdir()
    (first / "METADATA").write_text("Metadata-Version: 2.1\nName: early-bird\nVersion: 0.1\n")
    assert _instruments._version("early-bird") == "0.1"
    assert _instruments._version("late-arrival") is None
    info = tmp_path / "late_arrival-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late-arrival\nVersion: 1.2.3\n\n")
    os.utime(tmp_path, ns=(0, os.stat(tmp_path).st_mtime_ns + 1_000_000))  # coarse clocks
    assert _instruments._version("late_arrival") == "1.2.3"
