"""The OpenAI wire format of :class:`~truefoundry_tracing.testing.FakeLLMServer`.

One :class:`OpenAICall` per HTTP request (on the project's HTTP core): it records the request
on the server, routes it by the end of its path (chat completions, legacy completions,
embeddings, models) and answers as OpenAI would, streamed or not, from the server's script or
the deterministic defaults (:func:`count_tokens`, :func:`fake_embedding`, the echo answer).

Example:
    >>> count_tokens("Echo: hi"), endpoint_of("/api/llm/chat/completions")
    (2, 'chat')
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._server._httpd import ClientGone, Exchange, HTTPError
from ._llm_types import RecordedRequest, ScriptedReply, normalize_tool_call

if TYPE_CHECKING:
    from ._llm_server import FakeLLMServer

__all__ = [
    "NO_KEY",
    "OpenAICall",
    "bearer_key",
    "count_tokens",
    "endpoint_of",
    "fake_embedding",
    "key_matches",
    "openai_key",
    "refuse",
]

_log = logging.getLogger(__name__)

_ECHO_LIMIT = 200
_MAX_EMBEDDING_DIMENSIONS = 65_536
_DEFAULT_EMBEDDING_DIMENSIONS = 8
_SYSTEM_FINGERPRINT = "fp_fakellm"
_OWNER = "fake-llm-server"
_WORD_CHUNKS = re.compile(r"\s*\S+|\s+")

# What OpenAI puts in an error body's "type" and "code" for each status (the fake's defaults).
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", None),
    403: ("permission_error", None),
    404: ("invalid_request_error", None),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


NO_KEY = (
    "No API key was provided. Send it in an Authorization header as "
    "'Bearer <key>' (the openai client does this with api_key=)."
)


def bearer_key(headers: Mapping[str, str]) -> str:
    """The key of an ``Authorization: Bearer <key>`` header (lower-cased names), or ``""``."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def openai_key(headers: Mapping[str, str]) -> str:
    """The API key OpenAI reads: the bearer token, or Azure OpenAI's ``api-key`` header.

    Example:
        >>> openai_key({"authorization": "Bearer sk-1"}), openai_key({"api-key": "az"})
        ('sk-1', 'az')
    """
    return bearer_key(headers) or headers.get("api-key", "").strip()


def key_matches(key: str, expected: str | None) -> bool:
    """Whether ``key`` is accepted: any key when ``expected`` is None (constant-time compare)."""
    return expected is None or hmac.compare_digest(key.encode(), expected.encode())


def count_tokens(text: str) -> int:
    """Return the fake token count of ``text``: its number of whitespace-separated words.

    This is the rule :class:`FakeLLMServer` uses for ``usage`` when a reply does not set
    ``prompt_tokens`` / ``completion_tokens``, so tests can predict the numbers.

    Example:
        >>> count_tokens("Echo: hello  world")
        3
        >>> count_tokens("")
        0
    """
    return len(text.split())


def fake_embedding(text: str, dimensions: int = _DEFAULT_EMBEDDING_DIMENSIONS) -> list[float]:
    """Return the deterministic unit vector the server answers for ``text``.

    The components come from a SHAKE-256 hash of the UTF-8 text, scaled to ``[-1, 1]``,
    normalized to length 1 and rounded to float32, so the ``float`` and ``base64`` encodings
    decode to exactly these numbers. Token-array inputs are hashed as their compact JSON text
    (``"[1,2,3]"``).

    Example:
        >>> vec = fake_embedding("hello")
        >>> len(vec), vec == fake_embedding("hello"), vec == fake_embedding("hello!")
        (8, True, False)
        >>> round(sum(x * x for x in vec), 5)
        1.0
    """
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
        raise ValueError(f"dimensions must be a positive int, got {dimensions!r}")
    raw = hashlib.shake_256(text.encode("utf-8")).digest(4 * dimensions)
    ints = struct.unpack(f"<{dimensions}I", raw)
    values = [(i / 0xFFFFFFFF) * 2.0 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    unit = [v / norm for v in values]
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *unit)))


