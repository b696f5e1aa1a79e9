"""Anthropic SDK under ``init()``: one LLM span per call (traceloop's; the SDK's own second
span is off), the tool-use loop and a stream in one trace, streamed tokens as the API counts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("anthropic", reason="the Anthropic SDK runs in the framework environments")

from _support import load_example, require_instrumented, tree_names

from truefoundry_tracing.testing import CapturedSpans, FakeAnthropicServer

example = load_example("anthropic_tools")
ANSWER = "It is sunny in Paris, 24 C."


@pytest.fixture
def claude() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


def script(server: FakeAnthropicServer) -> None:
    call = {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    server.reply(tool_calls=[call], prompt_tokens=40, completion_tokens=9)
    server.reply(ANSWER, prompt_tokens=60, completion_tokens=8)
    server.reply("Bring sunglasses.", prompt_tokens=12, completion_tokens=3)


def test_tool_loop_and_stream_one_trace_one_llm_span_per_call(
    tfy_spans: CapturedSpans, claude: FakeAnthropicServer
) -> None:
    status = require_instrumented("anthropic")
    import anthropic  # the instrumentation applies as the app imports it

    assert anthropic is not None
    outcome = {o.name: o for o in status.instrument_report}["anthropic"]
    assert "ANTHROPIC_OPEN_TELEMETRY=false" in outcome.reason, outcome
    script(claude)
    ask = example.make_app(claude.url, "sk-ant-test", "claude-sonnet-4-5")

    assert ask("What is the weather in Paris?") == (ANSWER, "Bring sunglasses.")

    tfy_spans.assert_tree("weather_assistant.workflow > get_weather.tool")
    first, second, streamed = tfy_spans.llm_spans()
    # messages.stream() too (on 0.38 it was an empty span before init() corrected it)
    tfy_spans.assert_one_llm_span_per_call(len(claude.model_requests()))
    assert tfy_spans.llm(first).input_tokens == 40
    assert ANSWER in tfy_spans.llm(second).output_text
    view = tfy_spans.llm(streamed)
    assert view.output_text == "Bring sunglasses."
    assert (view.input_tokens, view.output_tokens) == (12, 3)  # not 4: the placeholder is not added
    assert view.model == "claude-sonnet-4-5"
    assert "One tip for this weather" in (view.input_messages[-1].content or "")


def test_the_async_stream_helper_records_text_usage_and_model(
    tfy_spans: CapturedSpans, claude: FakeAnthropicServer
) -> None:
    require_instrumented("anthropic")
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=claude.url, api_key="sk-ant-test", max_retries=0)
    claude.reply("Paris is the capital of France.", prompt_tokens=10, completion_tokens=7)

    async def ask() -> tuple[str, str]:
        async with client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "Capital of France?"}],
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        return text, final.content[0].text  # type: ignore[union-attr]

    text, final = asyncio.run(ask())
    assert text == final == "Paris is the capital of France."
    tfy_spans.assert_one_llm_span_per_call(1)
    view = tfy_spans.llm()
    assert (view.output_text, view.input_tokens, view.output_tokens) == (text, 10, 7)
    assert view.model == "claude-sonnet-4-5"


def test_a_client_made_before_init_still_gives_one_span(
    tfy_spans: CapturedSpans, claude: FakeAnthropicServer
) -> None:
    import anthropic

    client = anthropic.Anthropic(
        base_url=claude.url, api_key="sk-ant-test", max_retries=0, open_telemetry={"traces": True}
    )
    require_instrumented("anthropic")
    claude.reply("Paris.", prompt_tokens=5, completion_tokens=1)
    client.messages.create(
        model="claude-sonnet-4-5", max_tokens=20, messages=[{"role": "user", "content": "Hi"}]
    )
    tfy_spans.assert_one_llm_span_per_call(1)
    assert tfy_spans.llm_spans()[0].scope == "opentelemetry.instrumentation.anthropic"


def test_a_raw_stream_records_its_text_and_the_api_token_counts(
    tfy_spans: CapturedSpans, claude: FakeAnthropicServer
) -> None:
    require_instrumented("anthropic")
    import anthropic

    client = anthropic.Anthropic(base_url=claude.url, api_key="sk-ant-test", max_retries=0)
    claude.reply("Paris is the capital of France.", prompt_tokens=10, completion_tokens=7)
    events = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        stream=True,
        messages=[{"role": "user", "content": "Capital of France?"}],
    )
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == "Paris is the capital of France."
    tfy_spans.assert_one_llm_span_per_call(1)
    view = tfy_spans.llm()
    assert (view.output_text, view.input_tokens, view.output_tokens) == (text, 10, 7)


def test_example_runs_offline_and_prints_its_trace(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("anthropic_tools")
    assert out.split("\n")[:2] == [ANSWER, "Bring sunglasses."]
    assert tree_names(err) == [
        "weather_assistant.workflow",
        "anthropic.chat",
        "get_weather.tool",
        "anthropic.chat",
        "anthropic.chat",
    ]
