"""Fixtures for the CLI tests: a running ``serve`` (in-process) over a temporary directory."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

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


def send_otlp_json(url: str, doc: Mapping[str, Any]) -> None:
    """POST one OTLP/JSON export request to ``url`` (a ``serve``) and expect 200."""
    request = urllib.request.Request(
        url + "/api/otel/v1/traces",
        data=json.dumps(doc).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


@pytest.fixture
def otlp_json() -> Callable[[str, Mapping[str, Any]], None]:
    """:func:`send_otlp_json`, for tests that build their own OTLP/JSON documents."""
    return send_otlp_json
