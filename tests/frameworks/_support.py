"""Helpers shared by the framework tests (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import truefoundry_tracing as tt
from truefoundry_tracing.spans import SpanList
from truefoundry_tracing.testing import SpanRecord

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "frameworks"
TRACELOOP = importlib.metadata.version("traceloop-sdk")
TL_038 = TRACELOOP.startswith("0.38.")
API_KEY = "sk-test-not-a-real-key"
NOT_TRACED = "not traced: "


def load_example(name: str) -> ModuleType:
    """Import ``examples/frameworks/<name>.py`` (its app factory is what the tests drive)."""
    spec = importlib.util.spec_from_file_location(
        f"examples_frameworks_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # frameworks resolve type hints through sys.modules
    spec.loader.exec_module(module)
    return module


def require_instrumented(name: str) -> tt.TracingStatus:
    """init() with the defaults; skip (by name, with the reason) where the framework's
    instrumentation cannot work on this line, fail when it should have and did not."""
    status = tt.init("framework-tests", console=False)
    outcome = {o.name: o for o in status.instrument_report}[name]
    if outcome.state in ("incompatible", "unavailable"):
        # the prefix makes docs/_gen/compat_table.py list it as a gap of this line
        pytest.skip(
            f"{NOT_TRACED}{name} is {outcome.state} on traceloop-sdk {TRACELOOP}: {outcome.reason}"
        )
    assert outcome.active, str(outcome)
    return status


def parent(spans: SpanList, span: SpanRecord) -> SpanRecord:
    found = spans.parent(span)
    assert found is not None, f"{span.name} has no parent among:\n{spans.tree()}"
    return found


def one_trace(spans: SpanList, root: str) -> SpanList:
    """All spans form one trace whose single root is ``root``; returns them by start time."""
    assert len(spans.traces()) == 1, spans.tree()
    assert spans.root.name == root, spans.tree()
    return spans.sorted()


def tree_names(console: str) -> list[str]:
    """Span names of a trace tree as printed by the console default, in printed order."""
    return [
        re.sub(r"^[│├└─ ]+", "", line).split("  ")[0]
        for line in console.splitlines()
        if re.search(r"\[[a-z]+\]", line)
    ]
