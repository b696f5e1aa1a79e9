"""The attributes of a tool span as this library's own framework instrumentations write them.

traceloop's conventions, which the views read: ``traceloop.span.kind`` = ``tool``, the tool's
name as entity name (and ``gen_ai.tool.name``), its arguments and result as JSON entity input
and output, left out when content capture is off (``trace_content=False``).
"""

from __future__ import annotations

from typing import Any

from .._serialize import clip, to_json
from .._state import FLAGS

__all__ = ["record_output", "tool_attributes"]


def tool_attributes(name: str, arguments: Any) -> dict[str, Any]:
    """The attributes to start the span of one run of tool ``name`` with.

    Example:
        >>> tool_attributes("get_weather", {"city": "Paris"})["traceloop.entity.input"]
        '{"city": "Paris"}'
    """
    attributes: dict[str, Any] = {
        "traceloop.span.kind": "tool",
        "traceloop.entity.name": name,
        "gen_ai.tool.name": name,
        "gen_ai.operation.name": "execute_tool",
    }
    if FLAGS.trace_content:
        attributes["traceloop.entity.input"] = clip(to_json(arguments))
    return attributes


def record_output(span: Any, value: Any) -> None:
    """Put a tool's result on its span (nothing when content capture is off or no span)."""
    if span is not None and FLAGS.trace_content:
        span.set_attribute("traceloop.entity.output", clip(to_json(value)))
