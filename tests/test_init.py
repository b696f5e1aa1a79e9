"""``init()`` end to end: real OTLP/HTTP over loopback to the local ``OTLPReceiver``.

Spans come from the library's decorators and from a real ``openai`` client talking to the local
``FakeLLMServer``; what is asserted is what arrived over the wire (path, headers, decoded
protobuf). Things that need a fresh process (the global tracer provider can be set once per
process, import side effects, stray network requests) run in a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from _polling import wait_until
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import truefoundry_tracing as tt
from truefoundry_tracing import _state
from truefoundry_tracing._pipeline import get_pipeline
from truefoundry_tracing.testing import (
    FakeLLMServer,
    OTLPReceiver,
    ReceivedRequest,
    SpanRecord,
    capture_spans,
)

KEY = "tfy-canary-key-Hq7Wm2Zr5"
OTHER_KEY = "tfy-second-key-Pv4Nk8Ts1"
PROJECT = "tenant:tracing-project:support"
CANARY = "CANARY-Xy9Qp3-content"
KIND = "traceloop.span.kind"
TFY_PATH = "/api/otel/v1/traces"
MODEL = "gpt-4o-mini"


# --------------------------------------------------------------------------------------------
# a small app: workflow > task > (tool, openai.chat)
# --------------------------------------------------------------------------------------------


def make_app(client: openai.OpenAI) -> Callable[[str], str]:
    @tt.tool(name="search")
    def search(query: str) -> str:
        return f"results for {query}"

    @tt.task(name="lookup")
    def lookup(query: str) -> str:
        search(query)
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": query}]
        )
        return reply.choices[0].message.content or ""

    @tt.workflow(name="answer")
    def answer(query: str) -> str:
        return lookup(query)

    return answer


@tt.tool(name="ping")
def ping(n: int) -> int:
    return n + 1


APP_SPANS = {"answer.workflow", "lookup.task", "search.tool", "openai.chat"}


def check_tree(spans: list[SpanRecord], app_name: str) -> None:
    """The four spans of one ``answer()`` call, linked and labelled as TrueFoundry expects."""
    by = {s.name: s for s in spans}
    assert set(by) == APP_SPANS, sorted(by)
    assert len(spans) == 4
    wf, task, tool, chat = (
        by[n] for n in ("answer.workflow", "lookup.task", "search.tool", "openai.chat")
    )
    assert wf.parent_id is None
    assert task.parent_id == wf.span_id
    assert tool.parent_id == task.span_id
    assert chat.parent_id == task.span_id
    assert len({s.trace_id for s in spans}) == 1
    assert (wf.attributes[KIND], task.attributes[KIND], tool.attributes[KIND]) == (
        "workflow",
        "task",
        "tool",
    )
    assert wf.attributes["traceloop.entity.name"] == "answer"
    assert chat.kind == "CLIENT"
    assert chat.attributes["gen_ai.request.model"] == MODEL
    assert chat.attributes["traceloop.workflow.name"] == "answer"
    assert {s.service_name for s in spans} == {app_name}


def check_requests(
    requests: list[ReceivedRequest],
    *,
    path: str = TFY_PATH,
    key: str | None = KEY,
    project: str | None = PROJECT,
) -> None:
    assert requests
    for req in requests:
        assert req.method == "POST"
        assert req.path == path
        assert req.content_type == "application/x-protobuf"
        assert req.headers.get("authorization") == (f"Bearer {key}" if key else None)
        assert req.headers.get("tfy-tracing-project") == project
        assert req.ok


def no_key_anywhere(receiver: OTLPReceiver, *keys: str) -> None:
    for req in receiver.requests:
        for key in keys:
            assert key.encode() not in req.body


# --------------------------------------------------------------------------------------------
# configuration by arguments, TFY_* and the seed's TRACELOOP_* variables
# --------------------------------------------------------------------------------------------


def _by_arguments(receiver: OTLPReceiver, mp: pytest.MonkeyPatch) -> tt.TracingStatus:
    return tt.init(
        "support-bot",
        host=receiver.url + "/",
        api_key=KEY,
        tracing_project=PROJECT,
        disable_batch=True,
        timeout=2,
    )


def _by_tfy_env(receiver: OTLPReceiver, mp: pytest.MonkeyPatch) -> tt.TracingStatus:
    mp.setenv("TFY_HOST", receiver.url)
    mp.setenv("TFY_API_KEY", KEY)
    mp.setenv("TFY_TRACING_PROJECT", PROJECT)
    mp.setenv("TFY_TRACING_APP", "support-bot")
    mp.setenv("TFY_TRACING_DISABLE_BATCH", "true")
    mp.setenv("TFY_TRACING_TIMEOUT", "2")
    return tt.init()


def _traceloop(headers: str) -> Callable[[OTLPReceiver, pytest.MonkeyPatch], tt.TracingStatus]:
    def configure(receiver: OTLPReceiver, mp: pytest.MonkeyPatch) -> tt.TracingStatus:
        mp.setenv("TRACELOOP_BASE_URL", receiver.url + "/api/otel")
        mp.setenv("TRACELOOP_HEADERS", headers)
        mp.setenv("OTEL_SERVICE_NAME", "support-bot")
        return tt.init(disable_batch=True, timeout=2)

    return configure


CONFIGS = {
    "arguments": _by_arguments,
    "tfy-env": _by_tfy_env,
    "traceloop-percent20": _traceloop(
        f"Authorization=Bearer%20{KEY},TFY-Tracing-Project={PROJECT}"
    ),
    "traceloop-plain-space": _traceloop(
        f"Authorization=Bearer {KEY}, TFY-Tracing-Project={PROJECT}"
    ),
    "traceloop-stray-quote": _traceloop(
        f'"Authorization=Bearer {KEY},TFY-Tracing-Project={PROJECT}'
    ),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_spans_reach_truefoundry(
    config: str,
    receiver: OTLPReceiver,
    openai_client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status = CONFIGS[config](receiver, monkeypatch)
    assert status.destination == "truefoundry"
    assert status.traces_url == receiver.url + TFY_PATH
    assert (status.app_name, status.tracing_project) == ("support-bot", PROJECT)
    assert status.headers == {
        "Authorization": "Bearer …" + KEY[-4:],
        "TFY-Tracing-Project": PROJECT,
    }
    assert status.batch is False
    assert KEY not in repr(status) and KEY not in status.describe()

    answer = make_app(openai_client)
    assert answer("what is OTLP?") == "Echo: what is OTLP?"
    spans = receiver.wait_for_spans(4)
    check_tree(spans, "support-bot")
    check_requests(receiver.requests)
    no_key_anywhere(receiver, KEY)


def test_batched_export_after_flush(receiver: OTLPReceiver, openai_client: openai.OpenAI) -> None:
    status = tt.init("batched", host=receiver.url, api_key=KEY, tracing_project=PROJECT, timeout=2)
    assert status.batch is True
    answer = make_app(openai_client)
    answer("one")
    assert tt.flush(timeout=2) is True
    check_tree(receiver.wait_for_spans(4, timeout=2), "batched")
    assert len(receiver.requests) == 1  # one batch for the whole trace
    check_requests(receiver.requests)
    assert wait_until(lambda: status.exported == 4)
    assert status.dropped == 0


def test_endpoint_to_a_generic_collector(
    receiver: OTLPReceiver, openai_client: openai.OpenAI
) -> None:
    status = tt.init(
        "generic", endpoint=receiver.url, headers={"X-Team": "search"}, disable_batch=True
    )
    assert status.destination == "otlp"
    assert status.traces_url == receiver.url + "/v1/traces"
    make_app(openai_client)("hello")
    check_tree(receiver.wait_for_spans(4), "generic")
    check_requests(receiver.requests, path="/v1/traces", key=None, project=None)
    assert {r.headers["x-team"] for r in receiver.requests} == {"search"}


def test_custom_exporter_receives_spans(
    receiver: OTLPReceiver, openai_client: openai.OpenAI
) -> None:
    exporter = InMemorySpanExporter()
    status = tt.init("own-exporter", exporter=exporter, host=receiver.url, api_key=KEY)
    assert status.destination == "exporter" and status.traces_url is None
    make_app(openai_client)("hello")
    assert tt.flush(timeout=2)
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == sorted(APP_SPANS)
    assert receiver.requests == []  # the exporter wins over host


def test_no_metrics_or_logs_pipeline(receiver: OTLPReceiver, openai_client: openai.OpenAI) -> None:
    from opentelemetry import _logs, metrics
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider

    tt.init("no-metrics", host=receiver.url, api_key=KEY, disable_batch=True)
    make_app(openai_client)("hello")
    receiver.wait_for_spans(4)
    tt.flush(timeout=1)
    assert not isinstance(metrics.get_meter_provider(), MeterProvider)
    assert not isinstance(_logs.get_logger_provider(), LoggerProvider)
    assert {r.path for r in receiver.requests} == {TFY_PATH}
    assert not any("metrics" in r.path or "logs" in r.path for r in receiver.requests)


# --------------------------------------------------------------------------------------------
# the console default
# --------------------------------------------------------------------------------------------


def test_banner_under_pytest_says_the_shell_destination_is_ignored_on_purpose(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_state.STATE, "banner_shown", False)
    monkeypatch.setenv("TFY_HOST", "https://example.truefoundry.cloud")
    monkeypatch.setattr(_state.STATE, "test_env", {"TFY_HOST": "https://example.truefoundry.cloud"})
    status = tt.init("shell-host")
    assert status.destination == "console"
    banner = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(banner) == 1
    assert "TFY_HOST from the shell environment is ignored on purpose" in banner[0]
    assert "--tfy-allow-export" in banner[0]
    assert "Set TFY_HOST" not in banner[0]


def test_console_default_prints_trees_and_sends_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    receiver: OTLPReceiver,
    openai_client: openai.OpenAI,
) -> None:
    monkeypatch.setattr(_state.STATE, "banner_shown", False)  # once per process; checked here
    status = tt.init("console-app")
    assert (status.destination, status.console, status.traces_url) == ("console", True, None)
    assert get_pipeline().exporters == ()  # nothing that could send over the network
    out, err = capsys.readouterr()
    banner = [line for line in err.splitlines() if line.strip()]
    assert len(banner) == 1
    assert "TFY_HOST" in banner[0] and "TFY_API_KEY" in banner[0]
    assert out == ""

    answer = make_app(openai_client)
    answer("first question")
    answer("second question")
    assert tt.status() is status
    tt.init("console-app-2")  # new settings, still local: no second banner
    answer("third")
    out, err = capsys.readouterr()
    assert out == ""
    assert "TFY_HOST" not in err
    lines = err.splitlines()
    roots = [line for line in lines if line.startswith("answer.workflow")]
    assert len(roots) == 3  # one tree per finished trace
    assert all("[workflow]" in line for line in roots)
    assert sum("└── lookup.task  [task]" in line for line in lines) == 3
    assert sum("search.tool  [tool]" in line for line in lines) == 3
    llm_lines = [line for line in lines if "openai.chat" in line]
    assert len(llm_lines) == 3
    for line in llm_lines:
        assert "[llm]" in line
        assert f"model={MODEL}" in line
        assert re.search(r"tokens=\d+->\d+", line), line
        assert re.search(r"\d+\.\d ms|\d+\.\d\d s", line)
    # the tree is indented: the LLM span is two levels down
    assert all(re.match(r"^\s+(├|└)── openai\.chat", line) for line in llm_lines)
    tt.flush(timeout=1)
    assert receiver.requests == []


def test_console_can_be_turned_off(capsys: pytest.CaptureFixture[str]) -> None:
    status = tt.init("quiet", console=False)
    assert status.destination == "none"
    ping(1)
    assert "ping.tool" not in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# init() again
# --------------------------------------------------------------------------------------------


def test_same_settings_again_is_a_no_op(receiver: OTLPReceiver) -> None:
    first = tt.init("again", host=receiver.url, api_key=KEY, disable_batch=True, timeout=2)
    pipe = get_pipeline()
    exporters, delegates = list(pipe.exporters), pipe.config.delegates
    assert len(exporters) == 1
    second = tt.init("again", host=receiver.url, api_key=KEY, disable_batch=True, timeout=2)
    assert second is first
    assert pipe.config.delegates is delegates
    assert len(pipe.exporters) == 1 and pipe.exporters[0] is exporters[0]
    ping(1)
    assert len(receiver.wait_for_spans(1)) == 1
    tt.flush(timeout=1)
    assert len(receiver.spans) == 1  # not exported twice


def test_new_settings_apply_to_spans_started_afterwards(receiver: OTLPReceiver) -> None:
    with OTLPReceiver() as second:
        tt.init("first-app", host=receiver.url, api_key=KEY, disable_batch=True, timeout=2)
        ping(1)
        assert [s.name for s in receiver.wait_for_spans(1)] == ["ping.tool"]
        status = tt.init(
            "second-app",
            host=second.url,
            api_key=OTHER_KEY,
            tracing_project=PROJECT,
            disable_batch=True,
            timeout=2,
        )
        assert status.traces_url == second.url + TFY_PATH
        ping(2)
        ping(3)
        spans = second.wait_for_spans(2)
        assert {s.service_name for s in spans} == {"second-app"}
        check_requests(second.requests, key=OTHER_KEY)
        tt.flush(timeout=1)
        time.sleep(0.2)
        assert len(receiver.spans) == 1
        assert {s.service_name for s in receiver.spans} == {"first-app"}
        assert len(second.spans) == 2


def test_failed_init_leaves_the_previous_configuration(receiver: OTLPReceiver) -> None:
    before = tt.init("kept-app", host=receiver.url, api_key=KEY, disable_batch=True, console=False)
    with pytest.raises(tt.ConfigError, match="not-a-library"):
        tt.init("broken-app", console=True, instruments=["not-a-library"])
    assert tt.status() is before
    ping(1)
    spans = receiver.wait_for_spans(1, timeout=1)
    assert spans[0].service_name == "kept-app"


def test_bad_configuration_raises_before_anything_changes(receiver: OTLPReceiver) -> None:
    before = tt.init("kept-app", host=receiver.url, api_key=KEY, disable_batch=True, console=False)
    with pytest.raises(tt.ConfigError) as info:
        tt.init("broken-app", host="acme.example.com", api_key=OTHER_KEY)
    assert OTHER_KEY not in str(info.value)
    assert tt.status() is before
    ping(1)
    assert receiver.wait_for_spans(1)[0].service_name == "kept-app"


# --------------------------------------------------------------------------------------------
# enabled=False, trace_content=False, sample_rate=0
# --------------------------------------------------------------------------------------------


def test_disabled_is_a_real_kill_switch(
    receiver: OTLPReceiver,
    openai_client: openai.OpenAI,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="truefoundry_tracing")
    seen: list[bool] = []

    @tt.workflow
    def flow(x: int) -> int:
        seen.append(trace.get_current_span().get_span_context().is_valid)
        return x * 2

    @tt.task
    def numbers() -> Iterator[int]:
        yield from range(3)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = tt.init("off", host=receiver.url, api_key=KEY, enabled=False, disable_batch=True)
        with capture_spans() as spans:
            assert flow(21) == 42
            assert list(numbers()) == [0, 1, 2]
            assert make_app(openai_client)("hi") == "Echo: hi"
            assert len(spans) == 0
    assert (status.enabled, status.destination, status.traces_url) == (False, "none", None)
    assert seen == [False]  # no span around the call: a plain call
    assert tt.flush(timeout=1)
    time.sleep(0.1)
    assert receiver.requests == []
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    # (records from this thread: a previous test's exporter may still be retiring in background)
    here = threading.get_ident()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and r.thread == here] == []
    assert [w for w in caught if "truefoundry" in str(w.filename) + str(w.message)] == []


def test_disabled_by_environment(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFY_HOST", receiver.url)
    monkeypatch.setenv("TFY_API_KEY", KEY)
    monkeypatch.setenv("TFY_TRACING_ENABLED", "false")
    status = tt.init(disable_batch=True)
    assert status.enabled is False
    assert ping(1) == 2
    tt.flush(timeout=1)
    assert receiver.requests == []


def _content_off_by_argument(mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {"trace_content": False}


def _content_off_by_env(mp: pytest.MonkeyPatch) -> dict[str, Any]:
    mp.setenv("TRACELOOP_TRACE_CONTENT", "false")
    return {}


def _content_on(mp: pytest.MonkeyPatch) -> dict[str, Any]:
    return {}


@pytest.mark.parametrize(
    ("how", "content_kept"),
    [
        pytest.param(_content_off_by_argument, False, id="argument"),
        pytest.param(_content_off_by_env, False, id="TRACELOOP_TRACE_CONTENT"),
        pytest.param(_content_on, True, id="control-content-on"),
    ],
)
def test_trace_content_false_leaves_no_content(
    how: Callable[[pytest.MonkeyPatch], dict[str, Any]],
    content_kept: bool,
    receiver: OTLPReceiver,
    openai_client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kwargs = how(monkeypatch)
    status = tt.init(
        "content", host=receiver.url, api_key=KEY, tracing_project=PROJECT, timeout=2, **kwargs
    )
    assert status.trace_content is content_kept
    assert KEY not in repr(status) and KEY not in str(status) and KEY not in status.describe()

    @tt.task(name="prepare")
    def prepare(secret_note: str, *, extra: dict[str, str]) -> str:
        return f"prepared {secret_note} {extra['more']}"

    @tt.workflow(name="run")
    def run(question: str) -> str:
        prepare(question, extra={"more": question})
        reply = openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": question}]
        )
        stream = openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": question}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return (reply.choices[0].message.content or "") + streamed

    assert run(f"please summarise {CANARY}") == f"Echo: please summarise {CANARY}" * 2
    assert tt.flush(timeout=2)
    spans = receiver.wait_for_spans(4)
    assert sorted(s.name for s in spans) == sorted(
        ["run.workflow", "prepare.task", "openai.chat", "openai.chat"]
    )
    leaked = [
        (s.name, k)
        for s in spans
        for k, v in [*s.attributes.items(), *((e.name, e.attributes) for e in s.events)]
        if CANARY in str(v)
    ]
    on_wire = any(CANARY.encode() in r.body for r in receiver.requests)
    if content_kept:
        assert leaked and on_wire  # the canary is detectable when content is on
    else:
        assert leaked == []
        assert not on_wire
    no_key_anywhere(receiver, KEY)


def test_sample_rate_zero_sends_nothing(
    receiver: OTLPReceiver, openai_client: openai.OpenAI
) -> None:
    status = tt.init("sampled", host=receiver.url, api_key=KEY, sample_rate=0, disable_batch=True)
    assert status.sample_rate == 0.0
    answer = make_app(openai_client)
    for i in range(5):
        assert answer(f"q{i}") == f"Echo: q{i}"
    assert tt.flush(timeout=1)
    time.sleep(0.2)
    assert receiver.requests == []


# --------------------------------------------------------------------------------------------
# flush / shutdown bounds and export failures
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("disable_batch", [False, True])
def test_flush_and_shutdown_are_bounded_when_the_collector_hangs(
    receiver: OTLPReceiver, disable_batch: bool
) -> None:
    receiver.hang()
    tt.init("hang", host=receiver.url, api_key=KEY, disable_batch=disable_batch, timeout=1)
    for i in range(5):
        assert ping(i) == i + 1
    # That the app never waits for the collector is proven by structure, not by a timer: see
    # tests/reliability/test_faults.py (no socket operation on the app thread).

    started = time.monotonic()
    tt.flush(timeout=1)
    flushed = time.monotonic() - started
    assert wait_until(lambda: receiver.hanging >= 1, timeout=2)  # the hang really was hit
    started = time.monotonic()
    tt.shutdown(timeout=1)
    shut = time.monotonic() - started
    assert flushed < 3, flushed
    assert shut < 3, shut


@pytest.fixture
def queue_full_logger() -> Iterator[logging.Logger]:
    """The logger OpenTelemetry's batch processor reports each span dropped on a full queue to."""
    from opentelemetry.sdk import _shared_internal

    queue_logger: logging.Logger = _shared_internal._logger
    saved = queue_logger.level
    queue_logger.setLevel(logging.NOTSET)
    try:
        yield queue_logger
    finally:
        queue_logger.setLevel(saved)


