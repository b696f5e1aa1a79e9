"""Tool calls and tool messages on traceloop's 0.38 LangChain instrumentation.

opentelemetry-instrumentation-langchain 0.38 reads the tool calls a chat model asks for from
``message.additional_kwargs["tool_calls"]``, where langchain-openai 1.x no longer puts them
(they are on ``message.tool_calls``), so the LLM span of a LangChain or LangGraph model call
that asked for a tool had no tool call; and it gives LangChain's tool messages, and a model
answer with no text, the role ``unknown``. Here a tool message's role is ``tool`` (with its
``tool_call_id``), an answer's is ``assistant``, and the tool
calls on ``message.tool_calls`` are recorded as that line records the ones it finds
(``gen_ai.completion.<i>.tool_calls.<j>.id``, ``.name``, ``.arguments``), on the model's answer
and on the assistant turns of its input. Newer lines record them themselves and are left alone.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from typing import Any

__all__ = ["FAILURE", "patch"]

# What the log says, once, when patch() fails ({exc!r}: why).
FAILURE = (
    "LangChain tool calls could not be added to LLM spans ({exc!r}): on "
    "opentelemetry-instrumentation-langchain 0.38 they stay missing. Install "
    "traceloop-sdk 0.62 or newer to record them."
)

_HANDLER = "opentelemetry.instrumentation.langchain.callback_handler"
_VERSION = "opentelemetry.instrumentation.langchain.version"
_ROLES = {"human": "user", "system": "system", "ai": "assistant", "tool": "tool"}


def patch() -> bool:
    """Correct the 0.38 LangChain instrumentation; False on other lines.

    Applied once, through :func:`._fixes.correct`, which reports a failure (``FAILURE``).

    Example:
        >>> from truefoundry_tracing._frameworks._fixes import correct
        >>> isinstance(correct('langchain'), bool)
        True
    """
    if not str(importlib.import_module(_VERSION).__version__).startswith("0.38."):
        return False
    handler: Any = importlib.import_module(_HANDLER)
    _patch(handler)
    return True


def _patch(handler: Any) -> None:
    request, response = handler._set_chat_request, handler._set_chat_response

    def role(message_type: str) -> str:
        return _ROLES.get(message_type, "unknown")

    def set_chat_request(span: Any, serialized: Any, messages: Any, *args: Any) -> None:
        request(span, serialized, messages, *args)
        if handler.should_send_prompts():
            _record(span, "gen_ai.prompt", (m for turn in messages for m in turn))

    def set_chat_response(span: Any, result: Any) -> None:
        response(span, result)
        if handler.should_send_prompts():
            answers = (getattr(g, "message", None) for gs in result.generations for g in gs)
            _record(span, "gen_ai.completion", answers, roles=True)

    handler._message_type_to_role = role
    handler._set_chat_request = set_chat_request
    handler._set_chat_response = set_chat_response


def _record(span: Any, prefix: str, messages: Iterable[Any], roles: bool = False) -> None:
    """Tool calls and tool call ids of ``messages`` (in the instrumentation's order), and with
    ``roles`` their roles (0.38 reads an answer's role from its generation's type,
    ``ChatGeneration``, which it does not know: ``unknown``)."""
    try:
        for i, message in enumerate(messages):
            if roles and isinstance(getattr(message, "type", None), str):
                span.set_attribute(f"{prefix}.{i}.role", _ROLES.get(message.type, "unknown"))
            call_id = getattr(message, "tool_call_id", None)
            if isinstance(call_id, str):
                span.set_attribute(f"{prefix}.{i}.tool_call_id", call_id)
            kwargs = getattr(message, "additional_kwargs", None) or {}
            if kwargs.get("tool_calls") or kwargs.get("function_call"):
                continue  # the instrumentation found and recorded these itself
            for j, call in enumerate(getattr(message, "tool_calls", None) or ()):
                at = f"{prefix}.{i}.tool_calls.{j}"
                if call.get("id"):
                    span.set_attribute(f"{at}.id", str(call["id"]))
                span.set_attribute(f"{at}.name", str(call.get("name")))
                span.set_attribute(f"{at}.arguments", json.dumps(call.get("args") or {}))
    except Exception:  # a message of an unexpected shape: the span keeps what it has
        return
