"""Helpers shared by the framework tests (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import truefoundry_tracing as tt
from truefoundry_tracing.spans import SpanList
from truefoundry_tracing.testing import FakeLLMServer, SpanRecord

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "frameworks"
TRACELOOP = importlib.metadata.version("traceloop-sdk")
TL_038 = TRACELOOP.startswith("0.38.")
API_KEY = "sk-test-not-a-real-key"
NOT_TRACED = "not traced: "


def load_example(name: str) -> ModuleType:
    """Import ``examples/frameworks/<name>.py`` (its app factory is what the tests drive)."""
    spec = importlib.util.spec_from_file_location(
        f"examples_frameworks_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # frameworks resolve type hints through sys.modules
    spec.loader.exec_module(module)
    return module


def require_instrumented(name: str) -> tt.TracingStatus:
    """init() with the defaults; skip (by name, with the reason) where the framework's
    instrumentation cannot work on this line, fail when it should have and did not."""
    status = tt.init("framework-tests", console=False)
    outcome = {o.name: o for o in status.instrument_report}[name]
    if outcome.state in ("incompatible", "unavailable"):
        # the prefix makes docs/_gen/compat_table.py list it as a gap of this line
        pytest.skip(
            f"{NOT_TRACED}{name} is {outcome.state} on traceloop-sdk {TRACELOOP}: {outcome.reason}"
        )
    assert outcome.active, str(outcome)
    return status


def parent(spans: SpanList, span: SpanRecord) -> SpanRecord:
    found = spans.parent(span)
    assert found is not None, f"{span.name} has no parent among:\n{spans.tree()}"
    return found


def one_trace(spans: SpanList, root: str) -> SpanList:
    """All spans form one trace whose single root is ``root``; returns them by start time."""
    assert len(spans.traces()) == 1, spans.tree()
    assert spans.root.name == root, spans.tree()
    return spans.sorted()


def tree_names(console: str) -> list[str]:
    """Span names of a trace tree as printed by the console default, in printed order."""
    return [
        re.sub(r"^[│├└─ ]+", "", line).split("  ")[0]
        for line in console.splitlines()
        if re.search(r"\[[a-z]+\]", line)
    ]


# The weather-agent scenario of the agent framework tests: one question, one tool call, one
# answer, two model calls.
QUESTION = "What is the weather in Paris?"
ANSWER = "It is sunny in Paris, 24 C."
TOOL_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def script_weather(llm: FakeLLMServer) -> None:
    """Script the two model calls: the tool call (20 -> 5 tokens), then the answer (30 -> 7)."""
    llm.reply(tool_calls=[TOOL_CALL], prompt_tokens=20, completion_tokens=5)
    llm.reply(ANSWER, prompt_tokens=30, completion_tokens=7)


def assert_weather_run(
    spans: SpanList, llm: FakeLLMServer, *, wrapped: bool, stream: bool, agent: str = "weather"
) -> SpanList:
    """The invariants of one weather-agent run: one trace (under ``weather_app.workflow`` when
    ``wrapped``), the agent span with the question and answer, the tool span with its arguments
    and result, and one complete LLM span per model call under the agent. Returns the trace."""
    name = f"{agent}.agent"
    trace = one_trace(spans, "weather_app.workflow" if wrapped else name)
    top = "weather_app.workflow > " if wrapped else ""
    trace.assert_tree(f"{top}{name} > get_weather.tool", f"{top}{name} > llm")
    calls = len(llm.chat_requests())
    assert calls == 2
    trace.assert_one_llm_span_per_call(calls)
    assert all(parent(trace, s).name == name for s in trace.llm_spans())

    agent_span = trace.one(name)
    assert agent_span.attributes["traceloop.span.kind"] == "agent"
    assert json.loads(agent_span.attributes["traceloop.entity.input"]) == QUESTION
    assert json.loads(agent_span.attributes["traceloop.entity.output"]) == ANSWER
    tool = trace.one("get_weather.tool")
    assert tool.attributes["traceloop.span.kind"] == "tool"
    assert json.loads(tool.attributes["traceloop.entity.input"]) == {"city": "Paris"}
    assert json.loads(tool.attributes["traceloop.entity.output"]) == "Sunny, 24 C in Paris"
    assert tool.attributes["gen_ai.tool.call.id"]

    first, second = trace.llm_spans()
    asked = trace.llm(first)
    assert asked.model == "gpt-4o-mini"
    assert asked.input_messages[-1].content == QUESTION
    assert [c["name"] for c in asked.output_messages[-1].tool_calls] == ["get_weather"]
    assert (asked.input_tokens, asked.output_tokens) == (20, 5)
    answered = trace.llm(second)
    assert answered.output_text == ANSWER  # the whole streamed text
    assert (answered.input_tokens, answered.output_tokens) == (30, 7)
    if stream:
        trace.assert_stream_complete(second)
    return trace
