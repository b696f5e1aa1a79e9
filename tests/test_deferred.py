"""Instrumentations ``init()`` defers to the library's first import or first use.

Each case runs in a fresh interpreter: whether a library is imported, instrumented or gated is
process-wide state that the rest of the suite has long since settled.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest

Run = Callable[[str], dict[str, Any]]

PRELUDE = """
import asyncio, inspect, sys, threading

import truefoundry_tracing as tt
from truefoundry_tracing.testing import FakeLLMServer, capture_spans

def loaded():
    return "opentelemetry.instrumentation.openai" in sys.modules

def report(status):
    return [str(o) for o in status.instrument_report]

def ask(client):
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

out = {}
"""


@pytest.fixture
def run(fresh_python: Callable[..., dict[str, Any]]) -> Run:
    """Run a case's body after PRELUDE in a fresh interpreter; return its ``out``."""
    return lambda body: fresh_python(PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))")


FIRST_USE = (
    "openai: deferred (instrumented when the app first creates or uses an OpenAI client or "
    "starts its first traced function, so init() stays fast.)"
)
ON_IMPORT = (
    "openai: deferred (openai is not imported yet; it is instrumented as the app imports it.)"
)


def test_a_library_imported_after_init_is_instrumented_as_it_is_imported(run: Run) -> None:
    out = run(
        """
        status = tt.init("lazy", console=False, instruments=["openai"])
        out["at_init"] = report(status)
        out["loaded_at_init"] = loaded()
        import openai
        out["loaded_after_import"] = loaded()
        out["after_import"] = report(status)
        with FakeLLMServer() as llm, capture_spans(isolate=False) as spans:
            ask(openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0))
        out["spans"] = [s.name for s in spans]
        out["warnings"] = warnings
        """
    )
    assert out["at_init"] == [ON_IMPORT]
    assert out["loaded_at_init"] is False
    assert out["loaded_after_import"] is True
    assert out["after_import"] == ["openai: applied"]
    assert out["spans"] == ["openai.chat"]
    assert out["warnings"] == []


@pytest.mark.parametrize("created", ["before init", "after init"])
def test_an_imported_openai_is_instrumented_on_first_use_and_the_first_call_is_traced(
    run: Run, created: str
) -> None:
    make = "client, aclient = clients()"
    before, after = (make, "pass") if created == "before init" else ("pass", make)
    out = run(
        f"""
        import openai
        llm = FakeLLMServer().start()
        def clients():
            return (
                openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0),
                openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0),
            )
        {before}
        status = tt.init("lazy", console=False, instruments=["openai"])
        out["at_init"] = report(status)
        out["loaded_at_init"] = loaded()
        {after}
        out["loaded_after_client"] = loaded()
        with capture_spans(isolate=False) as spans:
            ask(client)
            asyncio.run(aclient.chat.completions.create(
                model="m", messages=[{{"role": "user", "content": "hi"}}]
            ))
            client.embeddings.create(model="e", input="hi")
        llm.stop()
        out["spans"] = sorted(s.name for s in spans)
        out["after_use"] = report(status)
        out["warnings"] = warnings
        """
    )
    assert out["at_init"] == [FIRST_USE]
    assert out["loaded_at_init"] is False
    # creating a client is setup, outside any span: the instrumentation loads there; a client
    # created before init() loads it on its first use instead, still before the first call
    assert out["loaded_after_client"] is (created == "after init")
    assert out["spans"] == ["openai.chat", "openai.chat", "openai.embeddings"]
    assert out["after_use"] == ["openai: applied"]
    assert out["warnings"] == []


def test_a_decorated_function_loads_the_gated_instrumentation_before_its_span_starts(
    run: Run,
) -> None:
    out = run(
        """
        import time
        import openai
        llm = FakeLLMServer().start()
        # created before init(), so creating it was no trigger
        client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)
        status = tt.init("lazy", console=False, instruments=["openai"])
        out["at_init"] = report(status)

        @tt.workflow(name="wf")
        def answer(client):
            out["loaded_in_body"] = loaded()
            out["body_started"] = time.time_ns()
            ask(client)

        with capture_spans(isolate=False) as spans:
            out["loaded_before_call"] = loaded()
            answer(client)
        llm.stop()
        workflow = next(s for s in spans if s.name == "wf.workflow")
        # the loading happened before the span started, not between its start and the body
        out["span_to_body_ms"] = (out.pop("body_started") - workflow.start_ns) / 1e6
        out["spans"] = sorted(s.name for s in spans)
        out["after_use"] = report(status)
        out["warnings"] = warnings
        """
    )
    assert out["at_init"] == [FIRST_USE]
    assert out["loaded_before_call"] is False
    assert out["loaded_in_body"] is True
    assert out["span_to_body_ms"] < 100  # the instrumentation alone takes several hundred ms
    assert out["spans"] == ["openai.chat", "wf.workflow"]
    assert out["after_use"] == ["openai: applied"]
    assert out["warnings"] == []


def test_deprecation_warnings_as_errors_do_not_stop_the_instrumentation(run: Run) -> None:
    # projects running their tests with filterwarnings = error; traceloop's openai
    # instrumentation raises a pydantic deprecation warning as it is imported
    out = run(
        """
        import warnings
        import openai
        status = tt.init("strict", console=False, instruments=["openai"])
        warnings.simplefilter("error", DeprecationWarning)
        with FakeLLMServer() as llm, capture_spans(isolate=False) as spans:
            ask(openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0))
        out["spans"] = [s.name for s in spans]
        out["after_use"] = report(status)
        out["filters_kept"] = warnings.filters[0][:2] == ("error", None)
        """
    )
    assert out == {"spans": ["openai.chat"], "after_use": ["openai: applied"], "filters_kept": True}


