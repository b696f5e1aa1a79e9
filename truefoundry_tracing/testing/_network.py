"""A guard that lets nothing leave the machine: every non-loopback connection or lookup fails.

:func:`block_network` installs (once per process) a :func:`sys.addaudithook` hook on the
``socket.*`` audit events. While a guard is active, connecting or sending to an address that
is not loopback, or resolving a host name other than ``localhost``, raises
:class:`NetworkBlocked` (an :class:`OSError`, so well-behaved libraries treat it as being
offline) and records the attempt, in every thread, including the background threads of
telemetry clients. The guard then fails on exit, naming each destination.

Names that can never resolve (``.invalid``, ``.test``, ``.example``, ``.localhost`` and
``example.com``/``.net``/``.org``, RFC 6761 and RFC 2606) are answered "unknown host" by the
guard itself, without recording: a test of a DNS failure runs offline and passes.

This file imports nothing from the package, so a child Python process can install the same
hook at startup (see :func:`child_environment`) without importing ``truefoundry_tracing``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["NetworkBlocked", "block_network", "child_environment"]

_ENV = "TRUEFOUNDRY_TRACING_BLOCK_NETWORK"  # set in a child: the file its attempts go to
_RESERVED_SUFFIXES = (".invalid", ".test", ".example", ".localhost")
_RESERVED_NAMES = ("example.com", "example.net", "example.org")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_ADDRESS_EVENTS = {"socket.connect": 1, "socket.sendto": 1, "socket.sendmsg": 3}
_NAME_EVENTS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr")

_lock = threading.Lock()
_logs: list[list[str]] = []  # one per active guard, innermost last
_child_log: str | None = None  # in a child process: where attempts are written
_installed = False


class NetworkBlocked(ConnectionRefusedError):
    """Raised, while :func:`block_network` is active, in place of a connection or lookup that
    would leave the machine.

    Example:
        >>> issubclass(NetworkBlocked, OSError)
        True
    """


def _is_local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(".localhost") or _is_loopback(name)


def _is_reserved_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name.endswith(_RESERVED_SUFFIXES) or any(
        name == n or name.endswith("." + n) for n in _RESERVED_NAMES
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _record(what: str) -> None:
    with _lock:
        if _logs:
            _logs[-1].append(what)  # the innermost guard answers for it
        if _child_log is not None:
            try:
                with open(_child_log, "a", encoding="utf-8") as out:
                    out.write(f"{what} (pid {os.getpid()})\n")
            except OSError:
                pass


def _check_name(event: str, host: Any) -> None:
    if host is None:
        return
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host)
    if not host or _is_local_name(host):
        return
    if _is_reserved_name(host):
        import socket

        raise socket.gaierror(socket.EAI_NONAME, f"{host} cannot resolve (blocked offline)")
    _record(f"lookup of {host} ({event})")
    raise NetworkBlocked(
        f"truefoundry_tracing.testing blocked a lookup of {host}: tests run offline."
    )


def _check_address(event: str, address: Any) -> None:
    if not isinstance(address, tuple) or not address:
        return  # a Unix socket path, or a family without host addresses
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str) or _is_loopback(host) or host.lower() in _LOCAL_NAMES:
        return
    port = address[1] if len(address) > 1 else "?"
    _record(f"connection to {host}:{port} ({event})")
    raise NetworkBlocked(
        f"truefoundry_tracing.testing blocked a connection to {host}:{port}: tests run offline."
    )


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith("socket.") or not (_logs or _child_log is not None):
        return
    position = _ADDRESS_EVENTS.get(event)
    if position is not None:
        if len(args) > position:
            _check_address(event, args[position])
    elif event in _NAME_EVENTS and args:
        _check_name(event, args[0])


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


@contextmanager
def block_network(check: bool = True) -> Iterator[list[str]]:
    """Fail any connection or host lookup that would leave the machine, in every thread.

    Yields the list of blocked attempts (``"connection to 203.0.113.9:443 (socket.connect)"``,
    ``"lookup of api.openai.com (socket.getaddrinfo)"``). With ``check`` (the default), leaving
    the block raises :class:`AssertionError` listing them, so a telemetry thread that swallowed
    the error still fails the test. With guards nested, the innermost one records. Loopback
    addresses, ``localhost`` and Unix sockets are allowed. Python's audit hooks cannot be
    removed: the hook stays installed, idle, after the last guard exits.

    Example:
        >>> import socket
        >>> with block_network(check=False) as attempts:
        ...     try:
        ...         socket.getaddrinfo("api.openai.com", 443)
        ...     except OSError as exc:
        ...         print(type(exc).__name__)
        NetworkBlocked
        >>> attempts
        ['lookup of api.openai.com (socket.getaddrinfo)']

    A pytest fixture for a whole suite::

        @pytest.fixture(autouse=True)
        def _offline():
            with block_network():
                yield
    """
    _install()
    log: list[str] = []
    with _lock:
        _logs.append(log)
    try:
        yield log
    finally:
        with _lock:
            _logs.remove(log)
    if check and log:
        raise AssertionError(
            "Something tried to reach the network (blocked): "
            + "; ".join(dict.fromkeys(log))
            + ". Turn off the library's telemetry or point it at a local server."
        )


def child_environment(log_file: str, directory: str) -> Mapping[str, str]:
    """Variables that make a child Python process block its network the same way.

    Writes ``sitecustomize.py`` into ``directory``; attempts made in the child are appended
    to ``log_file``, one per line. Merge the result into the child's environment.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     env = child_environment(d + "/attempts.log", d)
        >>> sorted(env)
        ['PYTHONPATH', 'TRUEFOUNDRY_TRACING_BLOCK_NETWORK']
    """
    with open(os.path.join(directory, "sitecustomize.py"), "w", encoding="utf-8") as out:
        out.write(
            f"import runpy\nrunpy.run_path({os.path.abspath(__file__)!r})['_install_from_env']()\n"
        )
    path = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": directory + (os.pathsep + path if path else ""),
        _ENV: log_file,
    }


def _install_from_env() -> None:
    """In a child started with :func:`child_environment`: install the hook, logging to a file."""
    global _child_log
    target = os.environ.get(_ENV)
    if target:
        _child_log = target
        _install()
