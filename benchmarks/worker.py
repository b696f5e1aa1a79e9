"""One measurement in a fresh process; prints its result as one JSON line.

Each workload needs a process of its own: ``init()`` and ``Traceloop.init()`` set the global
tracer provider once, and start-up costs are only visible in a new interpreter.

    python -m benchmarks.worker NAME '{"arg": ...}'
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

KIND = "traceloop.span.kind"
NAME = "traceloop.entity.name"
WORKFLOW = "traceloop.workflow.name"
PATH = "traceloop.entity.path"
INPUT = "traceloop.entity.input"
OUTPUT = "traceloop.entity.output"
ITEMS = "truefoundry.generator.items"

# Small attributes of the kind a real decorated call or an instrumentation records.
SPAN_ATTRIBUTES = {
    KIND: "task",
    NAME: "step",
    WORKFLOW: "bench",
    PATH: "step",
    INPUT: '{"args": [1], "kwargs": {}}',
    OUTPUT: "2",
}


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- start-up -----------------------------------------------------------------------------


def _first_call(llm: str) -> Callable[[], None]:
    """An OpenAI client built before any timer starts, and its first chat call."""
    import openai

    client = openai.OpenAI(base_url=llm, api_key="sk-bench", max_retries=0)

    def call() -> None:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    return call


def init_ours(url: str, llm: str) -> dict[str, Any]:
    call = _first_call(llm)  # the app has imported its LLM client already

    t0 = time.perf_counter()
    import truefoundry_tracing as tt

    t1 = time.perf_counter()
    status = tt.init(app_name="bench", endpoint=url, console=False)
    t2 = time.perf_counter()
    call()
    t3 = time.perf_counter()
    return {
        "init": t2 - t1,
        "import_and_init": t2 - t0,
        "to_first_call": t3 - t0,
        "instruments": [str(o) for o in status.instrument_report if o.active],
    }


def init_anchor(url: str, llm: str) -> dict[str, Any]:
    call = _first_call(llm)

    t0 = time.perf_counter()
    from traceloop.sdk import Traceloop

    t1 = time.perf_counter()
    Traceloop.init(app_name="bench", api_endpoint=url, telemetry_enabled=False)
    t2 = time.perf_counter()
    call()
    t3 = time.perf_counter()
    return {"init": t2 - t1, "import_and_init": t2 - t0, "to_first_call": t3 - t0}


def init_bare(side: str, url: str) -> dict[str, Any]:
    """Seconds of the set-up call alone, after its package's import, in a bare process."""
    if side == "ours":
        import truefoundry_tracing as tt

        c0, t0 = time.process_time(), time.perf_counter()
        tt.init(app_name="bench", endpoint=url, console=False)
    else:
        from traceloop.sdk import Traceloop

        c0, t0 = time.process_time(), time.perf_counter()
        Traceloop.init(app_name="bench", api_endpoint=url, telemetry_enabled=False)
    return {"init": time.perf_counter() - t0, "cpu": time.process_time() - c0}


# -- decorator overhead -------------------------------------------------------------------


def _raw_pipeline() -> tuple[Any, Any, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, provider.get_tracer("raw"), exporter


def _raw_attrs(name: str, args: tuple[Any, ...]) -> dict[str, Any]:
    return {
        KIND: "task",
        NAME: name,
        WORKFLOW: "bench",
        PATH: name,
        INPUT: json.dumps({"args": args, "kwargs": {}}),
    }


# A decorator factory: name -> decorator (``tt.task``, ``logfire.instrument``...).
Deco = Callable[[str], Callable[[Callable[..., Any]], Callable[..., Any]]]


def tool_sync(parent: Deco, child: Deco, n: int) -> Callable[[], float]:
    """Per-call ns of ``n`` synchronous child calls inside one parent call."""

    @child("step")
    def step(x: int) -> int:
        return x + 1

    @parent("bench")
    def run() -> float:
        t0 = time.perf_counter_ns()
        for i in range(n):
            step(i)
        return (time.perf_counter_ns() - t0) / n

    return run


def _ours_sync(tt: Any, n: int) -> Callable[[], float]:
    return tool_sync(lambda n: tt.workflow(name=n), lambda n: tt.task(name=n), n)


def _raw_sync(tracer: Any, n: int) -> Callable[[], float]:
    def step(x: int) -> int:
        with tracer.start_as_current_span("step.task", attributes=_raw_attrs("step", (x,))) as sp:
            result = x + 1
            sp.set_attribute(OUTPUT, json.dumps(result))
            return result

    def run() -> float:
        with tracer.start_as_current_span("bench.workflow", attributes={WORKFLOW: "bench"}):
            t0 = time.perf_counter_ns()
            for i in range(n):
                step(i)
            return (time.perf_counter_ns() - t0) / n

    return run


def tool_async(parent: Deco, child: Deco, n: int) -> Callable[[], float]:
    """Per-call ns of ``n`` awaited child calls inside one parent coroutine."""

    @child("step")
    async def step(x: int) -> int:
        return x + 1

    @parent("bench")
    async def run() -> float:
        t0 = time.perf_counter_ns()
        for i in range(n):
            await step(i)
        return (time.perf_counter_ns() - t0) / n

    return lambda: asyncio.run(run())


def _ours_async(tt: Any, n: int) -> Callable[[], float]:
    return tool_async(lambda n: tt.workflow(name=n), lambda n: tt.task(name=n), n)


def _raw_async(tracer: Any, n: int) -> Callable[[], float]:
    async def step(x: int) -> int:
        with tracer.start_as_current_span("step.task", attributes=_raw_attrs("step", (x,))) as sp:
            result = x + 1
            sp.set_attribute(OUTPUT, json.dumps(result))
            return result

    async def run() -> float:
        with tracer.start_as_current_span("bench.workflow", attributes={WORKFLOW: "bench"}):
            t0 = time.perf_counter_ns()
            for i in range(n):
                await step(i)
            return (time.perf_counter_ns() - t0) / n

    return lambda: asyncio.run(run())


def tool_gen(parent: Deco, child: Deco, n: int) -> Callable[[], float]:
    """Per-call ns of ``n`` child generators of 3 items, consumed inside one parent call."""

    @child("step")
    def step(x: int) -> Any:
        yield x
        yield x + 1
        yield x + 2

    @parent("bench")
    def run() -> float:
        t0 = time.perf_counter_ns()
        for i in range(n):
            for _ in step(i):
                pass
        return (time.perf_counter_ns() - t0) / n

    return run


def _ours_gen(tt: Any, n: int) -> Callable[[], float]:
    return tool_gen(lambda n: tt.workflow(name=n), lambda n: tt.task(name=n), n)


def _raw_gen(tracer: Any, n: int) -> Callable[[], float]:
    def body(x: int) -> Any:
        yield x
        yield x + 1
        yield x + 2

    def step(x: int) -> Any:
        with tracer.start_as_current_span("step.task", attributes=_raw_attrs("step", (x,))) as sp:
            items = []
            for item in body(x):
                items.append(item)
                yield item
            sp.set_attribute(OUTPUT, json.dumps(items))
            sp.set_attribute(ITEMS, len(items))

    def run() -> float:
        with tracer.start_as_current_span("bench.workflow", attributes={WORKFLOW: "bench"}):
            t0 = time.perf_counter_ns()
            for i in range(n):
                for _ in step(i):
                    pass
            return (time.perf_counter_ns() - t0) / n

    return run


_SHAPES = {
    "sync": (_ours_sync, _raw_sync),
    "async": (_ours_async, _raw_async),
    "generator": (_ours_gen, _raw_gen),
}


def decorators(shape: str, calls: int, rounds: int, warmup: int) -> dict[str, Any]:
    """Per-call cost of a @task inside a @workflow vs the same raw spans, rounds interleaved."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import truefoundry_tracing as tt

    ours_exporter = InMemorySpanExporter()
    tt.init(app_name="bench", exporter=ours_exporter, console=False, instruments=())
    _, tracer, raw_exporter = _raw_pipeline()
    make_ours, make_raw = _SHAPES[shape]
    ours, raw = make_ours(tt, calls), make_raw(tracer, calls)
    ours_ns: list[float] = []
    raw_ns: list[float] = []
    for i in range(warmup + rounds):
        for fn, out, exporter in ((ours, ours_ns, ours_exporter), (raw, raw_ns, raw_exporter)):
            tt.flush(5.0)
            exporter.clear()
            gc.collect()
            value = fn()
            if i >= warmup:
                out.append(value)
    tt.flush(5.0)
    spans = ours_exporter.get_finished_spans()
    check = [s for s in spans if s.name == "step.task"]
    return {
        "ours_ns": ours_ns,
        "raw_ns": raw_ns,
        "ours_task_attributes": sorted(check[0].attributes or {}) if check else [],
    }


# -- export behaviour ---------------------------------------------------------------------


def app_thread(url: str, calls: int, reps: int) -> dict[str, Any]:
    """Seconds the app's thread spends on ``calls`` decorated calls, exporting to ``url``."""
    import truefoundry_tracing as tt

    tt.init(app_name="bench", endpoint=url, console=False, instruments=())

    @tt.workflow(name="bench")
    def handle(x: int) -> int:
        return x + 1

    for i in range(500):
        handle(i)
    times: list[float] = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        for i in range(calls):
            handle(i)
        times.append(time.perf_counter() - t0)
    return {"seconds": times, "median": statistics.median(times)}


def _produce(tracer: Any, n: int) -> None:
    for _ in range(n):
        tracer.start_span("span", attributes=SPAN_ATTRIBUTES).end()


def throughput(side: str, url: str, spans: int, burst: int) -> dict[str, Any]:
    """Spans per second from first span to the collector acknowledging the last one.

    Spans come in bursts no larger than the batch processor's queue, each followed by a
    flush, so nothing is dropped on either side; the receiver's count proves it.
    """
    if side == "ours":
        from opentelemetry import trace

        import truefoundry_tracing as tt

        st = tt.init(app_name="bench", endpoint=url, console=False, instruments=())
        tracer = trace.get_tracer_provider().get_tracer("bench")

        def flush() -> None:
            tt.flush(30.0)

        def dropped() -> int:
            return st.dropped
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        tracer = provider.get_tracer("bench")

        def flush() -> None:
            provider.force_flush(30_000)

        def dropped() -> int:
            return 0

    _produce(tracer, burst)  # warm-up: connection, encoder, code paths
    flush()
    t0 = time.perf_counter()
    left = spans
    while left > 0:
        _produce(tracer, min(burst, left))
        left -= burst
        flush()
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "spans": spans + burst, "dropped": dropped()}


