"""The pytest plugin (``tfy_spans``, ``tfy_llm_server``, ``tfy_otlp_receiver``), through pytester.

Each inner session runs in a subprocess (``runpytest_subprocess``), so it starts with a fresh
global tracer provider and loads the plugin from its ``pytest11`` entry point, as a user's
session would. Subprocess runs cost about a second each, so one set of inner files covers every
scenario and is run three ways, one test each: in file order, in reverse order with
``--tfy-allow-export``, and under pytest-xdist with ``-n 2``.

Inner scenarios: ``init()`` at import time (``test_a.py``) and per test with other app names,
``enabled=False`` and ``trace_content=False``; async tests; a span that ends after its test
returned; the LLM and OTLP fixtures; failing tests whose report shows the trace tree; and the
shell-environment rule (``TFY_HOST`` set before the session is ignored unless
``--tfy-allow-export``; a value the test sets itself is honoured).
"""

from __future__ import annotations

import time

import pytest

from truefoundry_tracing.testing import OTLPReceiver

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

APP = '''
import threading

from truefoundry_tracing import task, workflow

LATE = {}


@task(name="step")
def step(x):
    return x


@workflow(name="flow")
def flow(x):
    return step(x)


@workflow(name="aflow")
async def aflow(x):
    return step(x)


def start_late_span():
    """Start a span in a background thread; it ends only when ``release`` is set."""
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    @task(name="late")
    def late():
        started.set()
        release.wait(10)

    def body():
        late()
        ended.set()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    started.wait(5)
    LATE.update(thread=thread, release=release, ended=ended)
'''

TEST_A = """
import asyncio

import truefoundry_tracing as tt

import app

STATUS = tt.init(app_name="import-time", console=False, instruments=[])


def services(spans):
    return {s.service_name for s in spans}


def test_a_import_time_init(tfy_spans):
    assert STATUS.app_name == "import-time"
    assert app.flow(1) == 1
    assert len(tfy_spans) == 2
    assert services(tfy_spans) == {"import-time"}
    tfy_spans.assert_tree("flow.workflow > step.task")


def test_a_own_app_name(tfy_spans):
    tt.init(app_name="a-named", console=False, instruments=[])
    app.flow(2)
    assert len(tfy_spans) == 2
    assert services(tfy_spans) == {"a-named"}


def test_a_disabled(tfy_spans):
    tt.init(app_name="a-off", enabled=False, console=False, instruments=[])
    assert app.flow(3) == 3
    assert len(tfy_spans) == 0


def test_a_no_content(tfy_spans):
    tt.init(app_name="a-quiet", trace_content=False, console=False, instruments=[])
    app.flow("canary-5e1d")
    assert len(tfy_spans) == 2
    tfy_spans.assert_absent("canary-5e1d")


async def test_a_async(tfy_spans):
    results = await asyncio.gather(*(app.aflow(i) for i in range(5)))
    assert results == [0, 1, 2, 3, 4]
    assert len(tfy_spans) == 10
    assert len(tfy_spans.traces()) == 5
    assert services(tfy_spans) == {"import-time"}


def test_a_late_start(tfy_spans):
    app.start_late_span()
    app.flow(4)
    assert len(tfy_spans) == 2  # "late" is still open when this test returns


def test_a_late_next(tfy_spans):
    late = app.LATE.pop("thread", None)
    if late is not None:  # same process as test_a_late_start: end its span during this test
        app.LATE["release"].set()
        late.join(5)
        assert app.LATE["ended"].is_set()
    app.flow(5)
    assert len(tfy_spans) == 2
    assert "late.task" not in tfy_spans.names
"""

TEST_B = """
import os

import truefoundry_tracing as tt

import app


def test_b_no_init_here(tfy_spans):
    app.flow(1)
    assert len(tfy_spans) == 2
    assert not {s.service_name for s in tfy_spans} & {"b-one", "b-two", "a-named", "c-llm", "shell"}


def test_b_one(tfy_spans):
    tt.init(app_name="b-one", console=False, instruments=[])
    app.flow(1)
    app.flow(2)
    assert len(tfy_spans) == 4
    assert {s.service_name for s in tfy_spans} == {"b-one"}


def test_b_two(tfy_spans):
    assert tt.status() is None or tt.status().app_name == "import-time"
    tt.init(app_name="b-two", console=False, instruments=[])
    app.flow(1)
    assert len(tfy_spans) == 2
    assert {s.service_name for s in tfy_spans} == {"b-two"}


def test_b_clear(tfy_spans):
    app.flow(1)
    tfy_spans.clear()
    app.flow(2)
    assert len(tfy_spans) == 2


def test_b_otlp_receiver(tfy_spans, tfy_otlp_receiver):
    tt.init(
        app_name="wire",
        endpoint=tfy_otlp_receiver.url,
        disable_batch=True,
        console=False,
        instruments=[],
    )
    app.flow(1)
    assert tt.flush(timeout=5)
    got = tfy_otlp_receiver.wait_for_spans(2)
    assert sorted(s.name for s in got) == ["flow.workflow", "step.task"]
    assert {s.service_name for s in got} == {"wire"}
    assert len(tfy_spans) == 2


def test_b_shell_host(tfy_spans):
    # TFY_HOST came from the shell that started the session.
    tt.init(app_name="shell", disable_batch=True, console=False, instruments=[])
    app.flow(1)
    tt.flush(timeout=5)
    assert len(tfy_spans) == 2


def test_b_own_host(tfy_spans, monkeypatch):
    # A value the test sets itself is honoured.
    monkeypatch.setenv("TFY_HOST", os.environ["OUTER_RECEIVER_URL"] + "/")
    st = tt.init(app_name="own", disable_batch=True, console=False, instruments=[])
    assert st.destination == "truefoundry"
    app.flow(1)
    assert tt.flush(timeout=5)
    assert len(tfy_spans) == 2
"""

