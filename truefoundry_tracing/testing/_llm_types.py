"""What a :class:`~truefoundry_tracing.testing.FakeLLMServer` records and what it is scripted with.

:class:`RecordedRequest` is one request as the server received it; :class:`ScriptedReply` is
one answer queued for a chat or legacy-completion call. Both are wire-format neutral.

Example:
    >>> ScriptedReply("Sunny").content
    'Sunny'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordedRequest", "ScriptedReply", "normalize_tool_call"]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the server received, in arrival order.

    ``path`` excludes the query string (kept in ``query``); ``headers`` has lower-cased names
    (repeated headers are joined with ``", "``); ``json`` is the parsed body, or ``None`` when
    the body is empty or not valid JSON.

    Example:
        >>> req = RecordedRequest(
        ...     method="POST",
        ...     path="/v1/chat/completions",
        ...     headers={"authorization": "Bearer test-key"},
        ...     body=b'{"model": "m"}',
        ...     json={"model": "m"},
        ... )
        >>> req.headers["authorization"], req.json["model"]
        ('Bearer test-key', 'm')
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None
    query: str = ""


@dataclass(frozen=True)
class ScriptedReply:
    """What the server answers to one chat or legacy-completion call.

    Fields left at their defaults give the deterministic behaviour described in the module
    docstring. ``content=None`` with no ``tool_calls`` means "the default echo answer";
    ``content=None`` with tool calls means a message with ``content: null``.

    ``tool_calls`` items look like ``{"name": "get_weather", "arguments": {"city": "Paris"}}``
    (``arguments`` may also be a JSON string; an optional ``"id"`` replaces the generated
    one). The OpenAI shape ``{"id": ..., "type": "function", "function": {...}}`` is accepted
    too.

    ``status >= 400`` answers an OpenAI-style error body
    ``{"error": {"message", "type", "code", "param"}}`` with that status (the message is
    ``content``, or a generic one), even to a streaming request. ``headers`` are added to the
    response, e.g. ``{"Retry-After": "0"}`` with a 429. ``delay`` seconds are waited before
    anything is sent. ``break_stream_after=N`` makes a streaming answer stop abruptly after
    the role chunk and N content (or tool-call) chunks, without the end of the chunked body,
    so the client sees a connection error; a non-streaming call with it set gets its
    connection closed without any response.

    Example:
        >>> ScriptedReply("Sunny", prompt_tokens=12).content
        'Sunny'
        >>> ScriptedReply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        ... # doctest: +ELLIPSIS
        ScriptedReply(content=None, tool_calls=({'name': 'get_weather', ...},), ...)
        >>> ScriptedReply(status=429, headers={"Retry-After": "0"}).status
        429
    """

    content: str | None = None
    tool_calls: Sequence[Mapping[str, Any]] = ()
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    break_stream_after: int | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.content is not None and not isinstance(self.content, str):
            raise TypeError(f"content must be a str or None, not {type(self.content).__name__}")
        if isinstance(self.tool_calls, (str, bytes, Mapping)):
            raise TypeError("tool_calls must be a sequence of mappings")
        calls = tuple(dict(call) for call in self.tool_calls)
        for call in calls:
            normalize_tool_call(call)  # validate early; rendering normalizes again
        object.__setattr__(self, "tool_calls", calls)
        object.__setattr__(self, "headers", {str(k): str(v) for k, v in self.headers.items()})
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise TypeError("status must be an int")
        if not 200 <= self.status <= 599:
            raise ValueError(f"status must be between 200 and 599, got {self.status}")
        for name in ("prompt_tokens", "completion_tokens", "break_stream_after"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")
        if not isinstance(self.delay, (int, float)) or self.delay < 0:
            raise ValueError(f"delay must be a non-negative number, got {self.delay!r}")


def normalize_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``{"id": str | None, "name": str, "arguments": <JSON text>}`` or raise."""
    if not isinstance(call, Mapping):
        raise TypeError(f"each tool call must be a mapping, not {type(call).__name__}")
    function = call.get("function")
    source: Mapping[str, Any] = function if isinstance(function, Mapping) else call
    name = source.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"tool call needs a non-empty 'name': {dict(call)!r}")
    arguments = source.get("arguments", {})
    if not isinstance(arguments, str):
        try:
            arguments = json.dumps(arguments)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"tool call arguments are not JSON-serializable: {exc}") from None
    ident = call.get("id")
    if ident is not None and not isinstance(ident, str):
        raise ValueError(f"tool call 'id' must be a string: {ident!r}")
    return {"id": ident, "name": name, "arguments": arguments}
