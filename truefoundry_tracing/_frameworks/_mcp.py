"""MCP client tool calls, on every MCP major.

traceloop's MCP instrumentation is written against mcp 1.x (``mcp.shared.session``,
``streamablehttp_client``) and fails on mcp 2.x, which the OpenAI Agents SDK and Pydantic AI
install; mcp 2.x's own spans name the tool but carry neither its arguments nor its result.
This instrumentation applies traceloop's on mcp 1.x, where it works, and on mcp 2.x (or
where this traceloop-sdk ships no MCP instrumentation) records each request the client sends
(``ClientSession.send_request``, which every client call goes through):

* ``tools/call``: a ``<name>.tool`` span (``traceloop.span.kind`` = ``tool``) with the
  arguments as entity input and the result (its text content, or its structured content) as
  entity output, marked as an error when the server reports one;
* ``tools/list``: a ``tools/list.mcp`` span whose output is the tool names;
* any other request (``resources/read``, ``prompts/get``, ``initialize``, ...): a
  ``<method>.mcp`` span with the request's parameters as input and the result as output.

The span names are the ones traceloop gives them on mcp 1.x, so a trace reads the same on
both majors.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.trace import Status, StatusCode, get_tracer

from .._serialize import clip, to_json
from .._state import FLAGS
from ._spans import record_output, tool_attributes

__all__ = ["McpInstrumentor"]

_SESSION = "mcp.client.session"
_TRACELOOP = "opentelemetry.instrumentation.mcp"


def _mcp_major() -> int:
    try:
        return int(importlib.metadata.version("mcp").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return 0


class McpInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """traceloop's MCP instrumentation on mcp 1.x; this library's client spans otherwise.

    Example:
        >>> McpInstrumentor().instrumentation_dependencies()
        ('mcp >= 1.0.0',)
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("mcp >= 1.0.0",)

    def _instrument(self, **kwargs: Any) -> None:
        if _mcp_major() < 2 and importlib.util.find_spec(_TRACELOOP) is not None:
            self._delegate = importlib.import_module(_TRACELOOP).McpInstrumentor()
            self._delegate.instrument(**kwargs)
            return
        from .._version import __version__

        tracer = get_tracer("truefoundry_tracing.mcp", __version__, kwargs.get("tracer_provider"))
        wrapt.wrap_function_wrapper(_SESSION, "ClientSession.send_request", _send_request(tracer))

    def _uninstrument(self, **kwargs: Any) -> None:
        delegate = getattr(self, "_delegate", None)
        if delegate is not None:
            delegate.uninstrument()
            return
        session = importlib.import_module(_SESSION).ClientSession
        method = session.__dict__.get("send_request")
        if isinstance(method, wrapt.FunctionWrapper):
            session.send_request = method.__wrapped__


Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def _send_request(tracer: Any) -> Wrapper:
    async def wrapper(wrapped: Any, _session: Any, args: Any, kwargs: Any) -> Any:
        request = args[0] if args else kwargs.get("request")
        request = getattr(request, "root", request)  # mcp 1.x: a ClientRequest wraps it
        method = getattr(request, "method", None)
        if not FLAGS.enabled or not isinstance(method, str):
            return await wrapped(*args, **kwargs)
        params = getattr(request, "params", None)
        name = getattr(params, "name", None)
        if method == "tools/call" and isinstance(name, str):
            attributes = tool_attributes(name, getattr(params, "arguments", None) or {})
            with tracer.start_as_current_span(f"{name}.tool", attributes=attributes) as span:
                result = await wrapped(*args, **kwargs)
                _record_result(span, result)
                return result
        attributes = {"traceloop.span.kind": "task", "traceloop.entity.name": method}
        if params is not None and FLAGS.trace_content:
            attributes["traceloop.entity.input"] = clip(to_json(_plain(params)))
        with tracer.start_as_current_span(f"{method}.mcp", attributes=attributes) as span:
            result = await wrapped(*args, **kwargs)
            if FLAGS.trace_content:
                span.set_attribute(
                    "traceloop.entity.output", clip(to_json(_output(method, result)))
                )
            return result

    return wrapper


def _output(method: str, result: Any) -> Any:
    """What a request's span records as output: the tool names of a listing, else the result."""
    if method == "tools/list":
        return [getattr(t, "name", None) for t in getattr(result, "tools", None) or ()]
    return _plain(result)


def _plain(message: Any) -> Any:
    """An MCP message as it goes over the wire (its fields that are set), or as it is."""
    try:
        return message.model_dump(by_alias=True, mode="json", exclude_none=True)
    except Exception:
        return message


def _record_result(span: Any, result: Any) -> None:
    """The tool's result as entity output; an error result marks the span."""
    try:
        if getattr(result, "is_error", None) or getattr(result, "isError", None):
            span.set_status(Status(StatusCode.ERROR, "the MCP server reported a tool error"))
        if not FLAGS.trace_content:
            return
        texts = [c.text for c in getattr(result, "content", None) or () if hasattr(c, "text")]
        structured = getattr(result, "structured_content", None) or getattr(
            result, "structuredContent", None
        )
        if texts:
            output: Any = texts[0] if len(texts) == 1 else texts
        else:
            output = structured if structured is not None else result
        record_output(span, output)
    except Exception:  # never into the app: the span keeps what it has
        return
