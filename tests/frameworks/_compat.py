"""Records what each framework test module found, for the generated table of
docs/compatibility.md (``docs/_gen/compat_table.py``).

``bash scripts/test`` sets ``TFY_COMPAT_DIR``; each framework environment then writes
``<env>.json`` there: per test module, the framework's name and installed version, how many
tests passed or failed, the reasons of the skipped ones, and the known gaps the tests
recorded with the ``known_gap`` fixture (a gap the test pins, so a change is noticed).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from pathlib import Path
from typing import Any

# test module -> (framework as the docs name it, its distribution)
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "test_langchain": ("LangChain", "langchain"),
    "test_langgraph": ("LangGraph", "langgraph"),
    "test_llamaindex": ("LlamaIndex", "llama-index-core"),
    "test_crewai": ("CrewAI", "crewai"),
    "test_openai_agents": ("OpenAI Agents SDK", "openai-agents"),
    "test_anthropic": ("Anthropic SDK", "anthropic"),
    "test_haystack": ("Haystack", "haystack-ai"),
    "test_google_genai": ("Google GenAI", "google-genai"),
    "test_pydantic_ai": ("Pydantic AI", "pydantic-ai"),
    "test_smolagents": ("smolagents", "smolagents"),
    "test_dspy": ("DSPy", "dspy"),
    "test_agno": ("Agno", "agno"),
    "test_autogen": ("AutoGen", "autogen-agentchat"),
    "test_ag2": ("AG2", "ag2"),
    "test_mcp": ("MCP", "mcp"),
}
GAP = "known_gap"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class Recorder:
    """A pytest plugin (registered on the controller process only) collecting outcomes."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.modules: dict[str, dict[str, Any]] = {}

    def _entry(self, nodeid: str) -> dict[str, Any] | None:
        module = Path(nodeid.split("::", 1)[0]).stem
        if module not in FRAMEWORKS:
            return None
        name, dist = FRAMEWORKS[module]
        return self.modules.setdefault(
            module,
            {
                "framework": name,
                "version": _version(dist),
                "passed": 0,
                "failed": 0,
                "skipped": [],
                "gaps": [],
            },
        )

    def pytest_runtest_logreport(self, report: Any) -> None:
        entry = self._entry(report.nodeid)
        if entry is None:
            return
        for key, value in report.user_properties:
            if key == GAP and value not in entry["gaps"]:
                entry["gaps"].append(value)
        if report.failed:
            entry["failed"] += 1
        elif report.skipped and report.when in ("setup", "call"):
            reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
            reason = reason.removeprefix("Skipped: ")
            if reason not in entry["skipped"]:
                entry["skipped"].append(reason)
        elif report.passed and report.when == "call":
            entry["passed"] += 1

    def pytest_sessionfinish(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        env = Path(sys.prefix).name
        result = {
            "env": env,
            "traceloop": _version("traceloop-sdk"),
            "modules": self.modules,
        }
        (self.out_dir / f"{env}.json").write_text(json.dumps(result, indent=1, sort_keys=True))


def register(config: Any) -> None:
    """Register the recorder when ``TFY_COMPAT_DIR`` is set (on the xdist controller only)."""
    out = os.environ.get("TFY_COMPAT_DIR")
    if out and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(Path(out)), "tfy-compat-recorder")
