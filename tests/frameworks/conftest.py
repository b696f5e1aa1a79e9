"""Fixtures for the framework tests, which run in the framework environments only.

``bash scripts/test`` builds ``.venv/fw-latest`` and ``.venv/fw-038`` from
``constraints/frameworks-*.txt`` and runs this folder there. In the other environments each
module skips itself (``pytest.importorskip``) because its framework is not installed.

Everything runs offline against ``FakeLLMServer``: CrewAI's telemetry and trace prompt are
switched off here, before any framework is imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import truefoundry_tracing as tt
from truefoundry_tracing.spans import SpanList
from truefoundry_tracing.testing import SpanRecord

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "frameworks"
TRACELOOP = importlib.metadata.version("traceloop-sdk")
TL_038 = TRACELOOP.startswith("0.38.")
API_KEY = "sk-test-not-a-real-key"


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
        pytest.skip(f"{name} on traceloop-sdk {TRACELOOP}: {outcome.reason}")
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


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[Callable[[str], tuple[str, str]]]:
    """Run an example as a fresh process, offline, in a scratch HOME; returns (stdout, stderr)."""

    def run(name: str) -> tuple[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TFY_", "TRACELOOP_", "OTEL_", "CREWAI_"))
        }
        env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{name}.py")],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        return result.stdout, result.stderr

    yield run
