"""Frameworks imported *after* ``init()`` are instrumented as they are imported.

The other framework tests import their framework before ``init()`` (as most apps do), which
instruments it at once; here each example runs in a fresh process both ways and must give the
same trace, so deferring the instrumentation to the import loses nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="framework environments only (scripts/test)")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "frameworks"

SCRIPT = """
import importlib.util, json, sys
from contextlib import ExitStack
import truefoundry_tracing as tt
from truefoundry_tracing.testing import capture_spans

def load(path):
    spec = importlib.util.spec_from_file_location("example_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # frameworks resolve type hints through sys.modules
    spec.loader.exec_module(module)
    return module

path, order, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if order == "import-first":
    example = load(path)
status = tt.init("deferred", console=False)
at_init = {o.name: o.state for o in status.instrument_report}
if order == "init-first":
    example = load(path)  # imports the framework: its instrumentation is applied here
with ExitStack() as stack, capture_spans(isolate=False) as spans:
    example.make_app(*example.endpoint(stack))(*args)
print(json.dumps({
    "at_init": at_init,
    "after": {o.name: o.state for o in status.instrument_report},
    "spans": sorted([s.name, s.kind, s.attributes.get("traceloop.span.kind")] for s in spans),
}))
"""

CASES = {
    "langchain_chain": ("langchain", ["France"]),
    "langgraph_agent": ("langchain", ["Paris"]),
    "llamaindex_query": ("llama_index", ["What is the capital of France?"]),
    "crewai_crew": ("crewai", []),
}


Run = Callable[[list[str]], subprocess.CompletedProcess[str]]


def run(run_offline: Run, example: str, order: str, args: list[str]) -> dict[str, Any]:
    result = run_offline(["-c", SCRIPT, str(EXAMPLES / f"{example}.py"), order, *args])
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


@pytest.mark.parametrize("example", sorted(CASES))
def test_a_framework_imported_after_init_traces_the_same(example: str, run_offline: Run) -> None:
    framework, args = CASES[example]
    deferred = run(run_offline, example, "init-first", args)
    eager = run(run_offline, example, "import-first", args)
    assert deferred["at_init"][framework] == "deferred"
    assert deferred["at_init"]["openai"] == "deferred"
    assert eager["at_init"][framework] in ("applied", "incompatible", "unavailable")
    assert deferred["after"][framework] == eager["after"][framework]
    assert deferred["spans"] == eager["spans"]
    assert len(deferred["spans"]) >= 2  # the workflow and what the framework traced inside it
