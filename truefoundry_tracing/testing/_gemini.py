"""A local stand-in for the Gemini API's ``generateContent``, ``streamGenerateContent`` and
``batchEmbedContents`` (what ``client.models.embed_content`` calls).

Scripted like the other fakes (the same :class:`ScriptedReply`), answering the real
``google.genai.Client`` pointed at it with bodies shaped as the Gemini API sends them:
``candidates[].content.parts`` (``text`` and ``functionCall`` parts, role ``model``),
``finishReason`` (``STOP`` by default, function calls included), ``usageMetadata``,
``modelVersion`` and ``responseId``. A stream (``:streamGenerateContent?alt=sse``) is
server-sent events of the same objects, one word of text per chunk, with no event names and no
end marker. Every chunk carries ``usageMetadata`` with running totals, as gemini-2.5 models
stream them: ``candidatesTokenCount`` is the count so far, not the chunk's own, so a client
that adds the chunks' counts over-counts; the last chunk has the finish reason and the final
counts. Embeddings answer ``{"embeddings": [{"values": [...]}]}``, one per request, with no
token counts (the Gemini API gives none); they use no scripted reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

from ._llm_types import ScriptedReply, normalize_tool_call
from ._openai_api import bearer_key, fake_embedding, key_matches
from ._wire_fakes import _Fake, _pieces, _words

__all__ = ["FakeGeminiServer"]

_CALLS = (":generateContent", ":streamGenerateContent")
_EMBED = ":batchEmbedContents"
# The API's answer to a request with no key (403 PERMISSION_DENIED).
_EMBEDDING_DIMENSIONS = 8  # as FakeLLMServer's; a request's outputDimensionality wins
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _part_words(part: Any) -> int:
    """Tokens of one request part: the words of its text, or of a function call or result."""
    if not isinstance(part, Mapping):
        return 0
    if isinstance(part.get("text"), str):
        return _words(part["text"])
    for key in ("functionCall", "functionResponse"):
        if isinstance(part.get(key), Mapping):
            return _words(json.dumps(part[key]))
    return 0


def _contents_text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return " ".join(
        p["text"] for p in parts or [] if isinstance(p, Mapping) and isinstance(p.get("text"), str)
    )


class FakeGeminiServer(_Fake):
    """A local stand-in for the Gemini API (``POST .../models/{model}:generateContent`` and
    ``:streamGenerateContent?alt=sse``).

    Point ``google.genai.Client(api_key=..., http_options={"base_url": server.url})`` at
    :attr:`url`. A reply's ``content`` becomes a text part, each of its ``tool_calls`` a
    ``functionCall`` part (with an ``id`` only when the script gives one); ``finish_reason``
    defaults to ``"STOP"``; ``prompt_tokens`` and ``completion_tokens`` become
    ``promptTokenCount`` and ``candidatesTokenCount``. With
    nothing scripted the answer echoes the last user text (``"Echo: ..."``), one token per
    word. An error status answers Google's error body (``{"error": {"code", "message",
    "status"}}``). :meth:`model_requests` lists the generate calls, plain and streamed.
    ``:batchEmbedContents`` answers each request with :func:`fake_embedding` of its text
    (dimension 8, or the request's ``outputDimensionality``), and takes no scripted reply. As the
    API does, it answers 403 ``PERMISSION_DENIED`` to a request with no key (``x-goog-api-key``,
    ``?key=`` or a bearer token), and 400 ``INVALID_ARGUMENT`` to another key than ``api_key=``
    when that is set.

    Example:
        >>> import json, urllib.request
        >>> with FakeGeminiServer() as server:
        ...     server.reply("Paris.", prompt_tokens=4)
        ...     body = {"contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}]}
        ...     url = server.url + "/v1beta/models/gemini-2.5-flash:generateContent"
        ...     key = {"x-goog-api-key": "test"}
        ...     req = urllib.request.Request(url, json.dumps(body).encode(), key)
        ...     answer = json.load(urllib.request.urlopen(req))
        >>> answer["candidates"][0]["content"], answer["candidates"][0]["finishReason"]
        ({'parts': [{'text': 'Paris.'}], 'role': 'model'}, 'STOP')
        >>> answer["usageMetadata"]["totalTokenCount"], answer["modelVersion"]
        (5, 'gemini-2.5-flash')
    """

    _name = "gemini"
    _route = ":generateContent"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, model: str = "", api_key: str | None = None
    ) -> None:
        super().__init__(host, port, model=model or "gemini-2.5-flash", api_key=api_key)

    def _refuse(self, headers: Mapping[str, str], query: str) -> tuple[int, Any] | None:
        asked = parse_qs(query).get("key", [""])[0]
        key = headers.get("x-goog-api-key", "").strip() or asked or bearer_key(headers)
        if not key:
            return 403, self._error_body(403, _UNREGISTERED)
        if not key_matches(key, self.api_key):
            return 400, self._error_body(400, "API key not valid. Please pass a valid API key.")
        return None

    def _is_call(self, path: str) -> bool:
        return path.endswith(_CALLS)

    def _serves(self, path: str) -> bool:
        return path.endswith(_CALLS) or path.endswith(_EMBED)

    def _direct(self, path: str, payload: Mapping[str, Any]) -> tuple[int, Any] | None:
        if not path.endswith(_EMBED):
            return None
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            return 400, self._error_body(400, "* BatchEmbedContentsRequest.requests: required")
        embeddings = []
        for i, request in enumerate(requests):
            content = request.get("content") if isinstance(request, Mapping) else None
            if not isinstance(content, Mapping) or not content.get("parts"):
                message = f"* BatchEmbedContentsRequest.requests[{i}].content: contents required"
                return 400, self._error_body(400, message)
            size = request.get("outputDimensionality") or _EMBEDDING_DIMENSIONS
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                message = f"* BatchEmbedContentsRequest.requests[{i}].output_dimensionality"
                return 400, self._error_body(400, message + ": must be a positive integer")
            embeddings.append({"values": fake_embedding(_contents_text(content), size)})
        return 200, {"embeddings": embeddings}

    def _is_stream(self, path: str, payload: Mapping[str, Any]) -> bool:
        return path.endswith(":streamGenerateContent")

    def _call(self, path: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        # the model is named in the path: .../models/{model}:generateContent
        return {**payload, "model": path.rsplit("/", 1)[-1].partition(":")[0]}

    def _frame(self, event: str, data: Any) -> bytes:
        return f"data: {json.dumps(data)}\r\n\r\n".encode()

    def _parts(
        self, payload: Mapping[str, Any], reply: ScriptedReply
    ) -> tuple[str | None, list[dict[str, Any]], dict[str, int]]:
        """The answer's text, its ``functionCall`` parts, and the token counts."""
        contents = [c for c in payload.get("contents") or [] if isinstance(c, Mapping)]
        users = [c for c in contents if c.get("role", "user") == "user" and _contents_text(c)]
        text = reply.content
        if text is None and not reply.tool_calls:
            asked = _contents_text(users[-1]) if users else ""
            text = "Echo: " + (asked[:200] or "(no user message)")
        calls: list[dict[str, Any]] = []
        for raw in reply.tool_calls:
            call = normalize_tool_call(raw)
            fc: dict[str, Any] = {"name": call["name"], "args": json.loads(call["arguments"])}
            if call["id"]:
                fc["id"] = call["id"]
            calls.append({"functionCall": fc})
        system = payload.get("systemInstruction")
        prompt = sum(_part_words(p) for c in contents for p in c.get("parts") or [])
        prompt += _words(_contents_text(system)) if isinstance(system, Mapping) else 0
        output = _words(text or "") + sum(_words(json.dumps(c["functionCall"])) for c in calls)
        return (
            text,
            calls,
            {
                "prompt": reply.prompt_tokens if reply.prompt_tokens is not None else prompt,
                "output": reply.completion_tokens
                if reply.completion_tokens is not None
                else output,
            },
        )

    def _response(
        self, parts: list[dict[str, Any]], usage: dict[str, Any], model: str, n: int, **cand: Any
    ) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"parts": parts, "role": "model"}, **cand, "index": 0}],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": f"fakeGemini{n:06d}",
        }

    def _model(self, payload: Mapping[str, Any]) -> str:
        return str(payload.get("model") or self.default_model)

    def _answer(self, payload: Mapping[str, Any], reply: ScriptedReply, n: int) -> Any:
        text, calls, tokens = self._parts(payload, reply)
        parts = ([{"text": text}] if text else []) + calls
        return self._response(
            parts,
            _usage(tokens["prompt"], tokens["output"]),
            self._model(payload),
            n,
            finishReason=reply.finish_reason or "STOP",
        )

    def _events(
        self, payload: Mapping[str, Any], reply: ScriptedReply, n: int
    ) -> Iterator[tuple[str, Any]]:
        text, calls, tokens = self._parts(payload, reply)
        chunks: list[list[dict[str, Any]]] = [[{"text": p}] for p in _pieces(text)] if text else []
        if calls:
            chunks.append(calls)  # the API sends a function call whole, in one chunk
        chunks = chunks or [[{"text": ""}]]
        model, prompt, so_far = self._model(payload), tokens["prompt"], 0
        for parts in chunks[:-1]:
            so_far = min(tokens["output"], so_far + sum(_words(p.get("text", "")) for p in parts))
            yield "", self._response(parts, _usage(prompt, so_far), model, n)
        final = _usage(prompt, tokens["output"])
        finish = reply.finish_reason or "STOP"
        yield "", self._response(chunks[-1], final, model, n, finishReason=finish)

    def _error_body(self, status: int, message: str) -> Any:
        name = _STATUS.get(status, "INTERNAL" if status >= 500 else "UNKNOWN")
        return {"error": {"code": status, "message": message, "status": name}}


def _usage(prompt: int, output: int) -> dict[str, Any]:
    """``usageMetadata`` for ``output`` candidate tokens (so far, in a stream)."""
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": output}
    usage["totalTokenCount"] = prompt + output
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage
