"""One peer measurement in a fresh process; prints its result as one JSON line.

The tools a user would pick instead of this library, each set up as its documentation shows,
with its defaults, exporting OTLP/HTTP to ``base`` (the benchmark's loopback receiver, or a
closed loopback port). Every network feature of theirs is pointed at loopback or turned off
(see :data:`OFFLINE_ENV`, applied by ``benchmarks.peers`` to every child process).

    python -m benchmarks.peer_worker WORKLOAD '{"tool": "logfire", "base": "http://127.0.0.1:N"}'
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.worker import (
    _raw_async,
    _raw_gen,
    _raw_sync,
    rss_bytes,
    run_workload,
    tool_async,
    tool_gen,
    tool_sync,
)

# Set for every peer process: no telemetry, no cloud sends.
OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "TRACELOOP_TELEMETRY": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "LOGFIRE_SEND_TO_LOGFIRE": "false",
    "LOGFIRE_CONSOLE": "false",
    "PHOENIX_TELEMETRY_ENABLED": "false",
}

Deco = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass
class Tool:
    """A configured tracing library: how to decorate a parent and a child, how to flush."""

    parent: Callable[[str], Deco]
    child: Callable[[str], Deco]
    flush: Callable[[], None]


def _ours(base: str) -> Tool:
    import truefoundry_tracing as tt

    tt.init(app_name="bench", endpoint=base + "/v1/traces", console=False)
    return Tool(
        lambda n: tt.workflow(name=n), lambda n: tt.task(name=n), lambda: tt.flush(30.0) and None
    )


def _traceloop(base: str) -> Tool:
    from opentelemetry import trace
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import task, workflow

    Traceloop.init(app_name="bench", api_endpoint=base, telemetry_enabled=False)

    def flush() -> None:
        trace.get_tracer_provider().force_flush(30_000)  # type: ignore[attr-defined]

    return Tool(lambda n: workflow(name=n), lambda n: task(name=n), flush)


def _logfire(base: str) -> Tool:
    import logfire
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    logfire.configure(
        send_to_logfire=False,
        console=False,
        metrics=False,
        service_name="bench",
        additional_span_processors=[
            BatchSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces"))
        ],
    )

    def deco(n: str) -> Deco:
        return logfire.instrument(n, span_name=n, allow_generator=True)  # type: ignore[no-any-return]

    return Tool(deco, deco, lambda: logfire.force_flush(30_000) and None)


def _phoenix(base: str) -> Tool:
    from phoenix.otel import register

    provider = register(
        endpoint=base + "/v1/traces", project_name="bench", batch=True, verbose=False
    )
    tracer = provider.get_tracer("bench")

    def deco(n: str) -> Deco:
        return tracer.chain(name=n)  # type: ignore[no-any-return]

    return Tool(deco, deco, lambda: provider.force_flush(30_000) and None)


def _langfuse(base: str) -> Tool:
    from langfuse import Langfuse, observe

    client = Langfuse(public_key="pk-lf-bench", secret_key="sk-lf-bench", host=base)

    def deco(n: str) -> Deco:
        return observe(name=n)  # type: ignore[no-any-return]

    return Tool(deco, deco, client.flush)


def _mlflow(base: str) -> Tool:
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = base + "/v1/traces"
    os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
    import mlflow
    from mlflow.tracing.provider import provider

    def deco(n: str) -> Deco:
        return mlflow.trace(name=n)  # type: ignore[no-any-return]

    def flush() -> None:
        current = provider.get()  # set up by the first traced call
        if current is not None:
            current.force_flush(30_000)

    return Tool(deco, deco, flush)


def _raw(base: str) -> Tool:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces")))
    trace.set_tracer_provider(provider)
    tracer = provider.get_tracer("bench")

    def deco(n: str) -> Deco:
        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            def traced(*args: Any, **kwargs: Any) -> Any:
                with tracer.start_as_current_span(n):
                    return fn(*args, **kwargs)

            return traced

        return wrap

    return Tool(deco, deco, lambda: provider.force_flush(30_000) and None)


TOOLS: dict[str, Callable[[str], Tool]] = {
    "truefoundry_tracing": _ours,
    "traceloop": _traceloop,
    "logfire": _logfire,
    "phoenix": _phoenix,
    "langfuse": _langfuse,
    "mlflow": _mlflow,
    "raw": _raw,
}

# The distribution each tool needs; a tool whose distribution is missing is skipped.
DISTS = {
    "truefoundry_tracing": "truefoundry-tracing",
    "traceloop": "traceloop-sdk",
    "logfire": "logfire",
    "phoenix": "arize-phoenix-otel",
    "langfuse": "langfuse",
    "mlflow": "mlflow-tracing",
    "raw": "opentelemetry-sdk",
}


# -- per call: one child in a parent, against raw spans in the same process ---------------


_SHAPES = {
    "sync": (tool_sync, _raw_sync),
    "async": (tool_async, _raw_async),
    "generator": (tool_gen, _raw_gen),
}


def percall(tool: str, base: str, calls: int, rounds: int, warmup: int) -> dict[str, Any]:
    """Per-call ns of each shape for ``tool`` and for raw spans, rounds alternating."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    t = TOOLS[tool](base)
    raw_provider = TracerProvider()  # not global: the tool's own provider stays in charge
    raw_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces"))
    )
    raw_tracer = raw_provider.get_tracer("raw")
    out: dict[str, Any] = {}
    for shape, (make_tool, make_raw) in _SHAPES.items():
        ours_fn, raw_fn = make_tool(t.parent, t.child, calls), make_raw(raw_tracer, calls)
        tool_ns: list[float] = []
        raw_ns: list[float] = []
        for i in range(warmup + rounds):
            for fn, acc, flush in (
                (ours_fn, tool_ns, t.flush),
                (raw_fn, raw_ns, lambda: raw_provider.force_flush(30_000)),
            ):
                flush()
                gc.collect()
                value = fn()
                if i >= warmup:
                    acc.append(value)
        out[shape] = {"tool_ns": tool_ns, "raw_ns": raw_ns}
    t.flush()
    return out


