"""Testing toolkit: capture spans in memory, inspect them, and run local stand-ins.

Usable under any test runner; the pytest fixtures (``tfy_spans``, ``tfy_llm_server``,
``tfy_otlp_receiver``) are registered automatically when the package is installed.

Example:
    >>> from truefoundry_tracing import workflow
    >>> from truefoundry_tracing.testing import capture_spans
    >>> @workflow
    ... def run() -> str:
    ...     return "done"
    >>> with capture_spans() as spans:
    ...     _ = run()
    >>> spans.root.name
    'run.workflow'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .._server._receiver import OTLPReceiver, ReceivedRequest
    from ..spans import LLMView, SpanList, SpanRecord, llm_view, render_tree
    from ._capture import CapturedSpans, capture_spans
    from ._gemini import FakeGeminiServer
    from ._llm_server import FakeLLMServer, RecordedRequest, ScriptedReply
    from ._network import NetworkBlocked, block_network
    from ._wire_fakes import FakeAnthropicServer, FakeResponsesServer

__all__ = [
    "CapturedSpans",
    "FakeAnthropicServer",
    "FakeGeminiServer",
    "FakeLLMServer",
    "FakeResponsesServer",
    "LLMView",
    "NetworkBlocked",
    "OTLPReceiver",
    "ReceivedRequest",
    "RecordedRequest",
    "ScriptedReply",
    "SpanList",
    "SpanRecord",
    "block_network",
    "capture_spans",
    "llm_view",
    "render_tree",
]

# Loaded on first use, so the pytest plugin (which imports this package) stays cheap.
_LAZY = {
    "LLMView": "..spans",
    "SpanList": "..spans",
    "SpanRecord": "..spans",
    "llm_view": "..spans",
    "render_tree": "..spans",
    "CapturedSpans": "._capture",
    "capture_spans": "._capture",
    "FakeLLMServer": "._llm_server",
    "RecordedRequest": "._llm_server",
    "ScriptedReply": "._llm_server",
    "OTLPReceiver": ".._server._receiver",
    "ReceivedRequest": ".._server._receiver",
    "NetworkBlocked": "._network",
    "block_network": "._network",
    "FakeAnthropicServer": "._wire_fakes",
    "FakeResponsesServer": "._wire_fakes",
    "FakeGeminiServer": "._gemini",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, globals())