def test_a_client_used_before_init_loses_one_call_and_says_so_once(run: Run) -> None:
    out = run(
        """
        import openai
        with FakeLLMServer() as llm:
            client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)
            ask(client)  # builds client.chat.completions before init()
            status = tt.init("lazy", console=False, instruments=["openai"])
            with capture_spans(isolate=False) as spans:
                for _ in range(3):
                    ask(client)
        out["spans"] = [s.name for s in spans]
        out["after_use"] = report(status)
        out["warnings"] = warnings
        """
    )
    assert out["spans"] == ["openai.chat", "openai.chat"]
    assert out["after_use"] == ["openai: applied"]
    assert out["warnings"] == [
        "truefoundry_tracing: an OpenAI call started before the OpenAI instrumentation was in "
        "place, so that call is not traced; later calls are. The client it went through was "
        "first used before init(): call init() before the first use of an OpenAI client."
    ]


def test_the_gate_leaves_the_client_as_it_was(run: Run) -> None:
    out = run(
        """
        import openai
        from openai._base_client import AsyncAPIClient, SyncAPIClient
        from openai._resource import SyncAPIResource
        def methods():
            return (
                openai.OpenAI.__init__, SyncAPIResource.__init__, SyncAPIClient.request,
                AsyncAPIClient.request,
            )
        before = methods()
        signature = inspect.signature(openai.OpenAI)
        tt.init("lazy", console=False, instruments=["openai"])
        out["gated"] = all(now is not was for now, was in zip(methods(), before))
        out["async_kept"] = inspect.iscoroutinefunction(AsyncAPIClient.request)
        out["signature_kept"] = (
            inspect.signature(SyncAPIClient.request) == inspect.signature(before[2])
            and inspect.signature(openai.OpenAI) == signature
        )
        tt.init("lazy", console=False, instruments=[])  # no longer wanted: gate comes off
        out["restored"] = methods() == before
        with FakeLLMServer() as llm, capture_spans(isolate=False) as spans:
            ask(openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0))
        out["spans_when_not_wanted"] = [s.name for s in spans]
        out["loaded"] = loaded()
        status = tt.init("lazy", console=False, instruments=["openai"])  # wanted again
        out["again"] = report(status)
        with FakeLLMServer() as llm, capture_spans(isolate=False) as spans:
            ask(openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0))
        out["spans_again"] = [s.name for s in spans]
        """
    )
    assert out["gated"] and out["async_kept"] and out["signature_kept"]
    assert out["restored"]
    assert out["spans_when_not_wanted"] == []
    assert out["loaded"] is False
    assert out["again"] == [FIRST_USE]
    assert out["spans_again"] == ["openai.chat"]


def test_many_threads_reaching_the_gate_at_once_instrument_once(run: Run) -> None:
    out = run(
        """
        import openai
        tt.init("lazy", console=False, instruments=["openai"])
        start = threading.Barrier(8)
        with FakeLLMServer() as llm, capture_spans(isolate=False) as spans:
            def worker():
                client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)
                start.wait()
                ask(client)
            threads = [threading.Thread(target=worker) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        out["spans"] = [s.name for s in spans]
        out["warnings"] = warnings
        """
    )
    assert out["spans"] == ["openai.chat"] * 8  # every call, none twice
    assert out["warnings"] == []


def test_a_deferred_instrumentation_that_fails_warns_and_never_breaks_the_import(run: Run) -> None:
    out = run(
        """
        import dataclasses
        from truefoundry_tracing import _instruments
        broken = dataclasses.replace(_instruments.KNOWN["requests"], cls="NoSuchInstrumentor")
        _instruments.KNOWN["requests"] = broken
        status = tt.init("lazy", console=False, instruments=["requests"])
        out["at_init"] = report(status)
        import requests  # the hook fires here; the app's import must still work
        out["imported"] = requests.__name__
        out["after_import"] = report(status)
        out["instruments"] = list(status.instruments)
        out["warnings"] = warnings
        """
    )
    assert out["at_init"] == [
        "requests: deferred (requests is not imported yet; it is instrumented as the app "
        "imports it.)"
    ]
    assert out["imported"] == "requests"
    [after] = out["after_import"]
    assert after.startswith("requests: failed (opentelemetry-instrumentation-requests ")
    assert "AttributeError" in after
    assert out["instruments"] == []
    assert out["warnings"] == [f"truefoundry_tracing: requests is not traced: {after}"]


@pytest.mark.parametrize("later", ["import", "use"])
def test_shutdown_before_first_use_cancels_what_was_deferred(later: str, run: Run) -> None:
    out = run(
        f"""
        {"import openai" if later == "use" else ""}
        tt.init("lazy", console=False, instruments=["openai"])
        tt.shutdown()
        import openai
        with FakeLLMServer() as llm:
            client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)
            reply = client.chat.completions.create(
                model="m", messages=[{{"role": "user", "content": "hi"}}]
            )
        out["reply"] = reply.choices[0].message.content
        out["loaded"] = loaded()
        out["warnings"] = warnings
        """
    )
    assert out["reply"]
    assert out["loaded"] is False
    assert out["warnings"] == []
