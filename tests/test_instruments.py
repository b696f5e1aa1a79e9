"""What ``init()`` instruments, and the per-library report on the status it returns.

These run in the normal test environments, where no agent framework is installed: the
framework environments (``tests/frameworks/``) cover the other side.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

import truefoundry_tracing as tt
from truefoundry_tracing import _instruments
from truefoundry_tracing._instruments import KNOWN, InstrumentOutcome, check_names
from truefoundry_tracing.testing import capture_spans

FRAMEWORKS = {
    "langchain": "langchain-core",
    "llama_index": "llama-index-core",
    "crewai": "crewai",
    "haystack": "haystack-ai",
    "openai_agents": "openai-agents",
    "agno": "agno",
}


def installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def by_name(status: tt.TracingStatus) -> dict[str, InstrumentOutcome]:
    return {o.name: o for o in status.instrument_report}


needs_no_frameworks = pytest.mark.skipif(
    any(installed(d) for d in FRAMEWORKS.values()),
    reason="an agent framework is installed here; tests/frameworks/ covers this environment",
)


@needs_no_frameworks
def test_without_frameworks_init_applies_nothing_extra_and_says_so(
    openai_client: openai.OpenAI,
) -> None:
    status = tt.init("plain", console=False)
    report = by_name(status)
    for name, dist in FRAMEWORKS.items():
        assert report[name].state == "not installed", report[name]
        assert report[name].reason == f"{dist} is not installed."
        assert status.skipped_instruments[name] == f"not installed: {dist} is not installed."
    # traced means installed, and only from the default (LLM, framework, vector DB) table;
    # deferred ones are applied on first use (tests/test_deferred.py)
    assert "openai" in status.instruments
    for name in status.instruments:
        assert report[name].state in ("applied", "deferred")
        assert report[name].library_version == installed(KNOWN[name].dists[0])
        assert KNOWN[name] in _instruments.DEFAULT
    assert len(status.instrument_report) == len(_instruments.DEFAULT)

    @tt.workflow(name="plain_app")
    def app() -> str:
        reply = openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        return reply.choices[0].message.content or ""

    with capture_spans() as spans:
        app()
    assert [(s.name, s.kind) for s in spans.sorted()] == [
        ("plain_app.workflow", "INTERNAL"),
        ("openai.chat", "CLIENT"),
    ]
    assert by_name(status)["openai"].state == "applied"


def test_report_names_the_versions_of_what_it_applied(openai_client: openai.OpenAI) -> None:
    status = tt.init("versions", console=False, instruments=["openai"])
    openai_client.models.list()  # first use applies a deferred instrumentation
    outcome = by_name(status)["openai"]
    assert outcome == InstrumentOutcome(
        "openai",
        "applied",
        "",
        importlib.metadata.version("openai"),
        importlib.metadata.version("opentelemetry-instrumentation-openai"),
    )
    assert outcome.active
    assert "openai" in status.instruments
    assert "openai" not in status.skipped_instruments


def test_a_library_without_instrumentation_in_this_traceloop_line_is_unavailable() -> None:
    # httpx is installed (traceloop-sdk needs it); no traceloop line ships its instrumentation
    assert installed("httpx") and not installed("opentelemetry-instrumentation-httpx")
    status = tt.init("unavailable", console=False, instruments=["httpx"])
    outcome = by_name(status)["httpx"]
    assert outcome.state == "unavailable"
    assert outcome.library_version == installed("httpx")
    assert "opentelemetry-instrumentation-httpx is not" in outcome.reason
    assert f"traceloop-sdk ({installed('traceloop-sdk')})" in outcome.reason
    assert "httpx" not in status.instruments


def test_a_named_library_that_is_not_installed_is_reported_not_installed() -> None:
    assert not installed("crewai")
    status = tt.init("absent", console=False, instruments=["crew"])
    assert str(by_name(status)["crewai"]) == "crewai: not installed (crewai is not installed.)"


def test_version_conflicts_are_reported_with_both_versions() -> None:
    conflict = get_dependency_conflicts(["openai < 1"])
    assert conflict is not None
    reason = _instruments._conflict_reason(conflict, KNOWN["openai"], "0.1.2")
    assert reason == (
        "opentelemetry-instrumentation-openai 0.1.2 needs openai < 1; "
        f"found openai {installed('openai')}."
    )
    missing = get_dependency_conflicts(["llama-index >= 0.7.0"])
    assert _instruments._conflict_reason(missing, KNOWN["llama_index"], "0.38.12") == (
        "opentelemetry-instrumentation-llamaindex 0.38.12 needs llama-index >= 0.7.0; "
        "it is not installed."
    )


@pytest.mark.skipif(int((installed("wrapt") or "0").split(".")[0]) < 2, reason="needs wrapt 2")
def test_instrumentations_written_for_wrapt_1_are_reported_incompatible() -> None:
    import wrapt

    # the call opentelemetry-instrumentation-langchain 0.38.12 makes first
    with pytest.raises(TypeError) as info:
        wrapt.wrap_function_wrapper(
            module="json", name="dumps", wrapper=lambda wrapped, _i, a, k: wrapped(*a, **k)
        )
    assert json.dumps([1]) == "[1]"
    outcome = _instruments._failure(info.value, KNOWN["langchain"], "1.7.2", "0.38.12")
    assert outcome == InstrumentOutcome(
        "langchain",
        "incompatible",
        f"opentelemetry-instrumentation-langchain 0.38.12 does not work with wrapt "
        f"{installed('wrapt')}; install 'wrapt<2' or a newer traceloop-sdk.",
        "1.7.2",
        "0.38.12",
    )


def test_any_other_instrumentation_error_is_reported_with_the_error() -> None:
    outcome = _instruments._failure(RuntimeError("boom"), KNOWN["cohere"], "5.0.0", "0.62.4")
    assert str(outcome) == (
        "cohere: failed (opentelemetry-instrumentation-cohere 0.62.4 raised RuntimeError: boom)"
    )
    assert not outcome.active


@pytest.mark.parametrize(
    ("names", "canonical"),
    [
        (
            ["OpenAI", " langgraph ", "llamaindex", "crew"],
            ("openai", "langchain", "llama_index", "crewai"),
        ),
        (["gemini", "google_genai", "google_generativeai"], ("google_generativeai",)),
        (["requests", ""], ("requests",)),
        ([], ()),
    ],
)
def test_names_and_aliases(names: list[str], canonical: tuple[str, ...]) -> None:
    assert check_names(names) == canonical


def test_unknown_names_are_all_listed_with_the_setting_that_named_them() -> None:
    with pytest.raises(tt.ConfigError) as info:
        check_names(["openai", "lang-chain", "foo"], "TFY_TRACING_INSTRUMENTS")
    message = str(info.value)
    assert message.startswith(
        "TFY_TRACING_INSTRUMENTS names unknown libraries: 'lang-chain', 'foo'. "
    )
    assert "langchain" in message and "llama_index" in message


def test_environment_variable_selects_instruments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFY_TRACING_INSTRUMENTS", "OpenAI, crew")
    status = tt.init("env", console=False)
    assert by_name(status)["openai"].active
    assert by_name(status)["crewai"].state == "not installed"
    assert "llama_index" not in by_name(status)  # not asked for, never applied
    assert status.sources["instruments"] == "TFY_TRACING_INSTRUMENTS"


# Earlier init() calls in this process may have applied libraries these tests do not name (they
# stay, reported as "kept"), so the tests above look libraries up by name. Instrumenting is
# process-wide and cannot be undone for traceloop's instrumentations, so the
# sequence of init() calls runs in a fresh interpreter.
NARROWING = """
import openai, requests
import truefoundry_tracing as tt
from truefoundry_tracing.testing import FakeLLMServer, capture_spans

