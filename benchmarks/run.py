"""Measure every figure of the performance table, print it, and write ``docs/performance.md``.

Each figure is measured for this library and its anchor (traceloop-sdk or raw OpenTelemetry)
in the same run, alternating between the two, so the ratio holds even on a noisy machine.
Exits 1 when a target is missed, 2 when a measurement could not be made.

    python -m benchmarks            # the full run, about 3 minutes; writes docs/performance.md
    python -m benchmarks --quick    # a few seconds per figure, to check the suite itself works
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
_PREFIXES = ("TFY_", "TRACELOOP_", "OTEL_")


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or ``--quick`` (proves the suite works)."""

    import_runs: int
    init_runs: int
    calls: int
    rounds: int
    warmup: int
    app_calls: int
    app_reps: int
    app_rounds: int
    spans: int
    burst: int
    throughput_runs: int
    memory_spans: int
    shutdown_timeout: float | None


FULL = Plan(
    import_runs=7,
    init_runs=5,
    calls=1000,
    rounds=21,
    warmup=2,
    app_calls=10_000,
    app_reps=3,
    app_rounds=3,
    spans=10_000,
    burst=2000,
    throughput_runs=5,
    memory_spans=1_000_000,
    shutdown_timeout=None,
)
QUICK = Plan(
    import_runs=1,
    init_runs=1,
    calls=200,
    rounds=2,
    warmup=1,
    app_calls=500,
    app_reps=1,
    app_rounds=1,
    spans=1000,
    burst=500,
    throughput_runs=1,
    memory_spans=5000,
    shutdown_timeout=1.0,
)


@dataclass
class Row:
    """One line of the table, and how it was measured."""

    figure: str
    ours: float
    anchor: float | None
    unit: str
    target: str
    passed: bool | None  # None: informational, no target
    method: str
    anchor_name: str = "-"
    higher_is_better: bool = False
    note: str = ""
    paired_ratio: float | None = None  # median of per-round ratios, when rounds alternate

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.anchor is None or self.anchor == 0:
            return None
        return self.ours / self.anchor

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "info"}[self.passed]


class BenchError(RuntimeError):
    """A measurement could not be made (a worker failed or timed out)."""


def child_env() -> dict[str, str]:
    """The environment of every measured process: no tracing settings, loopback only."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_PREFIXES)}
    env["TRACELOOP_TELEMETRY"] = "false"  # traceloop's anonymous telemetry, on by default
    # imports are measured as users have them, from compiled byte code (scripts/bench compiles
    # the environment first; this machine sets PYTHONDONTWRITEBYTECODE=1)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def worker(
    name: str, timeout: float = 300.0, *, module: str = "benchmarks.worker", **args: Any
) -> dict[str, Any]:
    """Run one workload of ``module`` (:mod:`benchmarks.worker`) in a fresh interpreter."""
    cmd = [sys.executable, "-m", module, name, json.dumps(args)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=child_env(), cwd=ROOT
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{name} did not finish within {timeout:.0f} s") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def timed_process(code: str) -> float:
    """Wall seconds of ``python -c code`` in a fresh process."""
    env = child_env()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/traces"


class Receiver:
    """The project's OTLPReceiver, in a process of its own (see ``benchmarks._receiver``)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._receiver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip() + "/v1/traces"
        if not self.url.startswith("http"):
            raise BenchError("the OTLP receiver process did not start")

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# -- the figures --------------------------------------------------------------------------


def bench_import(plan: Plan) -> list[Row]:
    codes = {
        "pass": "pass",
        "ours": "import truefoundry_tracing",
        "anchor": "from traceloop.sdk import Traceloop",
    }
    times: dict[str, list[float]] = {k: [] for k in codes}
    if plan.import_runs > 1:
        for code in codes.values():  # warm-up: byte-code caches and the page cache
            timed_process(code)
    for _ in range(plan.import_runs):
        for key, code in codes.items():
            times[key].append(timed_process(code))
    base = median(times["pass"])
    ours = (median(times["ours"]) - base) * 1000
    anchor = (median(times["anchor"]) - base) * 1000
    return [
        Row(
            "`import truefoundry_tracing` (whole process, minus `python -c pass`)",
            ours,
            anchor,
            "ms",
            "<= 50 ms and <= 0.1x",
            ours <= 50 and ours <= 0.1 * anchor,
            f"{plan.import_runs} fresh processes per command after 1 warm-up each, the "
            "three commands interleaved; median wall time of each, minus the median of "
            f"`python -c pass` ({base * 1000:.1f} ms).",
            "`from traceloop.sdk import Traceloop`",
        )
    ]


