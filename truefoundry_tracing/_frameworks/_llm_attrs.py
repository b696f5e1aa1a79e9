"""The attributes of a model-call span an instrumentation of ours records, written as
traceloop's OpenAI instrumentation writes them on the installed line.

traceloop-sdk 0.38 writes ``llm.request.type``, ``gen_ai.system``, ``gen_ai.prompt.N.*``,
``gen_ai.completion.N.*`` and ``gen_ai.usage.prompt_tokens``; 0.62 writes the GenAI
conventions (``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.input.messages`` and
``gen_ai.output.messages`` as JSON, ``gen_ai.usage.input_tokens``). The views
(:func:`truefoundry_tracing._llm.llm_view`) read both; writing the line's own keeps a trace
uniform. Message content is left out with ``trace_content=False``.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._state import FLAGS

__all__ = ["Completion", "request_attributes", "response_attributes"]

_GENAI_FROM = (0, 50)  # the lines this library supports: 0.38.12 (indexed) and 0.62 (GenAI)


@functools.cache
def _genai() -> bool:
    import importlib.metadata

    try:
        version = importlib.metadata.version("traceloop-sdk")
    except importlib.metadata.PackageNotFoundError:
        return True
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return tuple(parts) >= _GENAI_FROM


@dataclass(frozen=True)
class Completion:
    """One answer of a model call: its text, tool calls (``id``, ``name``, ``arguments`` as a
    JSON string) and finish reason."""

    text: str | None
    tool_calls: tuple[Mapping[str, Any], ...] = field(default=())
    finish_reason: str | None = None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "".join(t for t in texts if isinstance(t, str))
    return "" if content is None else str(content)


def _text_part(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": _text(content)}


def request_attributes(
    operation: str, provider: str, model: str, messages: Sequence[Mapping[str, Any]], stream: bool
) -> dict[str, Any]:
    """What a model-call span records of the request.

    Example:
        >>> attrs = request_attributes("chat", "openai", "gpt-4o-mini",
        ...                            [{"role": "user", "content": "Hi"}], False)
        >>> attrs["gen_ai.request.model"]
        'gpt-4o-mini'
    """
    attrs: dict[str, Any] = {"gen_ai.request.model": model}
    content = FLAGS.trace_content
    if _genai():
        attrs.update({"gen_ai.operation.name": operation, "gen_ai.provider.name": provider})
        attrs["gen_ai.is_streaming"] = stream
        if content:
            shown = [
                {"role": m.get("role"), "parts": [_text_part(m.get("content"))]} for m in messages
            ]
            attrs["gen_ai.input.messages"] = json.dumps(shown, default=str)
        return attrs
    attrs.update({"llm.request.type": operation, "gen_ai.system": provider})
    attrs["llm.is_streaming"] = stream
    if content:
        for i, m in enumerate(messages):
            attrs[f"gen_ai.prompt.{i}.role"] = str(m.get("role"))
            attrs[f"gen_ai.prompt.{i}.content"] = _text(m.get("content"))
    return attrs


def response_attributes(
    model: str | None, completions: Sequence[Completion], usage: Mapping[str, Any]
) -> dict[str, Any]:
    """What a model-call span records of the answer and its token counts.

    Example:
        >>> attrs = response_attributes("gpt-4o-mini", [Completion("Hello")],
        ...                             {"prompt_tokens": 3, "completion_tokens": 1})
        >>> from truefoundry_tracing._llm import llm_view
        >>> view = llm_view(attrs)  # the same view on either line's keys
        >>> view.input_tokens, view.output_tokens, view.total_tokens
        (3, 1, 4)
    """
    attrs: dict[str, Any] = {"gen_ai.response.model": model} if model else {}
    prompt, answer = usage.get("prompt_tokens"), usage.get("completion_tokens")
    total = usage.get("total_tokens")
    if total is None and isinstance(prompt, int) and isinstance(answer, int):
        total = prompt + answer
    reasons = tuple(c.finish_reason for c in completions if c.finish_reason)
    genai = _genai()
    counts = (
        ("gen_ai.usage.input_tokens", prompt),
        ("gen_ai.usage.output_tokens", answer),
        ("gen_ai.usage.total_tokens" if genai else "llm.usage.total_tokens", total),
    )
    if not genai:
        indexed = ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens")
        counts = ((indexed[0], prompt), (indexed[1], answer), counts[2])
    attrs.update({k: v for k, v in counts if isinstance(v, int)})
    if genai and reasons:
        attrs["gen_ai.response.finish_reasons"] = reasons
    if FLAGS.trace_content:
        attrs.update(_genai_output(completions) if genai else _indexed_output(completions))
    return attrs


def _genai_output(completions: Sequence[Completion]) -> dict[str, Any]:
    shown = []
    for c in completions:
        parts: list[dict[str, Any]] = [{"type": "text", "content": c.text}] if c.text else []
        for call in c.tool_calls:
            arguments: Any = call.get("arguments")
            with contextlib.suppress(TypeError, ValueError):
                arguments = json.loads(arguments)
            part = {"type": "tool_call", "name": call.get("name"), "id": call.get("id")}
            parts.append({**part, "arguments": arguments})
        shown.append({"role": "assistant", "parts": parts, "finish_reason": c.finish_reason})
    return {"gen_ai.output.messages": json.dumps(shown, default=str)}


def _indexed_output(completions: Sequence[Completion]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, c in enumerate(completions):
        key = f"gen_ai.completion.{i}"
        attrs[f"{key}.role"] = "assistant"
        if c.text:
            attrs[f"{key}.content"] = c.text
        if c.finish_reason:
            attrs[f"{key}.finish_reason"] = c.finish_reason
        for j, call in enumerate(c.tool_calls):
            for part in ("id", "name", "arguments"):
                if call.get(part) is not None:
                    attrs[f"{key}.tool_calls.{j}.{part}"] = str(call[part])
    return attrs