with FakeLLMServer() as llm:
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)
    stages = []
    for instruments in (["openai", "requests"], [], [], ["openai"]):
        status = tt.init("narrow", console=False, instruments=instruments)
        with capture_spans(isolate=False) as spans:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
            requests.get(llm.url + "/v1/models", timeout=5)
        stages.append({
            "report": [str(o) for o in status.instrument_report],
            "spans": sorted(s.name for s in spans),
        })
print(json.dumps({"stages": stages, "warnings": warnings}))
"""


def test_narrowing_keeps_what_cannot_be_removed_warns_once_and_removes_the_rest(
    fresh_python: Callable[..., dict[str, Any]],
) -> None:
    data = fresh_python(NARROWING, timeout=60)
    kept = (
        "openai: kept (instrumented by an earlier init(); it cannot be removed until the "
        "process restarts.)"
    )
    assert [stage["report"] for stage in data["stages"]] == [
        ["openai: applied", "requests: applied"],
        [kept],
        [kept],
        ["openai: applied"],
    ]
    # requests really unwrapped; openai really still traced, and never twice
    assert [stage["spans"] for stage in data["stages"]] == [
        ["GET", "openai.chat"],
        ["openai.chat"],
        ["openai.chat"],
        ["openai.chat"],
    ]
    assert [w for w in data["warnings"] if "stays instrumented" in w] == [
        "truefoundry_tracing: openai stays instrumented: it was instrumented by an earlier "
        "init() and traceloop's instrumentation cannot be removed from a running process. "
        "Restart the process to stop tracing it."
    ]
