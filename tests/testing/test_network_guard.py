"""The offline guard every test runs under: nothing but loopback, in threads and children."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from truefoundry_tracing.testing import FakeLLMServer, NetworkBlocked, block_network
from truefoundry_tracing.testing._network import child_environment


def test_lookups_and_connections_off_the_machine_are_blocked_and_reported() -> None:
    expected = r"lookup of api\.openai\.com.*203\.0\.113\.7:443"
    with pytest.raises(AssertionError, match=expected), block_network():
        with pytest.raises(NetworkBlocked):
            socket.getaddrinfo("api.openai.com", 443)
        with socket.socket() as sock, pytest.raises(NetworkBlocked):
            sock.connect(("203.0.113.7", 443))


def test_a_swallowed_attempt_in_a_background_thread_still_fails_the_block() -> None:
    def telemetry() -> None:
        with contextlib.suppress(OSError):  # telemetry clients swallow their errors
            socket.getaddrinfo("telemetry.crewai.com", 4319)

    with pytest.raises(AssertionError, match=r"telemetry\.crewai\.com"), block_network():
        thread = threading.Thread(target=telemetry)
        thread.start()
        thread.join()


def test_loopback_and_reserved_names_pass(llm: FakeLLMServer) -> None:
    with block_network() as attempts:
        socket.getaddrinfo("localhost", 80)
        with socket.create_connection(("127.0.0.1", int(llm.url.rsplit(":", 1)[1]))):
            pass
        with pytest.raises(socket.gaierror):  # answered "unknown host", nothing leaves
            socket.getaddrinfo("no-such-host.invalid", 443)
    assert attempts == []


def test_a_child_process_writes_its_attempts_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "attempts.log"
    env = {"PATH": "/usr/bin:/bin", **child_environment(str(log), str(tmp_path))}
    code = "import socket\ntry:\n    socket.getaddrinfo('pypi.org', 443)\nexcept OSError as e:\n"
    code += "    print(type(e).__name__)\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.strip() == "NetworkBlocked", result.stderr
    assert log.read_text().startswith("lookup of pypi.org (socket.getaddrinfo)")
