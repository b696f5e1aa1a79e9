"""Delivery figures: exit with the collector refusing, memory while it is down, a load test.

Registered in :data:`benchmarks.run.BENCHES` (``exit``, ``memory``, ``load``). The
workloads run in fresh interpreters through ``python -m benchmarks.delivery NAME JSON``.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .run import ROOT, BenchError, Plan, Receiver, Row, child_env, median, refused_url, worker
from .worker import SPAN_ATTRIBUTES, rss_bytes

# A short script as users write them: init, one workflow with a few tasks, exit (the exit
# flush does the sending).
SHORT_SCRIPT = """
import truefoundry_tracing as tt
tt.init("bench-exit", endpoint={url!r}, console=False, instruments=())

@tt.task(name="step")
def step(i):
    return i + 1

@tt.workflow(name="job")
def job():
    return [step(i) for i in range(6)]

job()
"""


def _run(name: str, timeout: float = 600.0, **args: Any) -> dict[str, Any]:
    return worker(name, timeout, module="benchmarks.delivery", **args)


def _script_seconds(url: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", SHORT_SCRIPT.format(url=url)],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
        cwd=ROOT,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"the short script failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stderr


def bench_exit(plan: Plan) -> list[Row]:
    rounds = 1 if plan.rounds < 5 else 7
    healthy: list[float] = []
    refused: list[float] = []
    line = ""
    with Receiver() as receiver:
        for _ in range(rounds):  # alternate, so both sides see the same machine
            healthy.append(_script_seconds(receiver.url)[0])
            seconds, stderr = _script_seconds(refused_url())
            refused.append(seconds)
            line = next((x for x in stderr.splitlines() if "dropped and" in x), line)
    gap = median(refused) - median(healthy)
    ratios = [r / h for r, h in zip(refused, healthy, strict=True)]
    return [
        Row(
            "short script's exit, collector refused (anchor: healthy collector)",
            median(refused),
            median(healthy),
            "s",
            "<= healthy + 1 s",
            gap <= 1.0,
            "A fresh `python -c` script: `init(endpoint=...)`, one workflow with 6 tasks "
            "(7 spans), then the interpreter exits and the exit flush sends them. Wall time "
            f"of the whole process, {rounds} alternating run(s) of each: against the "
            "OTLPReceiver in its own process (healthy) and against a closed loopback port "
            f"(refused). Median gap {gap:+.2f} s. The refused run's exit line: "
            f"`{line.strip()[:240]}`",
            anchor_name="healthy collector",
            paired_ratio=statistics.median(ratios),
        )
    ]


def bench_memory(plan: Plan) -> list[Row]:
    every = max(1, min(10_000, plan.memory_spans // 10))
    r = _run("memory", url=refused_url(), spans=plan.memory_spans, sample_every=every)
    growth = (r["peak"] - r["start"]) / 2**20
    return [
        Row(
            f"memory growth with the collector down, over {plan.memory_spans:,} spans",
            growth,
            None,
            "MB",
            "< 10 MB",
            growth < 10,
            "One process; `init(endpoint=<closed loopback port>)`, the exporter's imports "
            "finished, then spans with six small attributes started and ended on the global "
            "tracer (root processor, redaction, default batch processor, OTLP exporter); RSS "
            f"(/proc/self/statm) sampled every {every:,} spans, peak minus the RSS before the "
            f"first span ({r['start'] / 2**20:.1f} MB), so filling the export queue and the "
            f"retry buffer counts; at the end {(r['end'] - r['start']) / 2**20:.1f} MB; one "
            f"run, {r['seconds']:.1f} s. The exporter reported {r['dropped']:,} spans dropped "
            f"and {r['pending']:,} held for retry (at most 2,048 spans and 2 MB, encoded).",
        )
    ]


def bench_load(plan: Plan) -> list[Row]:
    processes, threads, seconds = (2, 2, 1.0) if plan.rounds < 5 else (3, 4, 10.0)
    with Receiver() as receiver:
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.delivery",
            "load",
            json.dumps({"url": receiver.url, "threads": threads, "seconds": seconds}),
        ]
        procs = [
            subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env(),
                cwd=ROOT,
            )
            for _ in range(processes)
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + 120)
            if proc.returncode != 0 or not out.strip():
                raise BenchError(f"a load process failed:\n{err[-2000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        received = int(receiver.ask("count"))
    made = sum(r["spans"] for r in results)
    calls = sum(r["calls"] for r in results)
    lost = made - received
    per_call = sum(r["app_seconds"] for r in results) / max(1, calls) * 1e6
    growth = max(r["peak"] - r["start"] for r in results) / 2**20
    return [
        Row(
            f"load test: {processes} processes x {threads} threads for {seconds:g} s, spans lost",
            float(lost),
            None,
            "spans",
            "0",
            lost == 0,
            f"{processes} processes, each with {threads} threads calling a `@workflow` with "
            f"two `@task`s (each waits 5 ms, as on I/O) in a loop for {seconds:g} s "
            "(default batch export to the "
            f"OTLPReceiver in its own process), then `flush()`; spans made {made:,}, "
            f"received {received:,} (counted by the receiver). App-thread time per workflow "
            f"call (3 spans; the time spent waiting left out): {per_call:.1f} us; largest RSS "
            "growth of a process: "
            f"{growth:.1f} MB; exported/dropped/unconfirmed as the processes reported: "
            f"{sum(r['exported'] for r in results):,}/{sum(r['dropped'] for r in results):,}"
            f"/{sum(r['unconfirmed'] for r in results):,}.",
        )
    ]


BENCHES: dict[str, Callable[[Plan], list[Row]]] = {
    "exit": bench_exit,
    "memory": bench_memory,
    "load": bench_load,
}


# -- workloads (run in fresh interpreters) ------------------------------------------------


def memory(url: str, spans: int, sample_every: int) -> dict[str, Any]:
    """RSS growth over ``spans`` spans with the collector refusing, from before the first."""
    from opentelemetry import trace

    import truefoundry_tracing as tt
    from truefoundry_tracing import _exporters

    st = tt.init(app_name="bench", endpoint=url, console=False, instruments=())
    _exporters._preloaded.wait(30)
    tracer = trace.get_tracer_provider().get_tracer("bench")
    gc.collect()
    start = peak = rss_bytes()
    t0 = time.perf_counter()
    for _ in range(spans // sample_every):
        for _ in range(sample_every):
            tracer.start_span("span", attributes=SPAN_ATTRIBUTES).end()
        peak = max(peak, rss_bytes())
    seconds = time.perf_counter() - t0
    gc.collect()
    end = rss_bytes()
    return {
        "start": start,
        "peak": max(peak, end),
        "end": end,
        "seconds": seconds,
        "dropped": st.dropped,
        "pending": st.pending,
    }


def load(url: str, threads: int, seconds: float) -> dict[str, Any]:
    """``threads`` threads calling a workflow for ``seconds``; then flush and report."""
    import truefoundry_tracing as tt

    st = tt.init(app_name="bench-load", endpoint=url, console=False, instruments=())

    waited = threading.local()

    @tt.task(name="step")
    def step(i: int) -> int:
        t0 = time.perf_counter()
        time.sleep(0.005)  # the I/O a real step waits on (an LLM or a database call)
        waited.s = getattr(waited, "s", 0.0) + time.perf_counter() - t0
        return i + 1

    @tt.workflow(name="job")
    def job(i: int) -> int:
        return step(i) + step(i + 1)

    counts = [0] * threads
    spent = [0.0] * threads
    stop = time.monotonic() + seconds
    start = peak = rss_bytes()

    def work(n: int) -> None:
        calls, busy = 0, 0.0
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            job(calls)
            busy += time.perf_counter() - t0
            calls += 1
        counts[n], spent[n] = calls, busy - getattr(waited, "s", 0.0)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        peak = max(peak, rss_bytes())
        time.sleep(0.1)
    flushed = tt.flush(timeout=60)
    return {
        "calls": sum(counts),
        "spans": 3 * sum(counts),
        "app_seconds": sum(spent),
        "start": start,
        "peak": max(peak, rss_bytes()),
        "flushed": flushed,
        "exported": st.exported,
        "dropped": st.dropped,
        "unconfirmed": st.unconfirmed,
    }


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "memory": memory,
    "load": load,
}


def main() -> None:
    name, raw_args = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    result = WORKLOADS[name](**json.loads(raw_args))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip exit-time flushing: a refused collector must not hold the run


if __name__ == "__main__":
    main()
