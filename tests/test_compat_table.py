"""The generated framework table of docs/compatibility.md: the recorder in the framework tests'
conftest, and docs/_gen/compat_table.py that turns its files into the table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


compat_table = _load("compat_table_under_test", ROOT / "docs" / "_gen" / "compat_table.py")


def _entry(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "framework": "Agno", "version": "3.1.10", "passed": 3, "failed": 0, "skipped": [],
        "gaps": [],
    }  # fmt: skip
    return base | kw


def test_cells_say_pass_the_pinned_gaps_the_skip_reason_or_fails() -> None:
    results = [
        {"env": "fw-more", "traceloop": "0.62.4", "modules": {"test_agno": _entry()}},
        {
            "env": "fw-more-038",
            "traceloop": "0.38.12",
            "modules": {
                "test_agno": _entry(passed=0, skipped=["not traced: agno is unavailable"]),
                "test_openai_agents": _entry(
                    framework="OpenAI Agents SDK",
                    version="0.24.0",
                    skipped=["not traced: openai_agents is unavailable", "0.62 only"],
                ),
                "test_ag2": _entry(framework="AG2", version="1.2.1", gaps=["no tool result"]),
                "test_dspy": _entry(framework="DSPy", version="3.4.1", failed=2),
            },
        },
    ]
    rows = compat_table.table(results).splitlines()[2:]
    assert rows == [
        "| AG2 | 1.2.1 | not tested | gaps: no tool result (`fw-more-038`) |",
        "| Agno | 3.1.10 | pass (`fw-more`) | not traced: agno is unavailable (`fw-more-038`) |",
        "| DSPy | 3.4.1 | not tested | **fails** (2 tests in `fw-more-038`) (`fw-more-038`) |",
        "| OpenAI Agents SDK | 0.24.0 | not tested | gaps: not traced: openai_agents is "
        "unavailable (`fw-more-038`) |",
    ]


def test_check_fails_on_a_stale_page_and_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "compatibility.md"
    page.write_text(f"intro\n\n{compat_table.BEGIN}\nold table\n{compat_table.END}\n\nafter\n")
    monkeypatch.setattr(compat_table, "PAGE", page)
    results = tmp_path / "results"
    results.mkdir()
    (results / "fw-more.json").write_text(
        json.dumps({"env": "fw-more", "traceloop": "0.62.4", "modules": {"test_agno": _entry()}})
    )

    assert compat_table.main(["--check", str(results)]) == 1
    assert "UPDATE_COMPAT=1 bash scripts/test" in capsys.readouterr().err
    assert compat_table.main([str(results)]) == 0
    assert "| Agno | 3.1.10 | pass (`fw-more`) |" in page.read_text()
    assert page.read_text().endswith("\n\nafter\n")
    assert compat_table.main(["--check", str(results)]) == 0
    assert compat_table.main(["--check", str(tmp_path / "empty")]) == 2


def test_the_recorder_collects_outcomes_and_gaps_from_a_framework_run(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frameworks = ROOT / "tests" / "frameworks"
    pytester.makeconftest((frameworks / "conftest.py").read_text())
    monkeypatch.setenv("PYTHONPATH", str(frameworks))
    pytester.makepyfile(
        test_agno="""
        import pytest

        def test_run(known_gap):
            known_gap("streamed runs have no tool span")

        def test_more():
            pass

        def test_not_here():
            pytest.skip("agno: unavailable on this line")
        """,
        test_other="def test_unrelated(): pass",
    )
    out = tmp_path / "compat"
    monkeypatch.setenv("TFY_COMPAT_DIR", str(out))
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=3, skipped=1)

    (written,) = out.glob("*.json")
    modules = json.loads(written.read_text())["modules"]
    assert list(modules) == ["test_agno"]  # modules of no framework are left out
    agno = modules["test_agno"]
    assert (agno["framework"], agno["passed"], agno["failed"]) == ("Agno", 2, 0)
    assert agno["gaps"] == ["streamed runs have no tool span"]
    assert agno["skipped"] == ["agno: unavailable on this line"]
