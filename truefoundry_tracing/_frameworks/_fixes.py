"""Small corrections to traceloop instrumentations, applied when they are.

* **Anthropic streams**: the API sends a placeholder ``output_tokens`` (usually 1) in
  ``message_start`` and the cumulative count in ``message_delta``; traceloop adds the two, so
  every streamed call was one output token too many. The placeholder is zeroed when the
  stream starts, so the recorded count is the API's final one.
* **OpenAI's ``omit`` sentinel**: callers that pass ``openai.omit`` for unset parameters
  (Pydantic AI does) made traceloop's OpenAI instrumentation, which skips only ``NOT_GIVEN``,
  set it as an attribute value, and OpenTelemetry logged "Invalid type Omit" about eight times
  per call. Those values are skipped like ``NOT_GIVEN``.
* **Framework corrections** with modules of their own (CrewAI's streamed runs and tool spans,
  :mod:`._crewai`; LlamaIndex workflow agents' step names and context, :mod:`._llamaindex`;
  Anthropic ``messages.stream()`` on the 0.38 line, :mod:`._anthropic038`; LangChain's tool
  calls and tool messages on the 0.38 line, :mod:`._langchain038`):
  :func:`correct` applies the one for an instrumentation once it is applied (each module's
  ``patch()``, once per process; its ``FAILURE`` is logged once if it fails).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from .._state import warn_once

__all__ = ["correct", "fix_anthropic_stream_usage", "skip_openai_omit"]

# instrumentation name -> the module under _frameworks whose apply() corrects it
_CORRECTIONS = {
    "anthropic": "_anthropic038",  # messages.stream() on the 0.38 line
    "crewai": "_crewai",
    "langchain": "_langchain038",  # tool calls and tool messages on the 0.38 line
    "llama_index": "_llamaindex",
}
_applied: set[str] = set()  # the correction modules whose patch() is in place


def correct(name: str) -> bool:
    """Apply the corrections for instrumentation ``name``, once per process; True when its
    correction module (``_CORRECTIONS``) applied. Never raises: a correction that fails is
    said once in the log (the module's ``FAILURE``) and left unapplied.

    Example:
        >>> correct("openai")
        False
    """
    if name == "anthropic":
        fix_anthropic_stream_usage()
    module = _CORRECTIONS.get(name)
    if module is None:
        return False
    if module in _applied:
        return True
    try:
        found: Any = importlib.import_module(f"{__package__}.{module}")
    except Exception:
        return False
    try:
        if not found.patch():
            return False  # not for this line of the instrumentation
    except Exception as exc:
        warn_once(found.FAILURE.format(exc=exc))
        return False
    _applied.add(module)
    return True


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


_OPENAI = "opentelemetry.instrumentation.openai"


def skip_openai_omit() -> bool:
    """Make traceloop's OpenAI instrumentation skip ``openai.omit`` values; False when it cannot.

    Example:
        >>> isinstance(skip_openai_omit(), bool)
        True
    """
    try:
        shared: Any = importlib.import_module(_OPENAI + ".shared")
        omit: Any = importlib.import_module("openai").Omit
    except Exception:
        return False
    original = getattr(shared, "_set_span_attribute", None)
    if original is None or getattr(original, "_tfy_fixed", False):
        return original is not None

    def set_attribute(span: Any, name: str, value: Any) -> None:
        if not isinstance(value, omit):
            original(span, name, value)

    set_attribute._tfy_fixed = True  # type: ignore[attr-defined]
    # the modules that imported it by name already (the others import the fixed one)
    loaded: list[tuple[str, Any]] = list(sys.modules.items())
    for name, module in loaded:
        if name.startswith(_OPENAI) and getattr(module, "_set_span_attribute", None) is original:
            module._set_span_attribute = set_attribute
    return True
