"""Haystack 2 under ``init()``: a pipeline run is one trace with one LLM span per model call
(the provider's, in place of the empty ``haystack.openai.chat`` around it), plain and
streamed, and Haystack's telemetry is off."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest.importorskip("haystack", reason="Haystack runs in the framework environments")

from _support import API_KEY, load_example, require_instrumented, tree_names

from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer

example = load_example("haystack_pipeline")
ANSWER = "Paris is the capital of France."


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_pipeline_one_trace_one_llm_span_and_telemetry_off(
    tfy_spans: CapturedSpans, llm: FakeLLMServer, stream: bool
) -> None:
    status = require_instrumented("haystack")
    reason = {o.name: o for o in status.instrument_report}["haystack"].reason
    assert "off: Haystack's telemetry (HAYSTACK_TELEMETRY_ENABLED=False)" in reason
    llm.reply(ANSWER, prompt_tokens=8, completion_tokens=7)
    ask = example.make_app(llm.base_url, API_KEY, "gpt-4o-mini")

    assert ask("France", stream) == ANSWER

    assert len(llm.chat_requests()) == 1
    tfy_spans.assert_tree("haystack_pipeline.workflow > openai.chat")
    assert "haystack.openai.chat" not in tfy_spans.names
    tfy_spans.assert_one_llm_span_per_call(1)
    assert tfy_spans.llm().output_text == ANSWER


def test_example_runs_offline_and_prints_two_traces(
    run_example: Callable[[str], tuple[str, str]],
) -> None:
    out, err = run_example("haystack_pipeline")
    assert out.split("\n")[:2] == [ANSWER, ANSWER]
    assert tree_names(err) == ["haystack_pipeline.workflow", "openai.chat"] * 2
