"""Small corrections to traceloop instrumentations, applied when they are.

* **Anthropic streams**: the API sends a placeholder ``output_tokens`` (usually 1) in
  ``message_start`` and the cumulative count in ``message_delta``; traceloop adds the two, so
  every streamed call was one output token too many. The placeholder is zeroed when the
  stream starts, so the recorded count is the API's final one.
* **Framework corrections** with modules of their own (CrewAI's streamed runs and tool spans,
  :mod:`._crewai`; LlamaIndex workflow agents' step names and context, :mod:`._llamaindex`;
  Anthropic ``messages.stream()`` on the 0.38 line, :mod:`._anthropic038`):
  :func:`correct` applies the one for an instrumentation once it is applied.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["correct", "fix_anthropic_stream_usage"]

# instrumentation name -> the module under _frameworks whose apply() corrects it
_CORRECTIONS = {
    "anthropic": "_anthropic038",  # messages.stream() on the 0.38 line
    "crewai": "_crewai",
    "llama_index": "_llamaindex",
}


def correct(name: str) -> bool:
    """Apply the corrections for instrumentation ``name``; True when its correction module
    (``_CORRECTIONS``) applied. Never raises (a correction that fails says so once in the log).

    Example:
        >>> correct("openai")
        False
    """
    if name == "anthropic":
        fix_anthropic_stream_usage()
    module = _CORRECTIONS.get(name)
    if module is None:
        return False
    try:
        found: Any = importlib.import_module(f"{__package__}.{module}")
        return bool(found.apply())
    except Exception:
        return False


def fix_anthropic_stream_usage() -> bool:
    """Wrap traceloop's Anthropic stream accumulator once; False when it is not there.

    Example:
        >>> isinstance(fix_anthropic_stream_usage(), bool)
        True
    """
    try:
        module: Any = importlib.import_module("opentelemetry.instrumentation.anthropic.streaming")
    except Exception:
        return False
    original = getattr(module, "_process_response_item", None)
    if original is None or getattr(original, "_tfy_fixed", False):
        return original is not None

    def process(item: Any, complete_response: Any) -> Any:
        result = original(item, complete_response)
        if getattr(item, "type", None) == "message_start":
            usage = complete_response.get("usage") if isinstance(complete_response, dict) else None
            if isinstance(usage, dict) and "output_tokens" in usage:
                usage["output_tokens"] = 0
        return result

    process._tfy_fixed = True  # type: ignore[attr-defined]
    module._process_response_item = process
    return True
