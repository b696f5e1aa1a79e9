"""This library against the tools a user would pick instead, measured in the same run.

Logfire, Phoenix (OpenInference), Langfuse, MLflow and traceloop-sdk, each with its defaults,
each in fresh processes, all exporting OTLP/HTTP to the same loopback receiver (or to a closed
loopback port for the outage figures), with every network feature of theirs off or pointed at
loopback (``benchmarks.peer_worker.OFFLINE_ENV``). They live in their own environment,
``.venv/bench-peers`` (``constraints/bench-peers.txt``), built by ``bash scripts/bench``;
none of them is a dependency of this library. A tool that is not installed is listed as such.
"""

from __future__ import annotations

import importlib.metadata
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.peer_worker import DISTS, OFFLINE_ENV
from benchmarks.run import BenchError, Plan, Receiver, child_env, refused_url

OURS = "truefoundry_tracing"
PEERS = ("traceloop", "logfire", "phoenix", "langfuse", "mlflow")
LABELS = {
    OURS: "truefoundry-tracing `@workflow`/`@task`",
    "traceloop": "traceloop-sdk `@workflow`/`@task`",
    "logfire": "Logfire `@logfire.instrument`",
    "phoenix": "Phoenix / OpenInference `tracer.chain`",
    "langfuse": "Langfuse `@observe`",
    "mlflow": "MLflow `@mlflow.trace`",
    "raw": "raw OpenTelemetry `start_as_current_span`",
}


@dataclass(frozen=True)
class PeerPlan:
    calls: int
    rounds: int
    warmup: int
    startup_runs: int
    spans: int
    burst: int
    throughput_runs: int
    app_calls: int
    app_reps: int
    memory_spans: int
    exit_runs: int


FULL = PeerPlan(1000, 11, 2, 5, 5000, 1000, 3, 5000, 3, 100_000, 3)
QUICK = PeerPlan(100, 1, 1, 1, 500, 250, 1, 200, 1, 2000, 1)


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    unit: str
    higher_is_better: bool = False


COLUMNS = (
    Column("sync", "per call, sync (x raw OTel)", "x"),
    Column("async", "per call, async (x raw OTel)", "x"),
    Column("generator", "per call, generator of 3 (x raw OTel)", "x"),
    Column("startup", "import + init + first call", "ms"),
    Column("throughput", "export throughput", "spans/s", higher_is_better=True),
    Column("app_down", "app thread, collector down", "ms"),
    Column("memory", "memory, collector down", "MB"),
    Column("exit_ok", "short script, collector healthy", "s"),
    Column("exit_down", "short script, collector refusing", "s"),
)


