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

import itertools
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from .._server._httpd import HTTPServer, Serving
from ._llm_types import RecordedRequest, ScriptedReply
from ._openai_api import OpenAICall, count_tokens, endpoint_of, fake_embedding, refuse

__all__ = [
    "FakeLLMServer",
    "RecordedRequest",
    "ScriptedReply",
    "count_tokens",
    "fake_embedding",
]

_MAX_BODY_BYTES = 64 * 1024 * 1024
_IDLE_SECONDS = 60.0  # idle keep-alive connections are closed after this long


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
                lambda exchange: OpenAICall(self, exchange).handle(),
                self.host,
                self.port,
                name="FakeLLMServer/1.0",
                max_body_bytes=_MAX_BODY_BYTES,
                timeout=_IDLE_SECONDS,
                on_error=refuse,
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
        return [r for r in self.requests if endpoint_of(r.path) == "chat"]

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