def test_the_per_span_queue_full_warning_is_off_unless_the_app_set_that_logger(
    receiver: OTLPReceiver, queue_full_logger: logging.Logger
) -> None:
    # building that warning for every span ended during an outage doubled the app's time per
    # call (benchmarks, app-thread row); the exporter's own warning names the outage
    tt.init("queue", host=receiver.url, api_key=KEY)
    assert not queue_full_logger.isEnabledFor(logging.WARNING)
    assert queue_full_logger.isEnabledFor(logging.ERROR)  # export exceptions still show

    queue_full_logger.setLevel(logging.INFO)  # the app's own choice is kept
    tt.init("queue", host=receiver.url, api_key=KEY)
    assert queue_full_logger.level == logging.INFO


def test_shutdown_against_a_hanging_collector_reports_what_was_lost(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    receiver.hang()
    # timeout=5: the first export is in flight (and blocked) when shutdown(timeout=1) starts
    status = tt.init("lost", host=receiver.url, api_key=KEY, disable_batch=True, timeout=5)
    for i in range(3):
        ping(i)
    assert wait_until(lambda: receiver.hanging >= 1, timeout=2)
    started = time.monotonic()
    tt.shutdown(timeout=1)
    assert time.monotonic() - started < 3
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    # the request in flight got no answer: unconfirmed (it may have arrived), not dropped
    assert (status.dropped, status.unconfirmed) == (2, 1)
    assert len(lines) == 1, lines
    assert "2 spans were dropped" in lines[0] and "1 span was sent but got no answer" in lines[0]
    assert "deadline" in lines[0]  # the cause


def test_unauthorized_warns_once_and_counts_drops(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    receiver.respond_with(401)
    monkeypatch.setenv("TFY_HOST", receiver.url)
    monkeypatch.setenv("TFY_API_KEY", KEY)
    status = tt.init("unauthorized", disable_batch=True, timeout=2)
    for i in range(5):
        assert ping(i) == i + 1
    requests = receiver.wait_for_requests(5)
    assert [r.status for r in requests] == [401] * 5  # several batches, each refused
    assert wait_until(lambda: status.dropped == 5)
    tt.flush(timeout=1)
    # Only records about this receiver: an exporter retired by an earlier test may still log.
    records = [
        r
        for r in caplog.records
        if r.name == "truefoundry_tracing"
        and r.levelno >= logging.WARNING
        and (receiver.url in r.getMessage() or "401" in r.getMessage())
    ]
    assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert "401" in message and "TFY_API_KEY" in message
    assert KEY not in message and KEY not in caplog.text
    assert status.exported == 0
    assert status.last_error is not None and "401" in status.last_error


def test_retryable_status_is_retried_until_the_collector_recovers(
    receiver: OTLPReceiver,
) -> None:
    receiver.respond_with(503, times=2)
    status = tt.init("retry", host=receiver.url, api_key=KEY, disable_batch=True, timeout=5)
    assert ping(1) == 2
    spans = receiver.wait_for_spans(1, timeout=5)
    assert [s.name for s in spans] == ["ping.tool"]
    assert [r.status for r in receiver.requests] == [503, 503, 200]
    assert wait_until(lambda: status.exported == 1)
    assert status.dropped == 0
    tt.flush(timeout=1)
    assert len(receiver.spans) == 1  # delivered once


# --------------------------------------------------------------------------------------------
# instrumentations
# --------------------------------------------------------------------------------------------


AUTH = {"Authorization": "Bearer k"}  # FakeLLMServer, like OpenAI, wants a key


def test_default_instruments_are_llm_libraries_only(llm: FakeLLMServer) -> None:
    import requests

    status = tt.init("instruments", console=False)
    assert "openai" in status.instruments
    assert not {"requests", "urllib3", "httpx", "sqlalchemy", "redis"} & set(status.instruments)
    with capture_spans() as spans:
        requests.get(llm.url + "/v1/models", headers=AUTH, timeout=5).raise_for_status()
    assert len(spans) == 0


# Changing the instrumented libraries is process-wide and (see the xfail tests below) cannot be
# fully undone in-process, so these scenarios run in a fresh interpreter.
REQUESTS_ONLY = """
import json, sys
import requests
import truefoundry_tracing as tt
from truefoundry_tracing.testing import FakeLLMServer

status = tt.init(
    "instruments", host=sys.argv[1], api_key="{key}", disable_batch=True, instruments=["requests"]
)
with FakeLLMServer() as llm:
    requests.get(
        llm.url + "/v1/models", headers={{"Authorization": "Bearer k"}}, timeout=5
    ).raise_for_status()
print(json.dumps({{"instruments": list(status.instruments), "flushed": tt.flush(timeout=2)}}))
"""


@pytest.mark.slow
def test_instruments_requests_when_asked(receiver: OTLPReceiver) -> None:
    result = run_python(REQUESTS_ONLY.format(key=KEY), receiver.url)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data == {"instruments": ["requests"], "flushed": True}
    spans = receiver.wait_for_spans(1)
    time.sleep(0.2)
    # the GET to the LLM server, and no span for the exporter's own POSTs (no export loop)
    assert [(s.name, s.kind) for s in receiver.spans] == [("GET", "CLIENT")]
    assert spans[0].attributes.get("http.url", "").endswith("/v1/models")
    assert spans[0].service_name == "instruments"


REINIT_INSTRUMENTS = """
import json
import openai
import truefoundry_tracing as tt
from truefoundry_tracing.testing import FakeLLMServer, capture_spans

with FakeLLMServer() as llm:
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test-not-a-real-key", max_retries=0)

    def llm_spans():
        with capture_spans(isolate=False) as spans:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        return sum(s.name == "openai.chat" for s in spans)

    stages = []
    for instruments in (None, ["requests"], None):  # defaults, narrowed, defaults again
        status = tt.init("reinit", console=False, instruments=instruments)
        stages.append({"instruments": list(status.instruments), "llm_spans": llm_spans()})
print(json.dumps(stages))
"""


@pytest.fixture(scope="module")
def reinit_stages() -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_", "OTEL_"))}
    result = subprocess.run(
        [sys.executable, "-c", REINIT_INSTRUMENTS],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stages: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    assert "openai" in stages[0]["instruments"] and stages[0]["llm_spans"] == 1
    return stages


def test_narrowing_instruments_on_reinit_is_reported_truthfully(
    reinit_stages: list[dict[str, Any]],
) -> None:
    narrowed = reinit_stages[1]
    still_traced = narrowed["llm_spans"] > 0
    assert still_traced == ("openai" in narrowed["instruments"]), narrowed


@pytest.mark.slow
def test_reinit_never_duplicates_llm_spans(reinit_stages: list[dict[str, Any]]) -> None:
    assert [stage["llm_spans"] for stage in reinit_stages] == [1, reinit_stages[1]["llm_spans"], 1]


# --------------------------------------------------------------------------------------------
# fresh processes: global provider set first, import cost, stray network requests
# --------------------------------------------------------------------------------------------


def run_python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


PROVIDER_FIRST = """
import sys
from opentelemetry import trace
{setup}
import truefoundry_tracing as tt

status = tt.init(
    "first-provider", host=sys.argv[1], api_key="{key}", disable_batch=True, timeout=10,
    instruments=[],  # the provider is the point here; instrumenting costs seconds on 0.38
)

@tt.tool
def double(x):
    return x * 2

@tt.workflow
def flow():
    return double(21)

print("RESULT", flow())
print("FLUSHED", tt.flush(timeout=10))
print("PROVIDER", status.provider)
"""


@pytest.mark.parametrize(
    ("setup", "note"),
    [
        pytest.param(
            "from opentelemetry.trace import NoOpTracerProvider\n"
            "trace.set_tracer_provider(NoOpTracerProvider())",
            "NoOpTracerProvider",
            id="noop",
        ),
        pytest.param(
            "from opentelemetry.sdk.trace import TracerProvider\n"
            "trace.set_tracer_provider(TracerProvider())",
            "joined",
            id="sdk",
        ),
    ],
)
def test_a_tracer_provider_set_before_init(receiver: OTLPReceiver, setup: str, note: str) -> None:
    result = run_python(PROVIDER_FIRST.format(setup=setup, key=KEY), receiver.url)
    assert "RESULT 42" in result.stdout
    assert "FLUSHED True" in result.stdout
    provider_line = next(line for line in result.stdout.splitlines() if line.startswith("PROVIDER"))
    assert note in provider_line
    spans = receiver.wait_for_spans(2, timeout=20)
    assert sorted(s.name for s in spans) == ["double.tool", "flow.workflow"]
    by = {s.name: s for s in spans}
    assert by["double.tool"].parent_id == by["flow.workflow"].span_id
    check_requests(receiver.requests, project=None)
    assert "Traceback" not in result.stderr


def test_import_is_cheap() -> None:
    result = run_python(
        """
        import json, sys
        import truefoundry_tracing
        from truefoundry_tracing import ConfigError, workflow, task, agent, tool

        @workflow
        def unused():
            return 1

        heavy = sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("traceloop", "openai", "posthog")
            or m.startswith(("opentelemetry.exporter", "opentelemetry.instrumentation"))
        )
        print(json.dumps(heavy))
        """
    )
    assert json.loads(result.stdout) == []


class ProxyRecorder:
    """A local TCP listener posing as the HTTP(S) proxy: records every request line it gets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                self.lines.append(data.split(b"\r\n", 1)[0].decode("latin-1"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[ProxyRecorder]:
    recorder = ProxyRecorder()
    yield recorder
    recorder.close()


NO_STRAY_REQUESTS = """
import json, sys, time
import openai
import truefoundry_tracing as tt
from truefoundry_tracing.testing import FakeLLMServer, OTLPReceiver

IMAGE = {{"type": "image_url", "image_url": {{"url": "data:image/png;base64,iVBORw0KGgo="}}}}
with OTLPReceiver() as receiver, FakeLLMServer() as llm:
    status = tt.init("no-stray", host=receiver.url, api_key="{key}", disable_batch=True, timeout=2)
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test-not-a-real-key", max_retries=0)

    @tt.workflow(name="ask")
    def ask(content):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{{"role": "user", "content": content}}]
        )
        return reply.choices[0].message.content

    answers = [
        ask("hello"),
        ask([{{"type": "text", "text": "what is in this image?"}}, IMAGE]),
    ]
    receiver.wait_for_spans(4)
    tt.shutdown(timeout=2)
    time.sleep(0.5)  # time for any background uploader or telemetry thread to try
    result = {{
        "answers": answers,
        "posthog": "posthog" in sys.modules,
        "llm_paths": [r.path for r in llm.requests],
        "llm_body": llm.last_request.json,
        "otlp_paths": sorted({{r.path for r in receiver.requests}}),
        "spans": sorted(s.name for s in receiver.spans),
    }}

# Control: a stray request really does go to the recording proxy.
import requests
try:
    requests.get("http://control.invalid/probe", timeout=2)
except Exception:
    pass
print(json.dumps(result))
"""


def test_no_telemetry_image_upload_or_other_connections(proxy: ProxyRecorder) -> None:
    """init() and traced openai calls (text, then a base64 image) talk to loopback only.

    Every proxy variable points at a local recorder and only loopback bypasses it, so a request
    to anything else (traceloop's telemetry, its image uploader, a metrics endpoint) shows up
    there. A final deliberate request proves the recorder sees stray requests.
    """
    result = run_python(
        NO_STRAY_REQUESTS.format(key=KEY),
        HTTP_PROXY=proxy.url,
        HTTPS_PROXY=proxy.url,
        ALL_PROXY=proxy.url,
        http_proxy=proxy.url,
        https_proxy=proxy.url,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["answers"] == ["Echo: hello", "Echo: what is in this image?"]
    assert "image_url" in json.dumps(data["llm_body"])  # the image really was in the prompt
    assert data["posthog"] is False
    assert data["llm_paths"] == ["/v1/chat/completions"] * 2
    assert data["otlp_paths"] == [TFY_PATH]
    assert data["spans"] == ["ask.workflow", "ask.workflow", "openai.chat", "openai.chat"]
    assert wait_until(lambda: len(proxy.lines) >= 1, timeout=3)
    time.sleep(0.1)
    assert proxy.lines == ["GET http://control.invalid/probe HTTP/1.1"]
    assert "traceloop.com" not in result.stderr
