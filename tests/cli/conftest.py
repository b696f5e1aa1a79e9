"""Fixtures for the CLI tests: a running ``serve`` (in-process) over a temporary directory."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from truefoundry_tracing.cli._serve import LocalServer


class Output(io.StringIO):
    """What serve printed, safe to write from the server's threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)


@pytest.fixture
def serve_out() -> Output:
    return Output()


@pytest.fixture
def serve(tmp_path: Path, serve_out: Output) -> Iterator[LocalServer]:
    """``truefoundry-tracing serve`` on a free port, storing into ``tmp_path / "data"``."""
    with LocalServer(tmp_path / "data", port=0, out=serve_out) as server:
        yield server
