"""``_fixes.correct``: each correction module's ``patch()`` runs once per process, and a
failing one is said once in the log with its cause, never raised into ``init()``."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator

import pytest

from truefoundry_tracing._frameworks import _fixes

NAME = "truefoundry_tracing._frameworks._test_correction"


@pytest.fixture
def correction(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    """A correction module for the instrumentation ``demo``; ``calls`` counts its patch()."""
    state = types.SimpleNamespace(calls=0, error=None, applies=True)

    def patch() -> bool:
        state.calls += 1
        if state.error is not None:
            raise state.error
        return bool(state.applies)

    module = types.ModuleType(NAME)
    module.patch = patch  # type: ignore[attr-defined]
    module.FAILURE = "Demo spans could not be corrected ({exc!r}). Install demo 2."  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, NAME, module)
    monkeypatch.setitem(_fixes._CORRECTIONS, "demo", NAME.rsplit(".", 1)[1])
    monkeypatch.setattr(_fixes, "_applied", set())
    yield state


def test_a_correction_is_patched_once(correction: types.SimpleNamespace) -> None:
    assert _fixes.correct("demo") and _fixes.correct("demo")
    assert correction.calls == 1


def test_a_correction_for_another_line_is_not_applied(correction: types.SimpleNamespace) -> None:
    correction.applies = False
    assert not _fixes.correct("demo")
    assert correction.calls == 1


def test_a_failing_correction_is_said_once_with_its_cause(
    correction: types.SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    correction.error = AttributeError("SpanHolder.notify_parent")
    with caplog.at_level(logging.WARNING, logger="truefoundry_tracing"):
        assert not _fixes.correct("demo")
        assert not _fixes.correct("demo")
    said = [r.getMessage() for r in caplog.records if "Demo spans" in r.getMessage()]
    assert said == [
        "truefoundry_tracing: Demo spans could not be corrected "
        "(AttributeError('SpanHolder.notify_parent')). Install demo 2."
    ]
