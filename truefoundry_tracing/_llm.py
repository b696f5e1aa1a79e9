"""A normalized view of an LLM span, the same whatever instrumentation generation wrote it.

traceloop-sdk 0.38.12's instrumentations write ``gen_ai.prompt.N.role`` / ``.content``,
``gen_ai.usage.prompt_tokens`` and ``llm.usage.total_tokens``; 0.62 writes the newer GenAI
semantic conventions, ``gen_ai.input.messages`` (JSON), ``gen_ai.usage.input_tokens`` and so on.
:func:`llm_view` reads either into one :class:`LLMView`, used by the console tree, the testing
toolkit, the CLI and the local viewer.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LLMMessage", "LLMView", "is_llm_span", "llm_view"]

_INDEXED = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(.+)$")
_LLM_OPERATIONS = {
    "chat",
    "completion",
    "text_completion",
    "embedding",
    "embeddings",
    "generate_content",
    "rerank",
}


@dataclass(frozen=True)
class LLMMessage:
    """One message of an LLM call: its role, text, and any tool calls.

    ``tool_calls`` holds dicts with ``name`` and ``arguments``; arguments are a JSON string in
    one canonical form (``json.dumps`` defaults) whichever line wrote them, or the raw value when
    it is not JSON. Finish reasons use OpenAI's words (``tool_calls``, not GenAI's ``tool_call``).
    """

    role: str
    content: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    finish_reason: str | None = None


@dataclass(frozen=True)
class LLMView:
    """What an LLM span says, in one shape for both traceloop lines.

    Example:
        >>> v = llm_view({"llm.request.type": "chat", "gen_ai.request.model": "gpt-4o",
        ...               "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 2})
        >>> v.model, v.input_tokens, v.output_tokens, v.total_tokens
        ('gpt-4o', 5, 2, 7)
    """

    operation: str | None = None
    system: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    input_messages: tuple[LLMMessage, ...] = ()
    output_messages: tuple[LLMMessage, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    streaming: bool | None = None
    finish_reasons: tuple[str, ...] = field(default=())

    @property
    def model(self) -> str | None:
        """The model that answered, else the one requested."""
        return self.response_model or self.request_model

    @property
    def output_text(self) -> str:
        """All output message text joined, for quick assertions."""
        return "".join(m.content or "" for m in self.output_messages)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by the web viewer and ``show --json``)."""
        return {
            "operation": self.operation,
            "system": self.system,
            "model": self.model,
            "request_model": self.request_model,
            "response_model": self.response_model,
            "input_messages": [_message_dict(m) for m in self.input_messages],
            "output_messages": [_message_dict(m) for m in self.output_messages],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "streaming": self.streaming,
            "finish_reasons": list(self.finish_reasons),
        }


def _message_dict(m: LLMMessage) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "tool_calls": [dict(t) for t in m.tool_calls],
        "finish_reason": m.finish_reason,
    }


def is_llm_span(attributes: Mapping[str, Any]) -> bool:
    """True when the attributes are those of a model call (chat, completion, embedding...)."""
    if attributes.get("llm.request.type") is not None:
        return True
    op = attributes.get("gen_ai.operation.name")
    return isinstance(op, str) and op in _LLM_OPERATIONS


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# The GenAI semantic conventions' finish reasons, read as the OpenAI API (and 0.38.12) writes them.
_FINISH = {"tool_call": "tool_calls"}


def _finish(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return _FINISH.get(text, text)


def _arguments(value: Any) -> Any:
    """Tool-call arguments as one canonical JSON string, whichever line wrote them."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if value is None:
        return None
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _call(name: Any, arguments: Any) -> Mapping[str, Any]:
    return {"name": name, "arguments": _arguments(arguments)}


def _first(attrs: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None:
            return value
    return None


def _parts_text(parts: Any) -> tuple[str | None, tuple[Mapping[str, Any], ...]]:
    """Text and tool calls out of a GenAI ``parts`` list (or a plain string)."""
    if isinstance(parts, str):
        return parts, ()
    if not isinstance(parts, list):
        return None, ()
    texts: list[str] = []
    calls: list[Mapping[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "reasoning", None) and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif kind == "tool_call":
            calls.append(_call(part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            texts.append(_to_text(part.get("response")))
    return ("".join(texts) if texts else None), tuple(calls)


def _to_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _messages_from_json(raw: Any) -> tuple[LLMMessage, ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return (LLMMessage(role="unknown", content=raw),)
    if not isinstance(raw, list):
        return ()
    out: list[LLMMessage] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        if "parts" in item:
            text, calls = _parts_text(item.get("parts"))
        else:
            content = item.get("content")
            text = content if isinstance(content, str) or content is None else _to_text(content)
            calls = _openai_tool_calls(item.get("tool_calls"))
        out.append(
            LLMMessage(
                role=str(item.get("role", "unknown")),
                content=text,
                tool_calls=calls,
                finish_reason=_finish(item.get("finish_reason")),
            )
        )
    return tuple(out)


def _openai_tool_calls(raw: Any) -> tuple[Mapping[str, Any], ...]:
    """Tool calls in OpenAI's message shape; anything malformed is skipped, never raised on."""
    if not isinstance(raw, list):
        return ()
    calls: list[Mapping[str, Any]] = []
    for c in raw:
        if not isinstance(c, dict):
            continue
        fn = c.get("function")
        source = fn if isinstance(fn, dict) else c
        calls.append(_call(source.get("name"), source.get("arguments")))
    return tuple(calls)


def _messages_from_indexed(attrs: Mapping[str, Any], which: str) -> tuple[LLMMessage, ...]:
    rows: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        m = _INDEXED.match(key)
        if m and m.group(1) == which:
            rows.setdefault(int(m.group(2)), {})[m.group(3)] = value
    out: list[LLMMessage] = []
    for idx in sorted(rows):
        row = rows[idx]
        calls: list[Mapping[str, Any]] = []
        call_idx: dict[int, dict[str, Any]] = {}
        for key, value in row.items():
            cm = re.match(r"^tool_calls\.(\d+)\.(name|arguments|id)$", key)
            if cm:
                call_idx.setdefault(int(cm.group(1)), {})[cm.group(2)] = value
        for i in sorted(call_idx):
            calls.append(_call(call_idx[i].get("name"), call_idx[i].get("arguments")))
        content = row.get("content")
        if content is None and "user" in row:  # legacy completions write gen_ai.prompt.0.user
            content = row["user"]
        out.append(
            LLMMessage(
                role=str(row.get("role", "user" if which == "prompt" else "assistant")),
                content=None if content is None else _to_text(content),
                tool_calls=tuple(calls),
                finish_reason=_finish(row.get("finish_reason")),
            )
        )
    return tuple(out)


def llm_view(attributes: Mapping[str, Any]) -> LLMView:
    """Read an LLM span's attributes (either traceloop line) into an :class:`LLMView`.

    Accepts a span's attribute mapping; works on spans captured in memory and on spans decoded
    from OTLP. Missing values are None or empty.

    Example:
        >>> v = llm_view({"gen_ai.operation.name": "chat",
        ...               "gen_ai.input.messages": '[{"role": "user", "parts": '
        ...               '[{"type": "text", "content": "hi"}]}]'})
        >>> v.input_messages[0].content
        'hi'
    """
    a = attributes
    inputs = (
        _messages_from_json(a["gen_ai.input.messages"])
        if "gen_ai.input.messages" in a
        else _messages_from_indexed(a, "prompt")
    )
    instructions = a.get("gen_ai.system_instructions")
    if instructions is not None and not any(m.role == "system" for m in inputs):
        # 0.62 writes the system prompt apart from the messages (GenAI conventions).
        if isinstance(instructions, str):
            with contextlib.suppress(ValueError):
                instructions = json.loads(instructions)
        text, _ = _parts_text(instructions)
        if text is not None:
            inputs = (LLMMessage(role="system", content=text), *inputs)
    outputs = (
        _messages_from_json(a["gen_ai.output.messages"])
        if "gen_ai.output.messages" in a
        else _messages_from_indexed(a, "completion")
    )
    input_tokens = _int(_first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"))
    output_tokens = _int(_first(a, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"))
    total = _int(_first(a, "gen_ai.usage.total_tokens", "llm.usage.total_tokens"))
    if total is None and input_tokens is not None and output_tokens is not None:
        total = input_tokens + output_tokens
    reasons = a.get("gen_ai.response.finish_reasons")
    finish: tuple[str, ...]
    if isinstance(reasons, str):
        finish = (_finish(reasons) or "",)
    elif isinstance(reasons, Sequence):
        finish = tuple(_finish(r) or "" for r in reasons)
    else:
        finish = tuple(m.finish_reason for m in outputs if m.finish_reason)
    streaming = _first(a, "gen_ai.is_streaming", "llm.is_streaming")
    return LLMView(
        operation=_first(a, "gen_ai.operation.name", "llm.request.type"),
        system=_first(a, "gen_ai.provider.name", "gen_ai.system"),
        request_model=_first(a, "gen_ai.request.model"),
        response_model=_first(a, "gen_ai.response.model"),
        input_messages=inputs,
        output_messages=outputs,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total,
        streaming=None if streaming is None else bool(streaming),
        finish_reasons=finish,
    )