class _RequestError(Exception):
    """A request OpenAI would refuse: answered with its error body, never raised to callers."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def _error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> bytes:
    kind, default_code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    error = {"message": message, "type": kind, "param": param, "code": code or default_code}
    return _dumps({"error": error})


def refuse(exchange: Exchange, error: HTTPError) -> None:
    """Answer a request too malformed to parse, with an OpenAI-style error body."""
    body = _error_body(error.status, error.reason)
    exchange.respond(error.status, body, "application/json", close=True)


class OpenAICall:
    """One HTTP request to the fake: recorded, routed and answered the way OpenAI would."""

    def __init__(self, fake: FakeLLMServer, exchange: Exchange) -> None:
        self._fake = fake
        self._exchange = exchange

    def handle(self) -> None:
        request = self._exchange.request
        path, query = request.path, request.query
        headers = dict(request.headers)
        try:
            try:
                body = self._exchange.read_body()
            except HTTPError as exc:
                self._fake._record(RecordedRequest(request.method, path, headers, b"", None, query))
                self._send_error(exc.status, exc.reason, close=True)
                return
            record = RecordedRequest(request.method, path, headers, body, _parse_json(body), query)
            self._fake._record(record)
            try:
                self._route(record, body)
            except _RequestError as exc:
                self._send_error(exc.status, exc.message, param=exc.param, code=exc.code)
        except ClientGone:
            if not self._exchange.answered:
                self._exchange.drop()
        except Exception:
            _log.exception("FakeLLMServer: unexpected error while answering %s", request.target)
            if not self._exchange.answered:
                self._send_error(500, "FakeLLMServer internal error (see the log)", close=True)
            else:
                self._exchange.drop()

    def _route(self, request: RecordedRequest, body: bytes) -> None:
        endpoint = endpoint_of(request.path)
        if endpoint is None:
            raise _RequestError(404, f"Invalid URL ({request.method} {request.path})")
        expected = "GET" if endpoint == "models" else "POST"
        if request.method != expected:
            raise _RequestError(
                405, f"{request.method} is not allowed on {request.path}; use {expected}"
            )
        self._check_key(request.headers)
        if endpoint == "models":
            self._models()
            return
        payload = request.json
        if not isinstance(payload, dict):
            if body.strip() and payload is None:
                raise _RequestError(400, "We could not parse the JSON body of your request.")
            raise _RequestError(400, "The request body must be a JSON object.")
        if endpoint == "chat":
            self._chat(payload)
        elif endpoint == "completions":
            self._completions(payload)
        else:
            self._embeddings(payload)

    def _check_key(self, headers: Mapping[str, str]) -> None:
        key = openai_key(headers)
        if not key:
            raise _RequestError(401, NO_KEY)
        if not key_matches(key, self._fake.api_key):
            raise _RequestError(401, "Incorrect API key provided.", code="invalid_api_key")

    # ----------------------------------------------------------------------------- endpoints

    def _model_of(self, payload: Mapping[str, Any]) -> str:
        model = payload.get("model")
        if model is None:
            raise _RequestError(400, "You must provide a model parameter.")
        if not isinstance(model, str) or not model:
            raise _RequestError(400, "'model' must be a non-empty string", param="model")
        known = self._fake.models
        if known is not None and model not in known:
            raise _RequestError(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        self._fake._note_model(model)
        return model

    def _generation(
        self, payload: Mapping[str, Any]
    ) -> tuple[str, bool, ScriptedReply, int] | None:
        """Model, streaming, scripted reply and id of a chat or legacy-completion answer.

        None when the reply was already given (a scripted error or a dropped connection).
        """
        model = self._model_of(payload)
        stream = payload.get("stream") is True
        reply = self._take_reply(stream)
        if reply is None:
            return None
        return model, stream, reply, self._fake._next_id()

    def _take_reply(self, stream: bool) -> ScriptedReply | None:
        """Pop the next reply and handle delay/errors/dropping; None if already answered."""
        reply = self._fake._next_reply()
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status >= 400:
            message = reply.content or f"Simulated error {reply.status} from FakeLLMServer"
            self._send_error(reply.status, message, headers=reply.headers)
            return None
        if reply.break_stream_after is not None and not stream:
            self._exchange.drop()  # hang up without answering
            return None
        return reply

    def _chat(self, payload: Mapping[str, Any]) -> None:
        messages = payload.get("messages")
        if messages is None:
            raise _RequestError(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(messages, list):
            raise _RequestError(400, "'messages' must be a list of messages", param="messages")
        started = self._generation(payload)
        if started is None:
            return
        model, stream, reply, ident = started
        calls = [normalize_tool_call(c) for c in reply.tool_calls]
        for index, call in enumerate(calls):
            if call["id"] is None:
                call["id"] = f"call_fake{ident:06d}x{index}"
        content = reply.content
        if content is None and not calls:
            content = _echo(_last_user_text(messages))
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        usage = _usage(
            reply,
            prompt=sum(count_tokens(_message_text(m)) for m in messages),
            completion=count_tokens(content or "")
            + sum(count_tokens(c["name"]) + count_tokens(c["arguments"]) for c in calls),
        )
        base = {
            "id": f"chatcmpl-fake{ident:06d}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": _SYSTEM_FINGERPRINT,
        }
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
            if calls:
                message["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            answer = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            self._send_json(reply.status, answer, reply.headers)
            return

        base["object"] = "chat.completion.chunk"
        with_usage = self._stream_usage(payload)
        if with_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        first = {"role": "assistant", "content": None if content is None else "", "refusal": None}
        pieces: list[dict[str, Any]] = [
            chunk({"content": piece}) for piece in _WORD_CHUNKS.findall(content or "")
        ]
        for index, call in enumerate(calls):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            pieces.append(chunk({"tool_calls": [head]}))
            for fragment in _split_arguments(call["arguments"]):
                delta = {"index": index, "function": {"arguments": fragment}}
                pieces.append(chunk({"tool_calls": [delta]}))
        tail = [chunk({}, finish)]
        if with_usage:
            tail.append({**base, "choices": [], "usage": usage})
        self._stream(reply, [chunk(first)], pieces, tail)

    def _completions(self, payload: Mapping[str, Any]) -> None:
        prompt = payload.get("prompt", "")
        if isinstance(prompt, str):
            text = prompt
        elif isinstance(prompt, list):
            text = " ".join(p if isinstance(p, str) else json.dumps(p) for p in prompt)
        else:
            raise _RequestError(400, "'prompt' must be a string or a list", param="prompt")
        started = self._generation(payload)
        if started is None:
            return
        model, stream, reply, ident = started
        content = reply.content if reply.content is not None else _echo(text)
        finish = reply.finish_reason or "stop"
        usage = _usage(reply, prompt=count_tokens(text), completion=count_tokens(content))
        base = {
            "id": f"cmpl-fake{ident:06d}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": _SYSTEM_FINGERPRINT,
        }

        def choice(piece: str, finish_reason: str | None) -> dict[str, Any]:
            item = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [item]}

        if not stream:
            self._send_json(
                reply.status,
                {**choice(content, finish), "usage": usage},
                reply.headers,
            )
            return
        with_usage = self._stream_usage(payload)
        if with_usage:
            base["usage"] = None
        pieces = [choice(piece, None) for piece in _WORD_CHUNKS.findall(content)]
        tail = [choice("", finish)]
        if with_usage:
            tail.append({**base, "choices": [], "usage": usage})
        self._stream(reply, [], pieces, tail)

    def _embeddings(self, payload: Mapping[str, Any]) -> None:
        texts = _embedding_inputs(payload.get("input"))
        dimensions = payload.get("dimensions", _DEFAULT_EMBEDDING_DIMENSIONS)
        if (
            isinstance(dimensions, bool)
            or not isinstance(dimensions, int)
            or not 1 <= dimensions <= _MAX_EMBEDDING_DIMENSIONS
        ):
            raise _RequestError(400, "'dimensions' must be a positive integer", param="dimensions")
        encoding = payload.get("encoding_format", "float")
        if encoding not in ("float", "base64", None):
            raise _RequestError(
                400, "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
            )
        model = self._model_of(payload)
        data: list[dict[str, Any]] = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, dimensions)
            embedding: Any = vector
            if encoding == "base64":
                packed = struct.pack(f"<{dimensions}f", *vector)
                embedding = base64.b64encode(packed).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(count_tokens(t) for t in texts)
        answer = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._send_json(200, answer)

    def _models(self) -> None:
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": _OWNER}
            for model in self._fake._model_ids()
        ]
        self._send_json(200, {"object": "list", "data": data})

    # ------------------------------------------------------------------------------- writing

    def _stream_usage(self, payload: Mapping[str, Any]) -> bool:
        options = payload.get("stream_options")
        asked = isinstance(options, dict) and options.get("include_usage") is True
        return asked or self._fake.stream_usage

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"x-request-id": f"req_fake{self._fake._next_request_id():06d}"}
        for name, value in (extra or {}).items():
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            headers[name] = value
        return headers

    def _send_json(
        self,
        status: int,
        payload: Any,
        extra: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        self._exchange.respond(
            status, _dumps(payload), "application/json", self._headers(extra), close=close
        )

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        body = _error_body(status, message, param, code)
        self._exchange.respond(
            status, body, "application/json", self._headers(headers), close=close
        )

    def _stream(
        self,
        reply: ScriptedReply,
        head: list[dict[str, Any]],
        pieces: list[dict[str, Any]],
        tail: list[dict[str, Any]],
    ) -> None:
        # Chunked framing lets the client tell a broken stream from a finished one (an
        # HTTP/1.0 client gets a body delimited by closing instead; the core decides).
        extra = self._headers({"Cache-Control": "no-cache", **reply.headers})
        self._exchange.start_stream(reply.status, "text/event-stream; charset=utf-8", extra)
        for event in head:
            self._write_event(event)
        limit = reply.break_stream_after
        for count, event in enumerate(pieces):
            if limit is not None and count >= limit:
                break
            self._write_event(event)
        if limit is not None:
            # Hang up without the terminating chunk: the client sees an incomplete body.
            self._exchange.drop()
            return
        for event in tail:
            self._write_event(event)
        self._exchange.write(b"data: [DONE]\n\n")
        self._exchange.end_stream()

    def _write_event(self, event: Mapping[str, Any]) -> None:
        self._exchange.write(b"data: " + _dumps(event) + b"\n\n")


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


def endpoint_of(path: str) -> str | None:
    path = path.rstrip("/")
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/completions"):
        return "completions"
    if path.endswith("/embeddings"):
        return "embeddings"
    if path.endswith("/models"):
        return "models"
    return None


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def _parse_json(body: bytes) -> Any | None:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _message_text(message: Any) -> str:
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _message_text(message)
    return ""


def _echo(text: str) -> str:
    text = text.strip()
    if not text:
        return "Echo: (no user message)"
    if len(text) > _ECHO_LIMIT:
        text = text[:_ECHO_LIMIT] + "..."
    return f"Echo: {text}"


def _usage(reply: ScriptedReply, *, prompt: int, completion: int) -> dict[str, int]:
    prompt_tokens = prompt if reply.prompt_tokens is None else reply.prompt_tokens
    completion_tokens = completion if reply.completion_tokens is None else reply.completion_tokens
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _split_arguments(arguments: str) -> Iterator[str]:
    """Cut JSON argument text into a few fragments, as streamed tool-call deltas arrive."""
    size = 8
    for start in range(0, len(arguments), size):
        yield arguments[start : start + size]


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [json.dumps(value, separators=(",", ":"))]
        texts: list[str] = []
        for item in value:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, list) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in item
            ):
                texts.append(json.dumps(item, separators=(",", ":")))
            else:
                raise _RequestError(400, "'input' items must be strings or token lists", "input")
        return texts
    raise _RequestError(
        400, "'input' must be a string or a non-empty list of strings or token lists", "input"
    )
