"""Many workflows at once, in threads and in asyncio tasks: nothing crosses between them.

Each workflow tags itself (its own workflow name and association properties) and checks,
from the spans, that every span of its trace carries its own tags and the right parent.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

import truefoundry_tracing as tt
from truefoundry_tracing import task, tool, workflow
from truefoundry_tracing.spans import SpanRecord
from truefoundry_tracing.testing import CapturedSpans

ASSOC = "traceloop.association.properties."
WF_NAME = "traceloop.workflow.name"


@tool
def lookup(n: int) -> int:
    return n * 2


@task
def step(n: int) -> int:
    return lookup(n) + 1


@task
async def astep(n: int) -> int:
    await asyncio.sleep(0)  # let the other 199 workflows run in between
    return lookup(n) + 1


def by_trace(spans: CapturedSpans) -> dict[str, list[SpanRecord]]:
    out: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        out[span.trace_id].append(span)
    return out


def check_trace(spans: list[SpanRecord], *, steps: int) -> str:
    """One root workflow, its steps under it and a tool under each step; returns its owner."""
    (root,) = [s for s in spans if s.parent_id is None]
    owner = str(root.attributes[ASSOC + "owner"])
    wf_name = root.attributes[WF_NAME]
    assert isinstance(wf_name, str) and wf_name.endswith(owner)
    ids = {s.span_id: s for s in spans}
    steps_seen = [s for s in spans if s.parent_id == root.span_id]
    assert len(steps_seen) == steps
    for span in spans:
        assert span.attributes[ASSOC + "owner"] == owner, (span.name, owner)
        assert span.attributes[WF_NAME] == wf_name
        if span is not root:
            assert span.parent_id in ids
        if span.name == "lookup.tool":
            assert ids[span.parent_id or ""].name in ("step.task", "astep.task")
    return owner


def test_32_threads_keep_their_workflows_apart(tfy_spans: CapturedSpans) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(32)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for round_ in range(5):
                owner = f"t{n}-r{round_}"

                @workflow(name=f"wf-{owner}")
                def run(owner: str = owner) -> int:
                    with tt.association_properties(owner=owner):
                        return sum(step(i) for i in range(3))

                assert run() == sum(2 * i + 1 for i in range(3))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    traces = by_trace(tfy_spans)
    assert len(traces) == 32 * 5
    owners = sorted(check_trace(spans, steps=3) for spans in traces.values())
    assert owners == sorted(f"t{n}-r{r}" for n in range(32) for r in range(5))


async def test_200_concurrent_asyncio_workflows_keep_apart(tfy_spans: CapturedSpans) -> None:
    async def one(n: int) -> int:
        owner = f"a{n}"

        @workflow(name=f"wf-{owner}")
        async def run() -> int:
            with tt.association_properties(owner=owner):
                results = await asyncio.gather(astep(1), astep(2))
                return sum(results)

        return await run()

    results = await asyncio.gather(*(one(n) for n in range(200)))
    assert results == [3 + 5] * 200
    traces = by_trace(tfy_spans)
    assert len(traces) == 200
    owners = sorted(check_trace(spans, steps=2) for spans in traces.values())
    assert owners == sorted(f"a{n}" for n in range(200))


def test_threads_started_inside_a_workflow_join_its_trace(tfy_spans: CapturedSpans) -> None:
    tt.init("threads", console=False)  # installs the threading context propagation

    @workflow(name="fan-out-owner")
    def fan_out() -> list[int]:
        results: list[int] = []
        with tt.association_properties(owner="owner"):
            threads = [
                threading.Thread(target=lambda i=i: results.append(step(i))) for i in range(8)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return sorted(results)

    assert fan_out() == [2 * i + 1 for i in range(8)]
    (spans,) = by_trace(tfy_spans).values()
    check_trace(spans, steps=8)