def shutdown(url: str, limit: float | None) -> dict[str, Any]:
    """Seconds ``shutdown()`` takes while the collector holds every request unanswered."""
    import truefoundry_tracing as tt

    kwargs: dict[str, Any] = {} if limit is None else {"timeout": limit}
    st = tt.init(app_name="bench", endpoint=url, console=False, instruments=(), **kwargs)

    @tt.task(name="step")
    def step(x: int) -> int:
        return x + 1

    for i in range(1000):
        step(i)
    tt.flush(0.2)  # an export is now in flight, held by the collector
    t0 = time.perf_counter()
    done = tt.shutdown()
    elapsed = time.perf_counter() - t0
    configured = 5.0 if limit is None else limit
    return {"seconds": elapsed, "timeout": configured, "done": done, "dropped": st.dropped}


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "init_ours": init_ours,
    "init_anchor": init_anchor,
    "init_bare": init_bare,
    "decorators": decorators,
    "app_thread": app_thread,
    "throughput": throughput,
    "shutdown": shutdown,
}


def run_workload(workloads: dict[str, Callable[..., dict[str, Any]]], normal_exit: bool) -> None:
    """Run ``argv[1]`` with the JSON arguments ``argv[2]``; print its result as one JSON line.

    Unless ``normal_exit``, leave with ``os._exit``: exit-time flushing must not hold the run
    while a collector is closed or hung.
    """
    name, raw_args = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    result = workloads[name](**json.loads(raw_args))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    if normal_exit:
        return
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    run_workload(WORKLOADS, normal_exit=False)


if __name__ == "__main__":
    main()
