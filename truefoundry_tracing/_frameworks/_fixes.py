"""Small corrections to traceloop instrumentations, applied when they are.

* **Anthropic streams**: the API sends a placeholder ``output_tokens`` (usually 1) in
  ``message_start`` and the cumulative count in ``message_delta``; traceloop adds the two, so
  every streamed call was one output token too many. The placeholder is zeroed when the
  stream starts, so the recorded count is the API's final one.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["fix_anthropic_stream_usage"]


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
