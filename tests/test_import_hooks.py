"""The post-import hook behind deferred instrumentation (truefoundry_tracing._import_hooks).

A hook runs once, right after the module's code has run and before the import statement
returns; at once when the module is already imported; and never breaks the app's import.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from truefoundry_tracing._import_hooks import when_imported


@pytest.fixture
def fresh_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a module nobody has imported yet, on sys.path for this test only."""
    name = f"tfy_hook_target_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield name
    sys.modules.pop(name, None)


def test_the_hook_runs_once_right_after_the_first_import(fresh_module: str) -> None:
    seen: list[tuple[str, int, bool]] = []

    def hook(module: ModuleType) -> None:
        seen.append((module.__name__, module.VALUE, module.__name__ in sys.modules))

    when_imported(fresh_module, hook)
    assert seen == []
    module = importlib.import_module(fresh_module)
    assert seen == [(fresh_module, 42, True)]
    # the module keeps its real loader
    assert isinstance(module.__loader__, importlib.machinery.SourceFileLoader)
    assert isinstance(module.__spec__.loader, importlib.machinery.SourceFileLoader)
    importlib.reload(module)
    sys.modules.pop(fresh_module)
    importlib.import_module(fresh_module)
    assert len(seen) == 1


def test_the_hook_runs_at_once_for_a_module_already_imported() -> None:
    seen: list[str] = []
    when_imported("json", lambda m: seen.append(m.__name__))
    assert seen == ["json"]


def test_a_failing_hook_does_not_break_the_import(
    fresh_module: str, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(_module: ModuleType) -> None:
        raise RuntimeError("boom")

    when_imported(fresh_module, hook)
    with caplog.at_level(logging.WARNING, logger="truefoundry_tracing"):
        module = importlib.import_module(fresh_module)
    assert module.VALUE == 42
    assert "post-import hook" in caplog.text


def test_a_hook_on_a_submodule_runs_when_the_submodule_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = f"tfy_hook_pkg_{tmp_path.name.replace('-', '_')}"
    (tmp_path / package / "core").mkdir(parents=True)
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "core" / "__init__.py").write_text("READY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    seen: list[bool] = []
    when_imported(f"{package}.core", lambda m: seen.append(m.READY))
    try:
        importlib.import_module(package)
        assert seen == []
        importlib.import_module(f"{package}.core")
        assert seen == [True]
    finally:
        for name in [n for n in sys.modules if n.startswith(package)]:
            del sys.modules[name]