def bench_init(plan: Plan) -> list[Row]:
    from truefoundry_tracing.testing import FakeLLMServer

    url = refused_url()
    ours: list[dict[str, Any]] = []
    anchor: list[dict[str, Any]] = []
    with FakeLLMServer() as llm:
        if plan.init_runs > 1:
            worker("init_ours", url=url, llm=llm.base_url)  # warm-up
            worker("init_anchor", url=url, llm=llm.base_url)
        for _ in range(plan.init_runs):
            ours.append(worker("init_ours", url=url, llm=llm.base_url))
            anchor.append(worker("init_anchor", url=url, llm=llm.base_url))
    o = median([r["init"] for r in ours]) * 1000
    a = median([r["init"] for r in anchor]) * 1000
    o_total = median([r["to_first_call"] for r in ours]) * 1000
    a_total = median([r["to_first_call"] for r in anchor]) * 1000
    instrumented = "; ".join(ours[-1]["instruments"]) or "nothing"
    method = (
        f"{plan.init_runs} fresh processes per side after 1 warm-up each, alternating; each "
        "imports openai and builds a client first, then times the call; median. Both export "
        f"OTLP/HTTP to a loopback port (ours reports: {instrumented}; traceloop: its "
        "defaults), with TRACELOOP_TELEMETRY=false."
    )
    return [
        Row(
            "`init()` in a process that has imported openai (OTLP exporter)",
            o,
            a,
            "ms",
            "<= 0.5x",
            o <= 0.5 * a,
            method + " The anchor's import of `traceloop.sdk` happens before its timer "
            "starts; ours loads everything inside `init()`, except the OpenAI "
            "instrumentation, which it applies when the app first uses a client (see the "
            "next row).",
            "`Traceloop.init()`, defaults, same exporter",
        ),
        Row(
            "import + `init()` + the first OpenAI call, openai imported (time until the "
            "first LLM call is traced)",
            o_total,
            a_total,
            "ms",
            "-",
            None,
            method + " Timer starts before `import truefoundry_tracing` / "
            "`from traceloop.sdk import Traceloop` and stops when the first chat completion "
            "(to the project's FakeLLMServer on loopback) returns, traced on both sides: "
            "ours pays for the OpenAI instrumentation inside that call.",
            "import + `Traceloop.init()` + the same call",
        ),
    ]


def bench_init_bare(plan: Plan) -> list[Row]:
    url = refused_url()
    times: dict[str, list[float]] = {"ours": [], "anchor": []}
    cpu: dict[str, list[float]] = {"ours": [], "anchor": []}
    runs = plan.init_runs * 2 - 1 if plan.init_runs > 1 else 1
    if plan.init_runs > 1:
        for side in times:  # warm-up: byte code and the page cache
            worker("init_bare", side=side, url=url)
    for _ in range(runs):
        for side in times:
            r = worker("init_bare", side=side, url=url)
            times[side].append(r["init"] * 1000)
            cpu[side].append(r["cpu"] * 1000)
    o, a = median(times["ours"]), median(times["anchor"])
    return [
        Row(
            "bare `init()`: nothing imported but the package (OTLP exporter)",
            o,
            a,
            "ms",
            "<= 80 ms",
            o <= 80,
            f"{runs} fresh processes per side after 1 warm-up each, alternating; the timer "
            "starts after `import truefoundry_tracing` / `from traceloop.sdk import Traceloop` "
            "and stops when `init()` returns; median. Ours loads OpenTelemetry's SDK and its "
            "exporter inside `init()`; traceloop-sdk has loaded everything at its import (see "
            "the import row). Threads get the trace context without OpenTelemetry's threading "
            "instrumentation, and installed libraries are found with one cached scan of "
            "`sys.path`, not an `importlib.metadata` search each. CPU time of the call "
            f"(`time.process_time()`): ours {median(cpu['ours']):.1f} ms, anchor "
            f"{median(cpu['anchor']):.1f} ms.",
            "`Traceloop.init()`, defaults, same exporter",
        )
    ]


