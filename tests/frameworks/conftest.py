"""Fixtures for the framework tests, which run in the framework environments only.

``bash scripts/test`` builds ``.venv/fw-latest`` and ``.venv/fw-038`` from
``constraints/frameworks-*.txt`` and runs this folder there. In the other environments each
module skips itself (``pytest.importorskip``) because its framework is not installed.

Everything runs offline against local fakes, under the offline guard of ``tests/conftest.py``
(in the examples' child processes too): the frameworks' own telemetry is left as a user's app
has it, for ``init()`` to turn off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _compat import GAP, register

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "frameworks"


@pytest.fixture
def run_offline(tmp_path: Path) -> Callable[[list[str]], subprocess.CompletedProcess[str]]:
    """Run ``python <args>`` as a fresh process, offline, in a scratch HOME; it must succeed."""

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TFY_", "TRACELOOP_", "OTEL_", "CREWAI_"))
        }
        env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
        result = subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        return result

    return run


@pytest.fixture
def run_example(
    run_offline: Callable[[list[str]], subprocess.CompletedProcess[str]],
) -> Callable[[str], tuple[str, str]]:
    """Run an example as a fresh process, offline, in a scratch HOME; returns (stdout, stderr)."""

    def run(name: str) -> tuple[str, str]:
        result = run_offline([str(EXAMPLES / f"{name}.py")])
        return result.stdout, result.stderr

    return run


def pytest_configure(config: pytest.Config) -> None:
    register(config)


@pytest.fixture
def known_gap(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a gap this test pins (the docs' compatibility table lists it for this line):
    ``known_gap("tool calls are missing from the LLM span")``."""

    def record(reason: str) -> None:
        request.node.user_properties.append((GAP, reason))

    return record
