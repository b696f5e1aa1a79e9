"""Local stand-ins for the other wire formats agent frameworks speak: Anthropic's Messages API
and OpenAI's Responses API.

Each is a small stdlib HTTP server on a background thread, scripted like
:class:`~truefoundry_tracing.testing.FakeLLMServer` (the same :class:`ScriptedReply`: text,
tool calls, token counts, error status, delay; the default answer echoes the last user
message and counts one token per word), answering the real clients (``anthropic.Anthropic``,
``openai.OpenAI().responses``) with non-streamed bodies and server-sent-event streams shaped
as the real APIs send them, usage included: Anthropic's stream reports ``output_tokens: 1``
in ``message_start`` and the final count in ``message_delta``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar

from ._llm_server import RecordedRequest, ScriptedReply
from ._openai_api import NO_KEY, bearer_key, key_matches, openai_key

__all__ = ["FakeAnthropicServer", "FakeResponsesServer"]


def _words(text: str) -> int:
    return len(text.split())


def _pieces(text: str) -> list[str]:
    """``text`` cut into streamed deltas, one word each with the space before it."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text of its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def _calls(reply: ScriptedReply) -> list[tuple[str, str, str]]:
    """(id, name, JSON arguments) of each scripted tool call."""
    out = []
    for n, call in enumerate(reply.tool_calls):
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        out.append(
            (
                str(call.get("id") or f"call_{n + 1}"),
                str(fn["name"]),
                args if isinstance(args, str) else json.dumps(args),
            )
        )
    return out


class _Fake:
    """Lifecycle, scripting and recording shared by the stand-ins."""

    _name: ClassVar[str] = "fake"
    _route: ClassVar[str] = ""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, model: str = "", api_key: str | None = None
    ) -> None:
        self.host, self.port, self.default_model = host, port, model
        self.api_key = api_key
        self._lock = threading.Lock()
        self._replies: deque[ScriptedReply] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> Any:
        """Start serving on a daemon thread; return ``self``."""
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.owner = self  # type: ignore[attr-defined]
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self._httpd = httpd
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``"http://127.0.0.1:54321"``; raises ``RuntimeError`` if stopped."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first.")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def reply(self, content: str | None = None, **fields: Any) -> None:
        """Queue one :class:`ScriptedReply` (first in, first out, one per model call)."""
        self.queue(ScriptedReply(content, **fields))

    def queue(self, *replies: ScriptedReply) -> None:
        """Queue replies in order; each model call takes the oldest one."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first."""
        with self._lock:
            return list(self._requests)

    def model_requests(self) -> list[RecordedRequest]:
        """The requests that were model calls, oldest first."""
        return [r for r in self.requests if self._is_call(r.path)]

    def _is_call(self, path: str) -> bool:
        """Whether a request to ``path`` is a model call."""
        return path.endswith(self._route)

    def _direct(self, path: str, payload: Mapping[str, Any]) -> tuple[int, Any] | None:
        """(status, body) for a request no scripted reply is for (Gemini's embeddings); None
        for anything else."""
        return None

    def _serves(self, path: str) -> bool:
        """Whether ``path`` is an endpoint of this API (others get 404)."""
        return self._is_call(path)

    def _is_stream(self, path: str, payload: Mapping[str, Any]) -> bool:
        """Whether the model call asks for a stream."""
        return bool(payload.get("stream"))

    def _call(self, path: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """The model call's parameters: the body (Gemini adds the model named in the path)."""
        return payload

    def _frame(self, event: str, data: Any) -> bytes:
        """One server-sent event on the wire."""
        return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self) -> tuple[ScriptedReply, int]:
        with self._lock:
            return (self._replies.popleft() if self._replies else ScriptedReply()), next(self._ids)

    def _answer(self, payload: Mapping[str, Any], reply: ScriptedReply, n: int) -> Any:
        raise NotImplementedError

    def _events(
        self, payload: Mapping[str, Any], reply: ScriptedReply, n: int
    ) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError

    def _error(self, reply: ScriptedReply) -> Any:
        """The API's error body for a scripted error status."""
        return self._error_body(reply.status, reply.content or f"Simulated error {reply.status}")

    def _error_body(self, status: int, message: str) -> Any:
        raise NotImplementedError

    def _refuse(self, headers: Mapping[str, str], query: str) -> tuple[int, Any] | None:
        """(status, error body) when the API would refuse the request's credentials."""
        raise NotImplementedError