def bench_decorators(plan: Plan) -> list[Row]:
    rows = []
    # Issue 18: sync and async within 5% of raw OpenTelemetry; a generator also switches the
    # context at each step (see its method), which raw spans do not.
    for shape, what, limit in (
        ("sync", "synchronous function", 1.05),
        ("async", "async function", 1.05),
        ("generator", "generator (3 items)", 1.3),
    ):
        r = worker(
            "decorators", shape=shape, calls=plan.calls, rounds=plan.rounds, warmup=plan.warmup
        )
        o, a = median(r["ours_ns"]) / 1000, median(r["raw_ns"]) / 1000
        ratio = median([x / y for x, y in zip(r["ours_ns"], r["raw_ns"], strict=True)])
        rows.append(
            Row(
                f"one `@task` call inside a `@workflow`, {what}",
                o,
                a,
                "µs",
                f"<= {limit:g}x",
                ratio <= limit,
                f"One process; {plan.rounds} rounds of {plan.calls} calls per side after "
                f"{plan.warmup} warm-up rounds, sides alternating; median time per call; "
                "the ratio is the median of the per-round ratios (ours / the round of raw "
                "spans right after it), which cancels load that changes between rounds. "
                "Both: BatchSpanProcessor (defaults) to an InMemorySpanExporter, input and "
                "output recorded as JSON, same attributes; ours also scans every span for "
                "secrets."
                + (
                    " Ours attaches the span's context only while the generator's own code "
                    "runs (each step), the anchor leaves it attached while the consumer runs."
                    if shape == "generator"
                    else ""
                ),
                "`tracer.start_as_current_span`, same attributes and processor",
                paired_ratio=ratio,
            )
        )
    return rows


def bench_app_thread(plan: Plan) -> list[Row]:
    refused = refused_url()
    times: dict[str, list[float]] = {"healthy": [], "refused": [], "hang": []}
    with Receiver() as healthy, Receiver() as hanging:
        hanging.ask("hang")
        urls = {"healthy": healthy.url, "refused": refused, "hang": hanging.url}
        for _ in range(plan.app_rounds):
            for key, url in urls.items():
                r = worker("app_thread", url=url, calls=plan.app_calls, reps=plan.app_reps)
                times[key].extend(r["seconds"])
    base = median(times["healthy"]) * 1000
    rows = []
    for key, what in (("refused", "refuses connections"), ("hang", "hangs")):
        o = median(times[key]) * 1000
        rows.append(
            Row(
                f"app-thread time for {plan.app_calls:,} `@workflow` calls while the "
                f"collector {what}",
                o,
                base,
                "ms",
                "<= 1.1x",
                o <= 1.1 * base,
                f"{plan.app_rounds} fresh processes per collector state, interleaved, each "
                f"timing {plan.app_reps} loops of {plan.app_calls:,} calls after 500 warm-up "
                "calls; median loop time. Default batch export to the project's OTLPReceiver "
                "in another process (healthy, or holding every request), or to a closed "
                "loopback port.",
                "same calls, healthy local collector",
            )
        )
    return rows