@dataclass
class PeerTable:
    """Every figure of every tool: ``values[tool][column key]`` (None: not measured)."""

    plan: PeerPlan
    tools: list[str]
    missing: list[str]
    values: dict[str, dict[str, float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def ahead(self, column: Column) -> bool | None:
        """True when this library beats every measured peer in ``column``."""
        ours = self.values.get(OURS, {}).get(column.key)
        peers = [self.values[t].get(column.key) for t in self.tools if t not in (OURS, "raw")]
        measured = [p for p in peers if p is not None]
        if ours is None or not measured:
            return None
        if column.higher_is_better:
            return ours >= max(measured)
        return ours <= min(measured)


def installed(tool: str) -> bool:
    try:
        importlib.metadata.version(DISTS[tool])
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _versions(tools: Sequence[str]) -> str:
    return ", ".join(f"{DISTS[t]} {importlib.metadata.version(DISTS[t])}" for t in tools)


class _Runner:
    """Runs peer workloads in fresh processes with the offline environment."""

    def __init__(self, scratch: str) -> None:
        env = child_env()
        env.update(OFFLINE_ENV)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure imports as users have them
        # MLflow's default tracking store needs packages mlflow-tracing does not install; a
        # local folder (never written while traces go to OTLP) stands in for it.
        env["MLFLOW_TRACKING_URI"] = "file://" + os.path.join(scratch, "mlruns")
        self.env = env
        self.cwd = scratch  # anything a tool writes next to the script lands here

    def run(self, workload: str, timeout: float = 600.0, **args: Any) -> dict[str, Any]:
        import json

        cmd = [sys.executable, "-m", "benchmarks.peer_worker", workload, json.dumps(args)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=self.cwd
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(
                f"{workload} {args.get('tool')} did not finish in {timeout:.0f} s"
            ) from exc
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise BenchError(
                f"{workload} {args.get('tool')} failed (exit {proc.returncode}):\n"
                f"{proc.stderr[-2000:]}"
            )
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def wall(self, workload: str, timeout: float = 120.0, **args: Any) -> float:
        t0 = time.perf_counter()
        self.run(workload, timeout=timeout, **args)
        return time.perf_counter() - t0


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _each(table: PeerTable, what: str, fn: Callable[[str], None], tools: Sequence[str]) -> None:
    for tool in tools:
        try:
            fn(tool)
        except BenchError as exc:
            table.errors.append(f"{what}: {exc}")


def measure(plan: Plan) -> PeerTable:
    """Measure every column for every installed tool (``plan``: the main suite's mode)."""
    from benchmarks.run import QUICK as MAIN_QUICK

    p = QUICK if plan is MAIN_QUICK else FULL
    tools = [t for t in (OURS, *PEERS) if installed(t)]
    table = PeerTable(p, [*tools, "raw"], [t for t in PEERS if t not in tools])
    for tool in table.tools:
        table.values[tool] = {}
    with tempfile.TemporaryDirectory(prefix="tfy-bench-peers-") as scratch, Receiver() as rx:
        runner = _Runner(scratch)
        base = rx.url.removesuffix("/v1/traces")
        down = refused_url().removesuffix("/v1/traces")

        def percall(tool: str) -> None:
            r = runner.run(
                "percall", tool=tool, base=base, calls=p.calls, rounds=p.rounds, warmup=p.warmup
            )
            for shape, got in r.items():
                ratios = [a / b for a, b in zip(got["tool_ns"], got["raw_ns"], strict=True)]
                table.values[tool][shape] = _median(ratios)
                table.values[tool][shape + "_us"] = _median(got["tool_ns"]) / 1000

        _each(table, "per call", percall, tools)
        for tool in ("raw",):
            for shape in ("sync", "async", "generator"):
                table.values[tool][shape] = 1.0

        startup: dict[str, list[float]] = {t: [] for t in table.tools}
        for run_no in range(p.startup_runs + (1 if p.startup_runs > 1 else 0)):
            for tool in table.tools:  # interleaved; the first round warms caches (bytecode)
                try:
                    r = runner.run("startup", tool=tool, base=base)
                except BenchError as exc:
                    table.errors.append(f"startup: {exc}")
                    continue
                if p.startup_runs == 1 or run_no > 0:
                    startup[tool].append(r["total"] * 1000)
        for tool, values in startup.items():
            table.values[tool]["startup"] = _median(values) if values else None

        lost: dict[str, int] = {}

        def throughput(tool: str) -> None:
            rates = []
            lost[tool] = 0
            for _ in range(p.throughput_runs):
                rx.ask("clear")
                r = runner.run("throughput", tool=tool, base=base, spans=p.spans, burst=p.burst)
                got = int(rx.ask("count"))
                lost[tool] += max(0, r["spans"] - got)
                rates.append(p.spans / r["seconds"])
            table.values[tool]["throughput"] = _median(rates)

        _each(table, "throughput", throughput, table.tools)
        table.notes.append(
            "Spans lost in the throughput runs (sent minus received): "
            + ", ".join(f"{t} {n}" for t, n in lost.items())
            + "."
        )

        def app_down(tool: str) -> None:
            r = runner.run("app_thread", tool=tool, base=down, calls=p.app_calls, reps=p.app_reps)
            table.values[tool]["app_down"] = _median(r["seconds"]) * 1000

        _each(table, "app thread", app_down, table.tools)

        def memory(tool: str) -> None:
            every = max(1, min(10_000, p.memory_spans // 10))
            r = runner.run("memory", tool=tool, base=down, spans=p.memory_spans, sample_every=every)
            table.values[tool]["memory"] = (r["peak"] - r["start"]) / 2**20

        _each(table, "memory", memory, table.tools)

        exits: dict[str, dict[str, list[float]]] = {
            t: {"exit_ok": [], "exit_down": []} for t in table.tools
        }
        for _ in range(p.exit_runs):
            for tool in table.tools:
                for key, url in (("exit_ok", base), ("exit_down", down)):
                    try:
                        exits[tool][key].append(runner.wall("short_script", tool=tool, base=url))
                    except BenchError as exc:
                        table.errors.append(f"exit: {exc}")
        for tool, got in exits.items():
            for key, values in got.items():
                table.values[tool][key] = _median(values) if values else None
    table.notes.append("Versions: " + _versions([t for t in table.tools if t != "raw"]) + ".")
    return table


# -- the report ---------------------------------------------------------------------------


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "spans/s":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.1f} {unit}"


def rows(table: PeerTable) -> list[list[str]]:
    out = [["tool", *[c.title for c in COLUMNS]]]
    for tool in table.tools:
        out.append([LABELS[tool], *[_cell(table.values[tool].get(c.key), c.unit) for c in COLUMNS]])
    verdicts = {True: "yes", False: "no", None: "-"}
    out.append(
        ["truefoundry-tracing ahead of every peer", *[verdicts[table.ahead(c)] for c in COLUMNS]]
    )
    return out


def text_table(table: PeerTable) -> str:
    cells = rows(table)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


WHY_NOT = {
    "exit_ok": (
        "the OTLP exporter imports `requests` and the protobuf encoder at its first export, "
        "which in a short script happens at exit (issue 18, profiled with "
        "`python -X importtime`); moving those imports off the exit path is the delivery work"
    ),
    "exit_down": (
        "`shutdown()` waits out the export timeout while the collector refuses; the delivery "
        "work (issue 18) gives the exit one deadline"
    ),
    "memory": (
        "with the collector down this library keeps spans for when it comes back, where the "
        "peers drop them: the export queue holds up to 2,048 finished spans (about 0.8 KB "
        "each, measured with tracemalloc) and the retry buffer up to 2,048 encoded ones (a "
        "few hundred bytes each, at most 2 MB); both are bounded, so the growth is flat once "
        "they are full"
    ),
    "startup": (
        "this library loads OpenTelemetry's SDK and exporter inside `init()`; see the bare "
        "`init()` and import rows above for the split"
    ),
}


def markdown(table: PeerTable) -> str:
    cells = rows(table)
    p = table.plan
    lines = [
        "## Against the tools users consider",
        "",
        "Each tool as its documentation sets it up, with its defaults, in fresh processes of one",
        "environment (`.venv/bench-peers`, pinned by `constraints/bench-peers.txt`; none of these",
        "is a dependency of this library), all exporting OTLP/HTTP to one local receiver on",
        "loopback, their telemetry and cloud sends off. Lower is better except throughput.",
        "",
        "| " + " | ".join(cells[0]) + " |",
        "| " + " | ".join("---" for _ in cells[0]) + " |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    lost = [c for c in COLUMNS if table.ahead(c) is False]
    lines.append("")
    if lost:
        lines.append("Where a peer is ahead, and why:")
        lines.append("")
        for c in lost:
            lines.append(f"- **{c.title}**: {WHY_NOT.get(c.key, 'not profiled yet.')}.")
        lines.append("")
    if table.missing:
        lines.append(f"Not installed in this run: {', '.join(table.missing)}.")
        lines.append("")
    lines += [
        "How each column is measured:",
        "",
        "- **set-up**: this library `init(endpoint=...)` (defaults otherwise); "
        "traceloop-sdk `Traceloop.init(api_endpoint=..., telemetry_enabled=False)`; "
        "Logfire `logfire.configure(send_to_logfire=False, console=False, "
        "metrics=False)` with a BatchSpanProcessor and OTLP exporter as "
        "`additional_span_processors`; Phoenix `phoenix.otel.register(endpoint=..., "
        "batch=True)`; Langfuse `Langfuse(host=<receiver>)` (it exports to "
        "`/api/public/otel/v1/traces`, which the receiver accepts); MLflow through "
        "`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, with `MLFLOW_TRACKING_URI` a local "
        "folder (its default store needs packages mlflow-tracing does not install) and "
        "its telemetry off. Every process also has `DO_NOT_TRACK=1`.",
        f"- **per call**: one child in a parent, {p.rounds} rounds of {p.calls:,} calls after "
        f"{p.warmup} warm-up rounds, alternating with raw OpenTelemetry spans (the same "
        "attributes as this library's, a BatchSpanProcessor and OTLP exporter to the same "
        "receiver) in the same process; the median of the per-round ratios.",
        f"- **import + init + first call**: {p.startup_runs} fresh processes per tool after one "
        "warm-up each, interleaved; from before the tool's import to the return of its first "
        "traced call; median. Byte code is compiled first (`scripts/bench` runs "
        "`compileall`; the measured processes run without PYTHONDONTWRITEBYTECODE).",
        f"- **export throughput**: {p.spans:,} traced calls in bursts of {p.burst:,}, each "
        f"followed by the tool's flush, to the receiver in another process; {p.throughput_runs} "
        "runs; median spans per second.",
        f"- **app thread, collector down**: {p.app_calls:,} traced calls with the exporter "
        f"pointed at a closed loopback port, after 500 warm-up calls; median of {p.app_reps}.",
        f"- **memory, collector down**: resident set size growth over {p.memory_spans:,} traced "
        "calls to a closed port, after 20,000 warm-up calls.",
        "- **short script**: the whole process (interpreter start, import, set-up, one parent "
        "with nine children, the tool's own exit-time flush), healthy receiver or closed port; "
        f"median of {p.exit_runs}.",
        "",
        *[f"{n}" for n in table.notes],
        "",
    ]
    if table.errors:
        lines += ["Measurements that failed in this run:", ""]
        lines += [f"- {e.splitlines()[0]}" for e in table.errors]
        lines.append("")
    return "\n".join(lines)
