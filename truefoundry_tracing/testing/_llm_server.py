"""A local, OpenAI-compatible HTTP server for tests and offline examples.

:class:`FakeLLMServer` answers the OpenAI REST endpoints an application uses most
(chat completions, legacy completions, embeddings, model list) from a background thread, so
a real ``openai.OpenAI`` client (and any tracing instrumentation wrapped around it) can run
end to end with no network and no real API key. Every request is recorded for assertions, and
the next answers can be scripted: text, tool calls, token counts, HTTP errors, slow replies and
streams that break halfway. It runs on the project's one HTTP core (``_server._httpd``).

Routes match on the end of the path, so any prefix works: ``/v1/chat/completions``,
``/api/llm/chat/completions`` (TrueFoundry's gateway base URL is ``<host>/api/llm``) and
``/api/llm/api/inference/openai/chat/completions`` all reach the chat handler.

Deterministic defaults (used when nothing is scripted):

* **Answer text**: ``"Echo: <text of the last user message>"``; the echoed text is cut to
  200 characters (then ``"..."`` is appended). With no user text the answer is
  ``"Echo: (no user message)"``. Legacy completions echo the prompt the same way.
* **Token counts** (:func:`count_tokens`): one token per whitespace-separated word.
  ``prompt_tokens`` counts the words of every message's text (string content or ``text``
  parts) or of the prompt; ``completion_tokens`` counts the words of the answer plus the name
  and JSON arguments of each tool call.
* **Embeddings** (:func:`fake_embedding`): unit vectors of dimension 8 (or the request's
  ``dimensions``) derived from a hash of each input.

Where OpenAI is strict, the fake is too, so a test does not pass where production fails:

* **Usage in streams** only when the request asks with ``stream_options={"include_usage":
  True}``: then a last chunk with ``choices: []`` carries it (``FakeLLMServer(stream_usage=True)``
  sends it always, like a gateway that adds it). Non-streamed answers always carry ``usage``.
* **A key is required**: a request without ``Authorization: Bearer <key>`` (or Azure's
  ``api-key`` header) gets 401; with ``api_key=`` set, any other key gets 401
  ``invalid_api_key``.
* **A model is required** (400 without one); with ``models=`` set, any other model gets 404
  ``model_not_found``. Without it every model name is accepted (gateways have their own names).
* **Errors** have OpenAI's body ``{"error": {"message", "type", "param", "code"}}``; an unknown
  path gets 404 ``Invalid URL (<method> <path>)``, a missing ``messages`` 400 naming it.

Every answer has exactly one choice: ``n``, ``max_tokens``, ``temperature``, ``tools`` and
other generation parameters are recorded but do not change the answer.

Example:
    >>> import json, urllib.request
    >>> with FakeLLMServer() as server:
    ...     server.reply("Hello!")
    ...     body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
    ...     req = urllib.request.Request(
    ...         server.base_url + "/chat/completions",
    ...         data=body.encode(),
    ...         headers={"Authorization": "Bearer test-key"},
    ...     )
    ...     with urllib.request.urlopen(req) as resp:
    ...         answer = json.load(resp)
    >>> answer["choices"][0]["message"]["content"]
    'Hello!'
    >>> server.last_request.json["messages"][0]["content"]
    'Hi'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import math
import re
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._server._httpd import ClientGone, Exchange, HTTPError, HTTPServer, Serving

__all__ = [
    "FakeLLMServer",
    "RecordedRequest",
    "ScriptedReply",
    "count_tokens",
    "fake_embedding",
]

_log = logging.getLogger(__name__)

_ECHO_LIMIT = 200
_MAX_BODY_BYTES = 64 * 1024 * 1024
_IDLE_SECONDS = 60.0  # idle keep-alive connections are closed after this long
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


# --------------------------------------------------------------------------------------------
# Public data types and helpers
# --------------------------------------------------------------------------------------------


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
            _normalize_tool_call(call)  # validate early; rendering normalizes again
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


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeLLMServer(Serving):
    """A local OpenAI-compatible server on a background thread, with scripted answers.

    ``port=0`` (the default) picks a free port. Use it as a context manager, or call
    :meth:`start` and :meth:`stop`. All methods are thread-safe. Point a client at
    :attr:`base_url`; queue answers with :meth:`reply`, :meth:`queue`, :meth:`fail` or
    :meth:`break_stream` (first in, first out, one per chat or legacy-completion call; when
    the queue is empty the deterministic default answer is used); inspect what was sent with
    :attr:`requests`, :attr:`last_request` and :meth:`chat_requests`.

    ``default_model`` is listed first by ``/models``. As with OpenAI, a streamed answer ends
    with a usage chunk (``choices: []``) only when the request sent
    ``stream_options={"include_usage": True}``; ``stream_usage=True`` sends it always, like a
    gateway that adds it (code that reads ``chunk.choices[0]`` on every chunk should skip
    chunks without choices). ``api_key``: the only key accepted (None: any key, but a key is
    required). ``models``: the only model names accepted (None: any).

    Example:
        >>> with FakeLLMServer() as server:  # doctest: +SKIP
        ...     client = openai.OpenAI(base_url=server.base_url, api_key="test-key")
        ...     server.reply("Paris is sunny.")
        ...     answer = client.chat.completions.create(
        ...         model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather?"}]
        ...     )
        ...     assert answer.choices[0].message.content == "Paris is sunny."
        ...     assert server.last_request.headers["authorization"] == "Bearer test-key"
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        default_model: str = "gpt-4o-mini",
        stream_usage: bool = False,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.default_model = default_model
        self.stream_usage = stream_usage
        self.api_key = api_key
        self.models = None if models is None else frozenset(models)
        self._lock = threading.Lock()
        self._lifecycle = threading.RLock()
        self._replies: deque[ScriptedReply] = deque()
        self._requests: list[RecordedRequest] = []
        self._models: dict[str, None] = {}
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._httpd: HTTPServer | None = None

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeLLMServer:
        """Bind the socket and start serving on a daemon thread; return ``self``.

        Raises ``RuntimeError`` if already running. A stopped server can be started again
        (with ``port=0`` it may get a different port).

        Example:
            >>> server = FakeLLMServer().start()
            >>> server.url.startswith("http://127.0.0.1:")
            True
            >>> server.stop()
        """
        with self._lifecycle:
            if self._httpd is not None:
                raise RuntimeError("FakeLLMServer is already running")
            httpd = HTTPServer(
                lambda exchange: _Call(self, exchange).handle(),
                self.host,
                self.port,
                name="FakeLLMServer/1.0",
                max_body_bytes=_MAX_BODY_BYTES,
                timeout=_IDLE_SECONDS,
                on_error=_refuse,
            )
            self._httpd = httpd.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port. Safe to call twice.

        Example:
            >>> server = FakeLLMServer().start()
            >>> server.stop(); server.stop()
            >>> server.running
            False
        """
        with self._lifecycle:
            httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<FakeLLMServer {where}>"

    @property
    def running(self) -> bool:
        """Whether the server is currently serving.

        Example:
            >>> FakeLLMServer().running
            False
        """
        return self._httpd is not None

    @property
    def url(self) -> str:
        """Root URL, e.g. ``"http://127.0.0.1:54321"``; raises ``RuntimeError`` if stopped.

        Example:
            >>> with FakeLLMServer() as server:
            ...     server.url == f"http://127.0.0.1:{server.url.rsplit(':', 1)[1]}"
            True
        """
        httpd = self._httpd
        if httpd is None:
            raise RuntimeError(
                "FakeLLMServer is not running; call start() or use it as a context manager"
            )
        return httpd.url

    @property
    def base_url(self) -> str:
        """:attr:`url` + ``"/v1"``: what to pass as ``openai.OpenAI(base_url=...)``.

        Example:
            >>> with FakeLLMServer() as server:
            ...     server.base_url == server.url + "/v1"
            True
        """
        return self.url + "/v1"

    # ------------------------------------------------------------------------------ scripting

    def reply(self, content: str | None = None, **fields: Any) -> None:
        """Queue one :class:`ScriptedReply` built from ``content`` and ``fields``.

        Example:
            >>> server = FakeLLMServer()
            >>> server.reply("Hi there", completion_tokens=5)
            >>> server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
        """
        self.queue(ScriptedReply(content, **fields))

    def queue(self, *replies: ScriptedReply) -> None:
        """Queue replies in order; each chat or legacy-completion call takes the oldest one.

        Example:
            >>> server = FakeLLMServer()
            >>> server.queue(ScriptedReply("first"), ScriptedReply("second"))
        """
        for item in replies:
            if not isinstance(item, ScriptedReply):
                raise TypeError(f"expected ScriptedReply, got {type(item).__name__}")
        with self._lock:
            self._replies.extend(replies)

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Make the next ``times`` calls answer HTTP ``status`` with an OpenAI error body.

        Without ``message`` the error message is ``"Simulated error <status> from
        FakeLLMServer"``. The ``openai`` client maps 429 to ``RateLimitError`` and 5xx to
        ``InternalServerError`` (and retries them unless ``max_retries=0``).

        Example:
            >>> server = FakeLLMServer()
            >>> server.fail(429, headers={"Retry-After": "0"})
            >>> server.fail(500, times=2, message="upstream exploded")
        """
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"fail() needs an error status between 400 and 599, got {status!r}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times!r}")
        text = message if message is not None else f"Simulated error {status} from FakeLLMServer"
        item = ScriptedReply(content=text, status=status, headers=dict(headers or {}))
        self.queue(*([item] * times))

    def break_stream(self, after_chunks: int = 1, *, content: str | None = None) -> None:
        """Make the next call's stream stop abruptly after ``after_chunks`` content chunks.

        The streamed text is ``content`` (default: the echo answer). See
        :class:`ScriptedReply` for what a non-streaming call does with it.

        Example:
            >>> server = FakeLLMServer()
            >>> server.break_stream(after_chunks=2, content="one two three four")
        """
        self.queue(ScriptedReply(content=content, break_stream_after=after_chunks))

    def clear(self) -> None:
        """Forget recorded requests, queued replies and the models seen so far.

        Example:
            >>> server = FakeLLMServer()
            >>> server.reply("unused")
            >>> server.clear()
            >>> server.requests
            []
        """
        with self._lock:
            self._replies.clear()
            self._requests.clear()
            self._models.clear()

    # ----------------------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot (a new list) of every request received, oldest first.

        Example:
            >>> FakeLLMServer().requests
            []
        """
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request; raises ``AssertionError`` if none was received.

        Example:
            >>> try:
            ...     FakeLLMServer().last_request
            ... except AssertionError as exc:
            ...     print(exc)
            FakeLLMServer has not received any request yet
        """
        with self._lock:
            if not self._requests:
                raise AssertionError("FakeLLMServer has not received any request yet")
            return self._requests[-1]

    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded requests whose path ends with ``/chat/completions``, oldest first.

        Example:
            >>> FakeLLMServer().chat_requests()
            []
        """
        return [r for r in self.requests if _endpoint(r.path) == "chat"]

    @property
    def pending_replies(self) -> int:
        """How many scripted replies are still queued.

        Example:
            >>> server = FakeLLMServer()
            >>> server.reply("a"); server.reply("b")
            >>> server.pending_replies
            2
        """
        with self._lock:
            return len(self._replies)

    # ------------------------------------------------------------- internals used by _Handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_reply(self) -> ScriptedReply:
        with self._lock:
            return self._replies.popleft() if self._replies else ScriptedReply()

    def _note_model(self, model: str) -> None:
        with self._lock:
            self._models[model] = None

    def _model_ids(self) -> list[str]:
        with self._lock:
            seen = [m for m in self._models if m != self.default_model]
        return [self.default_model, *seen]

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _next_request_id(self) -> int:
        with self._lock:
            return next(self._request_ids)


# --------------------------------------------------------------------------------------------
# One request (on the HTTP core)
# --------------------------------------------------------------------------------------------


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


def _refuse(exchange: Exchange, error: HTTPError) -> None:
    """Answer a request too malformed to parse, with an OpenAI-style error body."""
    body = _error_body(error.status, error.reason)
    exchange.respond(error.status, body, "application/json", close=True)


class _Call:
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
        endpoint = _endpoint(request.path)
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
        auth = headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
        key = key or headers.get("api-key", "").strip()  # Azure OpenAI's header
        if not key:
            raise _RequestError(
                401,
                "No API key was provided. Send it in an Authorization header as "
                "'Bearer <key>' (the openai client does this with api_key=).",
            )
        expected = self._fake.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
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
        calls = [_normalize_tool_call(c) for c in reply.tool_calls]
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


def _endpoint(path: str) -> str | None:
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


def _normalize_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
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