def bench_throughput(plan: Plan) -> list[Row]:
    rates: dict[str, list[float]] = {"ours": [], "raw": []}
    ratios: list[float] = []
    lost: dict[str, int] = {"ours": 0, "raw": 0}
    with Receiver() as receiver:
        for _ in range(plan.throughput_runs):
            for side in ("ours", "raw"):
                receiver.ask("clear")
                r = worker(
                    "throughput", side=side, url=receiver.url, spans=plan.spans, burst=plan.burst
                )
                got = int(receiver.ask("count"))
                lost[side] += r["spans"] - got
                rates[side].append(plan.spans / r["seconds"])
            ratios.append(rates["ours"][-1] / rates["raw"][-1])
    o, a = median(rates["ours"]), median(rates["raw"])
    ratio = median(ratios)
    return [
        Row(
            "spans exported per second to the local receiver, batch mode, zero lost",
            o,
            a,
            "spans/s",
            ">= 0.9x, 0 lost",
            ratio >= 0.9 and lost["ours"] == 0,
            f"{plan.throughput_runs} fresh processes per side, alternating; each sends "
            f"{plan.spans:,} spans in bursts of {plan.burst:,} (within the default queue), "
            "flushing after each, to the project's OTLPReceiver in another process; rate = "
            "spans / seconds from the first span to the last flush; median; the ratio is "
            "the median of the per-run ratios (ours / the raw run right after it). Both "
            "encode with OpenTelemetry's `encode_spans`; ours also scans each span for "
            "secrets before export. "
            f"Spans lost (receiver count vs sent): ours {lost['ours']}, anchor {lost['raw']}.",
            "raw `BatchSpanProcessor` + `OTLPSpanExporter` (HTTP)",
            higher_is_better=True,
            paired_ratio=ratio,
        )
    ]


def bench_shutdown(plan: Plan) -> list[Row]:
    with Receiver() as hanging:
        hanging.ask("hang")
        r = worker("shutdown", url=hanging.url, limit=plan.shutdown_timeout)
    limit = r["timeout"]
    return [
        Row(
            "`shutdown()` with the collector hanging",
            r["seconds"],
            None,
            "s",
            f"<= {limit:g} s (configured timeout)",
            r["seconds"] <= limit,
            "One process; 1,000 spans queued and an export held by the OTLPReceiver "
            f"(hang fault); `shutdown()` timed with the timeout {limit:g} s"
            f"{' (the default)' if plan.shutdown_timeout is None else ''}; one run. It "
            f"returned {r['done']} and reported {r['dropped']:,} spans dropped.",
        )
    ]


# Printed between the main table and the peers' table on standard output.
PEERS_MARKER = "-- against the tools users consider --"

BENCHES: dict[str, Callable[[Plan], list[Row]]] = {
    "import": bench_import,
    "init": bench_init,
    "init_bare": bench_init_bare,
    "decorators": bench_decorators,
    "app_thread": bench_app_thread,
    "throughput": bench_throughput,
    "shutdown": bench_shutdown,
}
from .delivery import BENCHES as _DELIVERY  # noqa: E402  (it imports names defined above)

BENCHES.update(_DELIVERY)
# Every figure: the rows above, then the peers' table (benchmarks/peers.py).
ALL = [*BENCHES, "peers"]


# -- the report ---------------------------------------------------------------------------


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "spans/s":
        return f"{value:,.0f} spans/s"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.1f} {unit}"


def table(rows: Sequence[Row]) -> list[list[str]]:
    out = [["figure", "this project", "anchor", "ratio", "target", "result"]]
    for row in rows:
        out.append(
            [
                row.figure,
                _num(row.ours, row.unit),
                _num(row.anchor, row.unit),
                "-" if row.ratio is None else f"{row.ratio:.2f}x",
                row.target,
                row.verdict,
            ]
        )
    return out


def text_table(rows: Sequence[Row]) -> str:
    cells = table(rows)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    widths[0] = min(widths[0], 72)
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c[: widths[i]].ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _versions() -> str:
    names = ["truefoundry-tracing", "traceloop-sdk", "opentelemetry-sdk", "openai"]
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