class FakeAnthropicServer(_Fake):
    """A local stand-in for Anthropic's Messages API (``POST /v1/messages``).

    Point ``anthropic.Anthropic(base_url=server.url, api_key=...)`` at :attr:`url`. A reply's
    ``content`` becomes a text block, its ``tool_calls`` ``tool_use`` blocks (``stop_reason``
    ``"tool_use"``), ``prompt_tokens``/``completion_tokens`` the ``input_tokens`` and
    ``output_tokens`` of ``usage``; an error status answers Anthropic's error body. As the API
    does, it answers 401 to a request without ``x-api-key`` (or a bearer token), or with
    another key than ``api_key=`` when that is set, and 400 without ``anthropic-version``.

    Example:
        >>> import json, urllib.request
        >>> with FakeAnthropicServer() as server:
        ...     server.reply("Paris.", prompt_tokens=9)
        ...     body = {"model": "claude-x", "max_tokens": 50,
        ...             "messages": [{"role": "user", "content": "Capital of France?"}]}
        ...     headers = {"x-api-key": "test", "anthropic-version": "2023-06-01"}
        ...     url = server.url + "/v1/messages"
        ...     req = urllib.request.Request(url, json.dumps(body).encode(), headers)
        ...     answer = json.load(urllib.request.urlopen(req))
        >>> answer["content"], answer["usage"]["input_tokens"], answer["stop_reason"]
        ([{'type': 'text', 'text': 'Paris.'}], 9, 'end_turn')
    """

    _name = "anthropic"
    _route = "/messages"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, model: str = "", api_key: str | None = None
    ) -> None:
        super().__init__(host, port, model=model or "claude-sonnet-4-5", api_key=api_key)

    def _refuse(self, headers: Mapping[str, str], query: str) -> tuple[int, Any] | None:
        key = headers.get("x-api-key", "").strip() or bearer_key(headers)  # key, or OAuth token
        if not key:
            return 401, self._error_body(401, "x-api-key header is required")
        if not key_matches(key, self.api_key):
            return 401, self._error_body(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return 400, self._error_body(400, "anthropic-version: header is required")
        return None

    def _parts(
        self, payload: Mapping[str, Any], reply: ScriptedReply, n: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, int]]:
        messages = payload.get("messages") or []
        users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
        asked = _text_of(users[-1].get("content")) if users else ""
        text = reply.content
        if text is None and not reply.tool_calls:
            text = "Echo: " + (asked[:200] or "(no user message)")
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for call_id, name, args in _calls(reply):
            blocks.append(
                {"type": "tool_use", "id": call_id, "name": name, "input": json.loads(args)}
            )
        prompt = sum(_words(_text_of(m.get("content"))) for m in messages if isinstance(m, Mapping))
        prompt += _words(_text_of(payload.get("system")))
        usage = {
            "input_tokens": reply.prompt_tokens if reply.prompt_tokens is not None else prompt,
            "output_tokens": reply.completion_tokens
            if reply.completion_tokens is not None
            else _words(text or "") + sum(_words(a) + 1 for _, _, a in _calls(reply)),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
        message = {
            "id": f"msg_fake{n:06d}",
            "type": "message",
            "role": "assistant",
            "model": payload.get("model") or self.default_model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
        }
        return message, blocks, usage

    def _answer(self, payload: Mapping[str, Any], reply: ScriptedReply, n: int) -> Any:
        message, _, usage = self._parts(payload, reply, n)
        return {**message, "usage": usage}

    def _events(
        self, payload: Mapping[str, Any], reply: ScriptedReply, n: int
    ) -> Iterator[tuple[str, Any]]:
        message, blocks, usage = self._parts(payload, reply, n)
        start = {**message, "content": [], "stop_reason": None}
        start["usage"] = {**usage, "output_tokens": 1}  # what Anthropic sends before the text
        yield "message_start", {"type": "message_start", "message": start}
        for index, block in enumerate(blocks):
            empty = {**block, "text": ""} if block["type"] == "text" else {**block, "input": {}}
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": empty,
                },
            )
            if index == 0:
                yield "ping", {"type": "ping"}
            if block["type"] == "text":
                deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
            else:
                raw = json.dumps(block["input"])
                half = len(raw) // 2
                deltas = [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in (raw[:half], raw[half:])
                ]
            for delta in deltas:
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": delta,
                    },
                )
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        yield "message_stop", {"type": "message_stop"}

    def _error_body(self, status: int, message: str) -> Any:
        kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
        return {
            "type": "error",
            "error": {"type": kind.get(status, "api_error"), "message": message},
        }


