"""Loopback ports for tests that run beside others (``pytest -n``).

A port found free and then released can be taken by another test's server before it is used,
so a test that needs "nothing listens here" holds the port (:class:`HeldPort`), and a test that
hands a port to another process checks who listens on it (:func:`listener_pid_owns`).
"""

from __future__ import annotations

import os
import pathlib
import socket


def free_port() -> int:
    """A loopback port free at this moment (released: see the module's docstring)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class HeldPort:
    """A loopback port held bound but never listening: a connection to it is refused, and no
    server another test starts can take it until :meth:`release`."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    def release(self) -> int:
        """Let go of the port (for a server of this test to bind); returns it."""
        self._sock.close()
        return self.port


def listener_pid_owns(pid: int, port: int) -> bool:
    """True when process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux)."""
    want = f"0100007F:{port:04X}"
    inodes = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    try:
        return any(os.readlink(fd) in inodes for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