NOTES = """
## Notes

- **`init()`** instruments each library when the app first imports or uses it, not up front
  (docs/compatibility.md, "When a library is instrumented"). With openai imported before
  `init()`, traceloop's OpenAI instrumentation (about 75% of what `init()` cost before, most of
  it importing `openai.types.beta` through the instrumentation's assistants wrappers) is
  loaded when the app creates a client, just before the first decorated function starts its
  span, or at the first OpenAI call, whichever comes first, so it never counts inside a
  decorator's span. The cost moves, it does not vanish: the row "import + `init()` + the first
  OpenAI call" shows the time until the first LLM call is traced, on both sides. A process
  that does none of these (a CLI, most of a test suite) never pays it.
- **Bare `init()`** has an absolute target (80 ms) where the other rows have ratios, and a
  wall clock counts the time the process waits for a CPU while other work runs: on this
  2-CPU machine shared with other work it moves with the load. The row's method also gives
  the process's CPU time (from the next run on). What is left is importing OpenTelemetry's
  SDK and OTLP exporter, and this package's own modules; context propagation into threads,
  the installed-library check and the post-import hooks import nothing more.
- On a machine shared with other work the absolute figures move by 2x to 4x between runs; the
  ratios (same run, alternating sides) move by about 0.05.
"""


def markdown(rows: Sequence[Row], plan: Plan, seconds: float, extra: str = "") -> str:
    cells = table(rows)
    anchors = {row.figure: row.anchor_name for row in rows}
    lines = [
        "# Performance",
        "",
        "Each figure is measured for truefoundry-tracing and its anchor (traceloop-sdk, or raw",
        "OpenTelemetry) in the same run, alternating between the two, so the ratio holds on a",
        "noisy machine better than either number alone. The suite exits non-zero when a target is",
        'missed, so it can gate a release. "Against the tools users consider" compares it with the',
        "tracing libraries users pick instead (Logfire, Phoenix, Langfuse, MLflow, traceloop-sdk).",
        "",
        "## Reproduce",
        "",
        "```bash",
        "bash scripts/bench            # builds .venv/bench-peers if needed, runs everything",
        "bash scripts/bench --only decorators,throughput   # a subset",
        "bash scripts/bench --only peers                   # only the comparison with peers",
        "```",
        "",
        f"Latest run: {datetime.date.today().isoformat()}, {seconds:.0f} s, "
        f"{'quick mode, ' if plan is QUICK else ''}Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()} with {os.cpu_count()} CPUs "
        "(shared with other work); " + _versions() + ".",
        "",
        "## Results",
        "",
        "| " + " | ".join(cells[0]) + " |",
        "| " + " | ".join("---" for _ in cells[0]) + " |",
    ]
    for row, cell in zip(rows, cells[1:], strict=True):
        cell = [cell[0], cell[1], f"{cell[2]} ({anchors[row.figure]})", *cell[3:]]
        lines.append("| " + " | ".join(cell) + " |")
    lines += ["", NOTES.strip(), ""]
    if extra:
        lines += [extra.rstrip(), ""]
    lines += ["## Method, per figure", ""]
    for row in rows:
        lines.append(f"- **{row.figure}**: {row.method}")
        if row.note:
            lines.append(f"  {row.note}")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite works")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(ALL)}")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="Markdown report path (default: docs/performance.md for a full run of every "
        "figure; none otherwise)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    output = args.output
    if output is None and not args.quick and names == list(ALL):
        output = DOC

    started = time.perf_counter()
    rows: list[Row] = []
    failed = False
    peer_table = None
    for name in names:
        t0 = time.perf_counter()
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        try:
            if name == "peers":
                from benchmarks import peers

                peer_table = peers.measure(plan)
                for error in peer_table.errors:
                    print(f"peers: {error}", file=sys.stderr)
                failed = failed or bool(peer_table.errors)
            else:
                rows.extend(BENCHES[name](plan))
        except BenchError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failed = True
        print(f"  {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    print(text_table(rows))
    extra = ""
    if peer_table is not None:
        from benchmarks import peers

        print(PEERS_MARKER)
        print(peers.text_table(peer_table))
        extra = peers.markdown(peer_table)
    if output is not None:
        output.write_text(markdown(rows, plan, seconds, extra), encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    if failed:
        return 2
    return 1 if any(row.passed is False for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
