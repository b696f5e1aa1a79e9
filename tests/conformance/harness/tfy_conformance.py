"""pytest plugin loaded (``-p tfy_conformance``) into every run of traceloop's own test suite.

It is the same in both modes (plain traceloop, and through truefoundry_tracing), so whatever it
changes changes both runs alike:

- the process is offline: resolving or connecting to anything but a loopback address fails at
  once (``OSError``), and each attempt is recorded against the test that was running;
- the tests named in the exclusion file are deselected, each with its reason;
- when langchain-openai is not installed, ``langchain_openai``, ``langchain_core.prompts`` and
  ``langchain.prompts`` are stand-ins whose classes raise on use, so the modules that import
  them at the top still collect (their LangChain tests are excluded, with the reason);
- a test that runs longer than ``CONFORMANCE_TEST_TIMEOUT`` seconds (default 60) is stopped
  with ``TimeoutError`` (SIGALRM), so one hung test cannot stall the run;
- every test's outcome is written to the results file as JSON.

Configured by environment variables set by the runner (tests/conformance/_conformance.py):
``CONFORMANCE_RESULTS`` (output path) and ``CONFORMANCE_EXCLUDE`` (a JSON file mapping test id
to reason).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import sys
import types
from typing import Any

import pytest

_current: list[str] = [""]
_results: dict[str, dict[str, Any]] = {}
_network: dict[str, list[str]] = {}


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in ("localhost", "") or text.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(host: object) -> None:
    _network.setdefault(_current[0] or "<between tests>", []).append(str(host))
    raise OSError(f"conformance run is offline: no connection to {host!r}")


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        _refuse(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _address_host(address: Any) -> object:
    return address[0] if isinstance(address, tuple) and address else None


def _connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(
        _address_host(address)
    ):
        _refuse(_address_host(address))
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(
        _address_host(address)
    ):
        _refuse(_address_host(address))
    return _real_connect_ex(self, address)


def _stand_in(name: str, classes: tuple[str, ...]) -> types.ModuleType:
    module = types.ModuleType(name, f"Stand-in for {name}, which is not installed here.")

    def make(cls_name: str) -> type:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError(f"{name}.{cls_name} is a stand-in: {name} is not installed.")

        return type(cls_name, (), {"__init__": fail, "from_messages": staticmethod(fail)})

    for cls_name in classes:
        setattr(module, cls_name, make(cls_name))
    return module


def pytest_configure(config: pytest.Config) -> None:
    socket.getaddrinfo = _getaddrinfo
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    try:
        import langchain_openai  # noqa: F401
    except ImportError:
        sys.modules["langchain_openai"] = _stand_in("langchain_openai", ("ChatOpenAI",))
        # langchain_core.prompts (0.62's tests) and langchain.prompts (v0.38.12's), without
        # their parent packages, so no instrumentation mistakes them for LangChain.
        for name in ("langchain_core.prompts", "langchain.prompts"):
            sys.modules[name] = _stand_in(name, ("ChatPromptTemplate",))


def _excluded() -> dict[str, str]:
    path = os.environ.get("CONFORMANCE_EXCLUDE")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        data: dict[str, str] = json.load(f)
    return data


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    excluded = _excluded()
    keep, drop = [], []
    for item in items:
        (drop if item.nodeid in excluded else keep).append(item)
    for item in drop:
        _results[item.nodeid] = {"outcome": "excluded", "detail": excluded[item.nodeid]}
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _results[report.nodeid] = {"outcome": "collect-error", "detail": str(report.longrepr)}


class TestTimeout(BaseException):
    """Raised in the main thread when a test runs too long (a BaseException: code under test
    that catches Exception must not swallow it)."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise TestTimeout(f"test still running after {_timeout()} s: stopped by the conformance run")


def _timeout() -> float:
    return float(os.environ.get("CONFORMANCE_TEST_TIMEOUT") or 60)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, _timeout())
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _current[0] = nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "detail": ""})
    if report.skipped and report.when in ("setup", "call"):
        entry.update(outcome="skipped", detail=str(report.longrepr))
    elif report.failed:
        outcome = "failed" if report.when == "call" else "error"
        if entry["outcome"] not in ("failed", "error"):
            entry.update(outcome=outcome, detail=_short(report))
    if report.when == "teardown":
        _current[0] = ""


def _short(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return f"{report.when}: {crash.message}"
    return f"{report.when}: {str(report.longrepr)[-2000:]}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("CONFORMANCE_RESULTS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"tests": _results, "network": _network}, f, indent=1, sort_keys=True)