TEST_C = """
import truefoundry_tracing as tt


def test_c_llm_server(tfy_spans, tfy_llm_server):
    import openai  # only here: importing it and its instrumentation takes a second

    tt.init(app_name="c-llm", console=False, instruments=["openai"])
    tfy_llm_server.reply("Paris")
    client = openai.OpenAI(base_url=tfy_llm_server.base_url, api_key="k", max_retries=0)
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "capital?"}]
    )
    assert reply.choices[0].message.content == "Paris"
    assert len(tfy_spans) == 1
    assert tfy_spans.llm().output_text == "Paris"
    assert tfy_llm_server.last_request.json["messages"][0]["content"] == "capital?"
"""

TEST_FAIL = """
import app


def test_fail_shows_tree(tfy_spans):
    app.flow(1)
    assert len(tfy_spans) == 99


def test_fail_assert_tree(tfy_spans):
    app.flow(1)
    tfy_spans.assert_tree("flow.workflow > missing.task")
"""

PASSING = 7 + 7  # test_a.py + test_b.py (test_c.py: one more, run once)


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in (
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_XDIST_TESTRUNUID",
        "PYTEST_ADDOPTS",
        "TFY_TRACING_ENABLED",
        "TFY_TRACING_INSTRUMENTS",
    ):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(app=APP, test_a=TEST_A, test_b=TEST_B, test_c=TEST_C, test_fail=TEST_FAIL)
    return pytester


def _service_names(receiver: OTLPReceiver, expect: str | None = None) -> set[str]:
    """service.name of every span received (the inner session has exited, and flushed)."""
    deadline = time.monotonic() + 5
    names = {s.service_name for s in receiver.spans}
    while expect is not None and expect not in names and time.monotonic() < deadline:
        time.sleep(0.05)
        names = {s.service_name for s in receiver.spans}
    return names


@pytest.fixture
def shell_host(monkeypatch: pytest.MonkeyPatch, tfy_otlp_receiver: OTLPReceiver) -> OTLPReceiver:
    """TFY_HOST set in the environment the inner session starts with, as a developer's shell."""
    monkeypatch.setenv("TFY_HOST", tfy_otlp_receiver.url)
    monkeypatch.setenv("OUTER_RECEIVER_URL", tfy_otlp_receiver.url)
    return tfy_otlp_receiver


def test_file_order_failure_reports_and_shell_host_ignored(
    inner: pytest.Pytester, shell_host: OTLPReceiver
) -> None:
    result = inner.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "test_a.py",
        "test_b.py",
        "test_c.py",
        "test_fail.py",
    )
    result.assert_outcomes(passed=PASSING + 1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fail_shows_tree _*",
            "*assert 2 == 99*",
            "*- truefoundry-tracing spans -*",
            "flow.workflow  [[]workflow[]]  * ms",
            "└── step.task  [[]task[]]  * ms",
            "*_ test_fail_assert_tree _*",
            "*AssertionError: no path 'flow.workflow > missing.task' from a root*",
            "*flow.workflow  [[]workflow[]]  * ms",
            "*└── step.task  [[]task[]]  * ms",
            "*- truefoundry-tracing spans -*",
            "flow.workflow  [[]workflow[]]  * ms",
            "└── step.task  [[]task[]]  * ms",
        ]
    )
    # The shell's TFY_HOST sent nothing; the value test_b_own_host set itself did.
    names = _service_names(shell_host, expect="own")
    assert "own" in names
    assert "shell" not in names
    assert "import-time" not in names


def test_reverse_order_with_allow_export_sends_to_shell_host(
    inner: pytest.Pytester, shell_host: OTLPReceiver
) -> None:
    result = inner.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--tfy-allow-export",
        "test_b.py",
        "test_a.py",
    )
    result.assert_outcomes(passed=PASSING)
    names = _service_names(shell_host, expect="shell")
    assert {"shell", "own", "import-time"} <= names


def test_xdist_two_workers(inner: pytest.Pytester, shell_host: OTLPReceiver) -> None:
    result = inner.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "-n", "2", "test_a.py", "test_b.py"
    )
    result.assert_outcomes(passed=PASSING)
    result.stdout.fnmatch_lines(["*2 workers*"])
    names = _service_names(shell_host, expect="own")
    assert "own" in names
    assert "shell" not in names  # ignored in the workers too
    assert "import-time" not in names


RETIRING = """
import logging, socket, time

import truefoundry_tracing as tt

HELD = socket.socket()  # bound, never listening: every export to it is refused
HELD.bind(("127.0.0.1", 0))
URL = f"http://127.0.0.1:{HELD.getsockname()[1]}"


@tt.task(name="step")
def step():
    return 1


def test_first_moves_away_from_a_refusing_destination(tfy_spans):
    tt.init("first", host=URL, api_key="k" * 20, timeout=1)
    step()
    tt.init("second", console=False)  # the first exporter retires in the background


def test_second_hears_nothing_of_the_first(caplog):
    caplog.set_level(logging.WARNING, logger="truefoundry_tracing")
    time.sleep(2)  # longer than the first test's retirement deadline
    assert [r.getMessage() for r in caplog.records] == []
"""


def test_a_retirement_a_test_started_is_reported_in_that_test_not_the_next(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(test_retiring=RETIRING)
    result = inner.runpytest_subprocess("-p", "no:randomly", "test_retiring.py")
    result.assert_outcomes(passed=2)
