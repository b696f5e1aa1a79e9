"""MCP under ``init()``: an in-process server with one tool and a client that lists and calls
it. mcp 1.x is traced by traceloop's instrumentation (where this traceloop-sdk ships one);
mcp 2.x, on which that instrumentation fails, by this library's own client spans."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("mcp", reason="MCP runs in the framework environments")

from _support import load_example, require_instrumented, tree_names

from truefoundry_tracing.testing import CapturedSpans

example = load_example("mcp_tools")
MCP_MAJOR = example.MCP_MAJOR


def list_and_call() -> Any:
    return example.list_and_call("Paris")


def test_tool_call_is_a_tool_span_with_arguments_and_result(tfy_spans: CapturedSpans) -> None:
    status = require_instrumented("mcp")
    outcome = {o.name: o for o in status.instrument_report}["mcp"]
    assert outcome.state in ("applied", "deferred"), outcome

    assert asyncio.run(list_and_call()) == (["get_weather"], "Sunny in Paris, 24 C.")

    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    assert tfy_spans.root.name == "weather_tools.workflow"
    tool = tfy_spans.one("get_weather.tool")
    assert tool.attributes["traceloop.span.kind"] == "tool"
    assert tool.attributes["traceloop.entity.name"] == "get_weather"
    assert json.loads(str(tool.attributes["traceloop.entity.input"])).get("city", "Paris") == (
        "Paris"
    )
    assert "Sunny in Paris, 24 C." in str(tool.attributes["traceloop.entity.output"])
    assert tfy_spans.by_name("tools/list.mcp"), tfy_spans.tree()


@pytest.mark.skipif(MCP_MAJOR < 2, reason="the own client spans are for mcp 2.x")
def test_mcp2_own_spans_and_the_server_spans_in_the_same_trace(
    tfy_spans: CapturedSpans,
) -> None:
    require_instrumented("mcp")
    asyncio.run(list_and_call())

    tool = tfy_spans.one("get_weather.tool")
    assert tool.scope == "truefoundry_tracing.mcp"
    assert json.loads(str(tool.attributes["traceloop.entity.input"])) == {"city": "Paris"}
    assert tool.attributes["traceloop.entity.output"] == '"Sunny in Paris, 24 C."'
    listed = tfy_spans.one("tools/list.mcp")
    assert listed.attributes["traceloop.entity.output"] == '["get_weather"]'
    # the in-process server's own span for the call nests under the client's tool span
    tfy_spans.assert_tree("weather_tools.workflow > get_weather.tool > tools/call get_weather")


def test_resources_and_prompts_are_spans_with_their_request_and_result(
    tfy_spans: CapturedSpans,
) -> None:
    require_instrumented("mcp")
    got = asyncio.run(example.read_and_prompt("Paris"))
    assert got == ("Paris, Lyon", "What is the forecast for Paris?")

    assert len(tfy_spans.traces()) == 1, tfy_spans.tree()
    read = tfy_spans.one("resources/read.mcp")
    prompt = tfy_spans.one("prompts/get.mcp")
    assert "weather://cities" in str(read.attributes["traceloop.entity.input"])
    assert "Paris, Lyon" in str(read.attributes["traceloop.entity.output"])
    assert '"city": "Paris"' in str(prompt.attributes["traceloop.entity.input"]).replace(
        '"city":"Paris"', '"city": "Paris"'
    )
    assert "What is the forecast for Paris?" in str(prompt.attributes["traceloop.entity.output"])
    if MCP_MAJOR >= 2:  # this library's spans: the request's parameters as sent
        assert read.scope == prompt.scope == "truefoundry_tracing.mcp"
        assert json.loads(str(read.attributes["traceloop.entity.input"])) == {
            "uri": "weather://cities"
        }
        assert json.loads(str(prompt.attributes["traceloop.entity.input"])) == {
            "name": "forecast",
            "arguments": {"city": "Paris"},
        }


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("mcp_tools")
    assert out.splitlines() == ["Sunny in Paris, 24 C.", "What is the forecast for Paris?"]
    names = tree_names(err)
    assert names[0] == "weather_tools.workflow"
    assert "get_weather.tool" in names and "tools/list.mcp" in names
    assert "weather_context.workflow" in names
    assert "resources/read.mcp" in names and "prompts/get.mcp" in names
