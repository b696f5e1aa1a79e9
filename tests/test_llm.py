"""``llm_view`` / ``is_llm_span`` on hand-built attributes of both traceloop generations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truefoundry_tracing._llm import LLMMessage, LLMView, is_llm_span, llm_view
from truefoundry_tracing._render import render_tree
from truefoundry_tracing.spans import SpanRecord


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"llm.request.type": "chat"}, True),
        ({"llm.request.type": "embedding"}, True),
        ({"gen_ai.operation.name": "chat"}, True),
        ({"gen_ai.operation.name": "embeddings"}, True),
        ({"gen_ai.operation.name": "text_completion"}, True),
        ({"gen_ai.operation.name": "execute_tool"}, False),
        ({"gen_ai.operation.name": 3}, False),
        ({"gen_ai.request.model": "gpt-4o"}, False),
        ({}, False),
    ],
)
def test_is_llm_span(attributes: dict[str, Any], expected: bool) -> None:
    assert is_llm_span(attributes) is expected


def test_indexed_messages_are_ordered_numerically_with_defaults() -> None:
    attrs: dict[str, Any] = {f"gen_ai.prompt.{i}.content": f"m{i}" for i in (10, 2, 0, 1)}
    attrs["gen_ai.prompt.0.role"] = "system"
    attrs["gen_ai.completion.0.content"] = "done"
    view = llm_view(attrs)
    assert [m.content for m in view.input_messages] == ["m0", "m1", "m2", "m10"]
    assert [m.role for m in view.input_messages] == ["system", "user", "user", "user"]
    assert view.output_messages == (LLMMessage(role="assistant", content="done"),)


def test_indexed_tool_calls_and_legacy_completion_prompt() -> None:
    view = llm_view(
        {
            "llm.request.type": "completion",
            "gen_ai.prompt.0.user": "Say hi",
            "gen_ai.completion.0.tool_calls.1.name": "second",
            "gen_ai.completion.0.tool_calls.1.arguments": "{}",
            "gen_ai.completion.0.tool_calls.0.name": "first",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"a": 1}',
            "gen_ai.completion.0.tool_calls.0.id": "call_0",
            "gen_ai.completion.0.finish_reason": "tool_calls",
        }
    )
    assert view.input_messages == (LLMMessage(role="user", content="Say hi"),)
    (out,) = view.output_messages
    assert out.tool_calls == (
        {"name": "first", "arguments": '{"a": 1}'},
        {"name": "second", "arguments": "{}"},
    )
    assert view.finish_reasons == ("tool_calls",)
    assert view.operation == "completion"


def test_json_messages_in_openai_shape_and_with_parts() -> None:
    inputs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "structured"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": {"ok": 1}}]},
    ]
    outputs = [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "think. "},
                {"type": "text", "content": "answer"},
                {"type": "image", "content": "ignored"},
            ],
            "finish_reason": "stop",
        }
    ]
    view = llm_view(
        {"gen_ai.input.messages": json.dumps(inputs), "gen_ai.output.messages": json.dumps(outputs)}
    )
    system, user, assistant, tool_reply = view.input_messages
    assert system == LLMMessage(role="system", content="Be brief.")
    assert user.role == "user"
    assert json.loads(user.content or "") == [{"type": "text", "text": "structured"}]
    assert assistant.content is None
    assert assistant.tool_calls == ({"name": "f", "arguments": "{}"},)
    assert tool_reply.content == '{"ok": 1}'
    assert view.output_text == "think. answer"
    assert view.finish_reasons == ("stop",)


def test_unparsable_or_odd_message_json() -> None:
    assert llm_view({"gen_ai.input.messages": "plain text"}).input_messages == (
        LLMMessage(role="unknown", content="plain text"),
    )
    assert llm_view({"gen_ai.input.messages": '{"role": "user"}'}).input_messages == ()
    assert llm_view({"gen_ai.input.messages": "[1, null, []]"}).input_messages == ()


def test_tokens_are_read_from_either_name_and_totalled() -> None:
    assert llm_view({"gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 4}) == LLMView(
        input_tokens=3, output_tokens=4, total_tokens=7
    )
    old = llm_view(
        {
            "gen_ai.usage.prompt_tokens": "5",
            "gen_ai.usage.completion_tokens": 6,
            "llm.usage.total_tokens": 20,
        }
    )
    assert (old.input_tokens, old.output_tokens, old.total_tokens) == (5, 6, 20)
    odd = llm_view({"gen_ai.usage.input_tokens": True, "gen_ai.usage.output_tokens": "many"})
    assert (odd.input_tokens, odd.output_tokens, odd.total_tokens) == (None, None, None)
    # The newer name wins when both are present.
    both = llm_view({"gen_ai.usage.input_tokens": 1, "gen_ai.usage.prompt_tokens": 9})
    assert both.input_tokens == 1


def test_model_streaming_finish_reasons_and_as_dict() -> None:
    view = llm_view(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "llm.is_streaming": True,
            "gen_ai.response.finish_reasons": "length",
        }
    )
    assert view.model == "gpt-4o"
    assert view.streaming is True
    assert view.finish_reasons == ("length",)
    assert llm_view({"gen_ai.response.finish_reasons": ["stop", "length"]}).finish_reasons == (
        "stop",
        "length",
    )
    assert llm_view({"gen_ai.request.model": "a", "gen_ai.response.model": "b"}).model == "b"
    assert llm_view({}).streaming is None
    d = view.as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["model"] == "gpt-4o"
    assert d["streaming"] is True


_ATTR_KEYS = st.sampled_from(
    [
        "llm.request.type",
        "gen_ai.operation.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.prompt.0.role",
        "gen_ai.prompt.0.content",
        "gen_ai.prompt.1.user",
        "gen_ai.completion.0.tool_calls.0.name",
        "gen_ai.completion.0.finish_reason",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.total_tokens",
        "gen_ai.response.finish_reasons",
        "gen_ai.is_streaming",
    ]
)
_ATTR_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3).map(tuple),
    st.lists(st.integers(), max_size=3).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_ATTR_KEYS, _ATTR_VALUES, max_size=10))
def test_property_llm_view_and_tree_never_raise_on_attribute_values(attrs: dict[str, Any]) -> None:
    view = llm_view(attrs)
    json.dumps(view.as_dict(), default=str)
    render_tree([SpanRecord("x", "t", "s", attributes={"llm.request.type": "chat", **attrs})])


MALFORMED = [
    '[{"role": "assistant", "tool_calls": [{"function": "not-a-dict"}]}]',
    '[{"role": "assistant", "tool_calls": 5}]',
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_llm_view_never_raises_on_malformed_tool_calls(raw: str) -> None:
    llm_view({"gen_ai.input.messages": raw})


def test_render_tree_survives_malformed_llm_messages() -> None:
    span = SpanRecord(
        "openai.chat",
        "t",
        "s",
        attributes={"llm.request.type": "chat", "gen_ai.output.messages": MALFORMED[1]},
    )
    assert "openai.chat" in render_tree([span])


@pytest.mark.parametrize(
    "instructions",
    [json.dumps([{"type": "text", "content": "Be brief."}]), "Be brief."],
)
def test_system_instructions_read_as_the_first_input_message(instructions: str) -> None:
    view = llm_view(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system_instructions": instructions,
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
            ),
        }
    )
    assert [(m.role, m.content) for m in view.input_messages] == [
        ("system", "Be brief."),
        ("user", "hi"),
    ]


def test_system_instructions_do_not_duplicate_a_system_message() -> None:
    view = llm_view(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
            "gen_ai.input.messages": json.dumps([{"role": "system", "content": "Be brief."}]),
        }
    )
    assert [m.role for m in view.input_messages] == ["system"]
