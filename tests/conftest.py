"""Shared fixtures: a clean environment and tracing state per test, and real local servers.

Every test starts with no ``TFY_*``, ``TRACELOOP_*`` or ``OTEL_*`` variable set (a developer's
shell never leaks in) and with whatever ``init()`` it calls undone afterwards, so tests pass in
any order and in any subset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import openai

    from truefoundry_tracing.testing import FakeLLMServer, OTLPReceiver

# Helpers shared by the suites in sub-folders (``from _polling import wait_until``).
sys.path.insert(0, os.path.dirname(__file__))

_PREFIXES = ("TFY_", "TRACELOOP_", "OTEL_")
OPENAI_TEST_KEY = "sk-test-not-a-real-key"


@pytest.fixture(scope="session")
def _network_guard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("network-guard")


@pytest.fixture(autouse=True)
def _no_network(
    _network_guard_dir: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Nothing leaves the machine: a non-loopback connection or lookup fails the test, in
    this process and in the Python processes it starts (through their ``sitecustomize``)."""
    from truefoundry_tracing.testing import block_network
    from truefoundry_tracing.testing._network import child_environment

    log = _network_guard_dir / f"{abs(hash(request.node.nodeid))}-{os.getpid()}.log"
    for name, value in child_environment(str(log), str(_network_guard_dir)).items():
        monkeypatch.setenv(name, value)
    with block_network():
        yield
    if log.exists():
        attempts = log.read_text(encoding="utf-8").strip().replace("\n", "; ")
        log.unlink()
        pytest.fail(f"A child process tried to reach the network (blocked): {attempts}.")


@pytest.fixture(autouse=True)
def _clean_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No tracing variables from the shell; init() calls made by the test are undone after."""
    for name in list(os.environ):
        if name.upper().startswith(_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    from truefoundry_tracing import _state

    saved = _state.snapshot()
    try:
        yield
    finally:
        _state.restore(saved)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    """A local OTLP/HTTP receiver (``receiver.url`` is its base URL)."""
    from truefoundry_tracing.testing import OTLPReceiver

    with OTLPReceiver() as server:
        yield server


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    """A local OpenAI-compatible server (``llm.base_url`` for the client)."""
    from truefoundry_tracing.testing import FakeLLMServer

    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def openai_client(llm: FakeLLMServer) -> Iterator[openai.OpenAI]:
    """A real ``openai.OpenAI`` client talking to :func:`llm`, without retries."""
    import openai

    with openai.OpenAI(base_url=llm.base_url, api_key=OPENAI_TEST_KEY, max_retries=0) as client:
        yield client


CHILD_PRELUDE = """
import json, logging
warnings = []
class _Keep(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
logging.getLogger("truefoundry_tracing").addHandler(_Keep())
logging.getLogger("truefoundry_tracing").setLevel(logging.WARNING)
"""


@pytest.fixture
def fresh_python() -> Callable[..., dict[str, Any]]:
    """Run a script in a fresh interpreter; return the JSON object its last stdout line prints.

    For process-wide state (what is imported, instrumented or gated) that the rest of the suite
    has long since settled. The script sees ``warnings``, the messages ``truefoundry_tracing``
    logged at WARNING and above; the environment is the test's, already free of tracing
    variables.
    """

    def run(script: str, timeout: float = 120) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return data

    return run


# Every test of these modules starts fresh Python processes (or a whole pytest run): slow.
_SLOW_MODULES = {
    "test_lifecycle.py",
    "test_examples.py",
    "test_deferred.py",
    "test_benchmarks_smoke.py",
    "test_collector.py",
    "test_install.py",
    "test_traceloop_dropin.py",
}
_SLOW_DIRS = {"frameworks", "conformance"}
_SLOW_FIXTURES = {"fresh_python", "pytester"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what starts other Python processes ``slow``: ``-m "not slow"`` is the quick loop."""
    for item in items:
        path = item.path
        if (
            path.name in _SLOW_MODULES
            or path.parent.name in _SLOW_DIRS
            or _SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        ):
            item.add_marker(pytest.mark.slow)
