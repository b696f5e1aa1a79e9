"""The pytest plugin, registered through the ``pytest11`` entry point.

Fixtures:

- ``tfy_spans``: every span that starts and ends during the test, in memory
  (a :class:`~truefoundry_tracing.testing.CapturedSpans`); ``init()`` calls made by the test
  or the code under test are undone afterwards.
- ``tfy_llm_server``: a local OpenAI-compatible server (:class:`FakeLLMServer`).
- ``tfy_otlp_receiver``: a local OTLP/HTTP receiver (:class:`OTLPReceiver`).

Under pytest, the destination variables (``TFY_HOST``, ``TFY_BASE_URL``,
``TFY_TRACING_ENDPOINT``, ``TRACELOOP_BASE_URL``) that were already set when the session
started are ignored by ``init()``: a developer's shell never makes a test send traces. A value
the test sets itself (``monkeypatch.setenv``), or an explicit ``init(host=...)``, is honoured.
``--tfy-allow-export`` (or the ini option ``tfy_tracing_allow_export = true``) lifts this.

A failing test that used ``tfy_spans`` gets a report section with the captured trace tree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .._server._receiver import OTLPReceiver
    from ._capture import CapturedSpans
    from ._llm_server import FakeLLMServer

_SPANS_KEY = pytest.StashKey["CapturedSpans"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("truefoundry-tracing")
    group.addoption(
        "--tfy-allow-export",
        action="store_true",
        default=False,
        help="let init() send traces to a destination configured in the shell environment",
    )
    parser.addini(
        "tfy_tracing_allow_export",
        type="bool",
        default=False,
        help="let init() send traces to a destination configured in the shell environment",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("tfy_allow_export") or config.getini("tfy_tracing_allow_export"):
        return
    from .. import _api

    _api._test_env = {k: os.environ[k] for k in _api._DESTINATION_VARS if k in os.environ}


def pytest_unconfigure(config: pytest.Config) -> None:
    from .. import _api

    _api._test_env = None


@pytest.fixture
def tfy_spans(request: pytest.FixtureRequest) -> Iterator[CapturedSpans]:
    """Spans finished during this test, captured in memory; nothing goes over the network.

    Example::

        def test_answer(tfy_spans):
            answer("hi")
            tfy_spans.assert_tree("answer.workflow > fetch.task")
    """
    from ._capture import capture_spans

    with capture_spans() as spans:
        request.node.stash[_SPANS_KEY] = spans
        yield spans


@pytest.fixture
def tfy_llm_server() -> Iterator[FakeLLMServer]:
    """A local OpenAI-compatible server; point ``openai.OpenAI(base_url=...)`` at it.

    Example::

        def test_chat(tfy_llm_server):
            tfy_llm_server.reply("Paris")
            client = openai.OpenAI(base_url=tfy_llm_server.base_url, api_key="test")
    """
    from ._llm_server import FakeLLMServer

    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def tfy_otlp_receiver() -> Iterator[OTLPReceiver]:
    """A local OTLP/HTTP receiver that records what really goes over the wire.

    Example::

        def test_wire(tfy_otlp_receiver):
            init(host=tfy_otlp_receiver.url, api_key="k" * 20, disable_batch=True)
    """
    from .._server._receiver import OTLPReceiver

    with OTLPReceiver() as receiver:
        yield receiver


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    spans = item.stash.get(_SPANS_KEY, None)
    if spans is not None and report.when == "call" and report.failed:
        # A report section must never hide the real failure.
        with contextlib.suppress(Exception):
            report.sections.append(("truefoundry-tracing spans", spans.snapshot().tree()))
    return report