class FakeResponsesServer(_Fake):
    """A local stand-in for OpenAI's Responses API (``POST /v1/responses``).

    Point ``openai.OpenAI(base_url=server.base_url, api_key=...)`` at :attr:`base_url` and
    call ``client.responses.create(...)``. A reply's ``content`` becomes a ``message`` output
    item, its ``tool_calls`` ``function_call`` items; usage is ``input_tokens``,
    ``output_tokens`` and ``total_tokens``. Streams send ``response.created``, the text deltas
    and ``response.completed`` with the whole response. A request without a key (``Authorization:
    Bearer``, or Azure's ``api-key``), or with another key than ``api_key=`` when that is set,
    gets OpenAI's 401, as from :class:`FakeLLMServer`.

    Example:
        >>> import json, urllib.request
        >>> with FakeResponsesServer() as server:
        ...     server.reply("Paris.", prompt_tokens=4)
        ...     body = {"model": "gpt-4o-mini", "input": "Capital of France?"}
        ...     url = server.base_url + "/responses"
        ...     auth = {"Authorization": "Bearer test"}
        ...     req = urllib.request.Request(url, json.dumps(body).encode(), auth)
        ...     answer = json.load(urllib.request.urlopen(req))
        >>> answer["output"][0]["content"][0]["text"], answer["usage"]["total_tokens"]
        ('Paris.', 5)
    """

    _name = "responses"
    _route = "/responses"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, model: str = "", api_key: str | None = None
    ) -> None:
        super().__init__(host, port, model=model or "gpt-4o-mini", api_key=api_key)

    def _refuse(self, headers: Mapping[str, str], query: str) -> tuple[int, Any] | None:
        key = openai_key(headers)
        if not key:
            return 401, self._error_body(401, NO_KEY)
        if not key_matches(key, self.api_key):
            body = self._error_body(401, "Incorrect API key provided.")
            body["error"]["code"] = "invalid_api_key"
            return 401, body
        return None

    @property
    def base_url(self) -> str:
        """:attr:`url` + ``"/v1"``: what to pass as ``openai.OpenAI(base_url=...)``."""
        return self.url + "/v1"

    def _answer(self, payload: Mapping[str, Any], reply: ScriptedReply, n: int) -> Any:
        items = payload.get("input")
        if isinstance(items, str):
            asked, prompt = items, _words(items)
        else:
            texts = [
                _text_of(i.get("content")) or str(i.get("output", ""))
                for i in items or []
                if isinstance(i, Mapping)
            ]
            users = [
                _text_of(i.get("content"))
                for i in items or []
                if isinstance(i, Mapping) and i.get("role") == "user"
            ]
            asked, prompt = (users[-1] if users else ""), sum(_words(t) for t in texts)
        prompt += _words(str(payload.get("instructions") or ""))
        text = reply.content
        if text is None and not reply.tool_calls:
            text = "Echo: " + (asked[:200] or "(no user message)")
        output: list[dict[str, Any]] = []
        if text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_fake{n:06d}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            )
        for call_id, name, args in _calls(reply):
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{call_id}",
                    "call_id": call_id,
                    "name": name,
                    "arguments": args,
                    "status": "completed",
                }
            )
        completion = (
            reply.completion_tokens
            if reply.completion_tokens is not None
            else _words(text or "") + sum(_words(a) + 1 for _, _, a in _calls(reply))
        )
        inp = reply.prompt_tokens if reply.prompt_tokens is not None else prompt
        return {
            "id": f"resp_fake{n:06d}",
            "object": "response",
            "created_at": 1_700_000_000,
            "status": "completed",
            "model": payload.get("model") or self.default_model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": inp,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": inp + completion,
            },
        }

    def _events(
        self, payload: Mapping[str, Any], reply: ScriptedReply, n: int
    ) -> Iterator[tuple[str, Any]]:
        done = self._answer(payload, reply, n)
        seq = itertools.count()
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        yield _event("response.created", seq, response=started)
        for index, item in enumerate(done["output"]):
            yield from _item_events(item, index, seq)
            yield _event("response.output_item.done", seq, output_index=index, item=item)
        yield _event("response.completed", seq, response=done)

    def _error_body(self, status: int, message: str) -> Any:
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: _Fake = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake._record(RecordedRequest("POST", path, headers, body, payload, query))
        if not fake._serves(path) or not isinstance(payload, Mapping):
            self._json(404, {"error": {"type": "not_found_error", "message": f"No route {path}."}})
            return
        refused = fake._refuse(headers, query)
        if refused is not None:  # checked before a scripted reply is used, as the API would
            self._json(*refused)
            return
        direct = fake._direct(path, payload)
        if direct is not None:
            self._json(*direct)
            return
        payload = fake._call(path, payload)
        reply, n = fake._next()
        if reply.delay:
            threading.Event().wait(reply.delay)
        if reply.status >= 400:
            self._json(reply.status, fake._error(reply), reply.headers)
            return
        if not fake._is_stream(path, payload):
            self._json(200, fake._answer(payload, reply, n), reply.headers)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for event, data in fake._events(payload, reply, n):
            self.wfile.write(fake._frame(event, data))
            self.wfile.flush()
        self.close_connection = True

    def _json(self, status: int, payload: Any, extra: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _event(kind: str, seq: Iterator[int], **fields: Any) -> tuple[str, Any]:
    """One Responses API stream event, numbered as the API numbers them."""
    return kind, {"type": kind, "sequence_number": next(seq), **fields}


def _item_events(
    item: Mapping[str, Any], index: int, seq: Iterator[int]
) -> Iterator[tuple[str, Any]]:
    """The events that stream one output item: a message's text deltas, or a call's arguments."""
    if item["type"] != "message":
        added = {**item, "arguments": "", "status": "in_progress"}
        yield _event("response.output_item.added", seq, output_index=index, item=added)
        yield _event(
            "response.function_call_arguments.done",
            seq,
            item_id=item["id"],
            output_index=index,
            arguments=item["arguments"],
        )
        return
    empty = {**item, "status": "in_progress", "content": []}
    yield _event("response.output_item.added", seq, output_index=index, item=empty)
    text = item["content"][0]["text"]
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    for piece in _pieces(text):
        yield _event("response.output_text.delta", seq, **where, delta=piece, logprobs=[])
    yield _event("response.output_text.done", seq, **where, text=text, logprobs=[])