# -- start-up, export and outage behaviour ------------------------------------------------


def startup(tool: str, base: str) -> dict[str, Any]:
    """Seconds from before the tool's import to the return of the first traced call."""
    t0 = time.perf_counter()
    t = TOOLS[tool](base)

    @t.parent("first")
    def first(x: int) -> int:
        return x + 1

    t1 = time.perf_counter()
    first(1)
    t2 = time.perf_counter()
    return {"setup": t1 - t0, "total": t2 - t0}


def throughput(tool: str, base: str, spans: int, burst: int) -> dict[str, Any]:
    """Seconds for ``spans`` traced calls, in bursts each followed by a flush."""
    t = TOOLS[tool](base)

    @t.parent("call")
    def call(x: int) -> int:
        return x + 1

    for i in range(burst):  # warm-up: connection, encoder, code paths
        call(i)
    t.flush()
    t0 = time.perf_counter()
    left = spans
    while left > 0:
        for i in range(min(burst, left)):
            call(i)
        left -= burst
        t.flush()
    return {"seconds": time.perf_counter() - t0, "spans": spans + burst}


def app_thread(tool: str, base: str, calls: int, reps: int) -> dict[str, Any]:
    """App-thread seconds for ``calls`` traced calls (``base``: a closed port)."""
    t = TOOLS[tool](base)

    @t.parent("call")
    def call(x: int) -> int:
        return x + 1

    for i in range(500):
        call(i)
    times = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        for i in range(calls):
            call(i)
        times.append(time.perf_counter() - t0)
    return {"seconds": times}


def memory(tool: str, base: str, spans: int, sample_every: int) -> dict[str, Any]:
    """RSS growth while ``spans`` traced calls run with the collector down."""
    t = TOOLS[tool](base)

    @t.parent("call")
    def call(x: int) -> int:
        return x + 1

    for i in range(20_000):
        call(i)
    gc.collect()
    start = peak = rss_bytes()
    for _ in range(max(1, spans // sample_every)):
        for i in range(sample_every):
            call(i)
        peak = max(peak, rss_bytes())
    return {"start": start, "peak": peak}


def short_script(tool: str, base: str) -> dict[str, Any]:
    """A short traced script: one parent, nine children; then a normal interpreter exit."""
    t = TOOLS[tool](base)

    @t.child("step")
    def step(x: int) -> int:
        return x + 1

    @t.parent("script")
    def script() -> int:
        return sum(step(i) for i in range(9))

    script()
    return {"ok": True}


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "percall": percall,
    "startup": startup,
    "throughput": throughput,
    "app_thread": app_thread,
    "memory": memory,
    "short_script": short_script,
}


def main() -> None:
    # short_script: the exit, with each tool's own exit-time flushing, is what is measured
    run_workload(WORKLOADS, normal_exit=sys.argv[1] == "short_script")


if __name__ == "__main__":
    main()
