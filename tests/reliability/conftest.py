"""Fixtures for the reliability tests: a network watch on the app's own thread.

The promise "tracing never makes the app wait on the collector" is checked directly, not by a
stopwatch alone: a process-wide audit hook (:func:`sys.addaudithook`) records every network
operation (DNS lookup, connect, HTTP send) made by a watched thread. A test watches its own
thread while it calls decorated functions; any export done on that thread shows up.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _ports import HeldPort

_NETWORK_EVENTS = frozenset(
    {
        "socket.getaddrinfo",
        "socket.connect",
        "socket.sendto",
        "http.client.connect",
        "http.client.send",
    }
)
# thread id -> network events seen on that thread while it is watched
_watched: dict[int, list[str]] = {}
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _NETWORK_EVENTS and _watched:
        seen = _watched.get(threading.get_ident())
        if seen is not None:
            seen.append(event)


@contextlib.contextmanager
def _watch() -> Iterator[list[str]]:
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # cannot be removed; idle unless a thread is watched
        _hook_installed = True
    ident = threading.get_ident()
    seen: list[str] = []
    _watched[ident] = seen
    try:
        yield seen
    finally:
        del _watched[ident]


@pytest.fixture
def network_on_this_thread() -> Callable[[], contextlib.AbstractContextManager[list[str]]]:
    """``with network_on_this_thread() as seen:`` lists network operations of this thread."""
    return _watch


@pytest.fixture
def held_port() -> Iterator[HeldPort]:
    held = HeldPort()
    try:
        yield held
    finally:
        held.release()


@pytest.fixture
def closed_port(held_port: HeldPort) -> int:
    """A loopback port nothing listens on, for the whole test."""
    return held_port.port
