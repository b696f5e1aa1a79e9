"""No silent gaps: a library whose model calls nothing can see is reported, with the fix."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

import truefoundry_tracing as tt
from truefoundry_tracing._frameworks._gaps import failure_hint


def _fake_dist(root: Path, name: str, version: str) -> None:
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_dspy_3_default_engine_is_no_longer_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """This library's DSPy instrumentation records the default engine's model calls
    (tests/frameworks/test_dspy.py), so neither the report nor doctor calls them untraced."""
    from truefoundry_tracing.cli._doctor import run_doctor

    _fake_dist(tmp_path, "dspy", "3.4.1")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="truefoundry_tracing"):
        status = tt.init("gaps", console=False)
    assert not [o for o in status.instrument_report if "DSPy 3.4.1" in o.reason]
    assert not [r for r in caplog.records if "dspy is not traced" in r.getMessage()]
    assert not [n for n in run_doctor(env={}).notes if n.startswith("dspy")]


def test_an_explicit_instrument_list_reports_no_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_dist(tmp_path, "dspy", "3.4.1")
    monkeypatch.syspath_prepend(str(tmp_path))
    status = tt.init("gaps", console=False, instruments=["openai"])
    # only as kept, when an earlier init() in this process applied its instrumentation
    assert {o.state for o in status.instrument_report if o.name == "dspy"} <= {"kept"}


def test_failures_on_a_new_major_name_the_versions_that_work() -> None:
    # google-genai on traceloop-sdk 0.38: traced by this library's instrumentation
    assert failure_hint("google_generativeai", "1.52.0") == ""
    assert failure_hint("google_generativeai", "0.8.5") == failure_hint("openai", "3.54.0") == ""
    assert failure_hint("haystack", "3.4.1") == ""  # traced by this library's own instrumentation
    assert failure_hint("mcp", "2.3.0") == ""  # traced by this library's own instrumentation


def test_google_genai_under_an_instrumentation_for_the_old_sdk_is_no_longer_a_gap() -> None:
    """traceloop-sdk 0.38's instrumentation wraps only the old google-generativeai SDK; this
    library's records google-genai there (tests/frameworks/test_google_genai.py)."""
    from truefoundry_tracing._frameworks._gaps import untraced

    def installed(inst: str) -> Callable[[str], str | None]:
        found = {"google-genai": "3.6.1", "opentelemetry-instrumentation-google-generativeai": inst}
        return found.get

    assert untraced(installed("0.38.12")) == untraced(installed("0.62.4")) == []
