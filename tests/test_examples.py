"""The programs in examples/ run to completion and produce the trace they promise.

Each example runs as a subprocess of this environment's Python, exporting over real OTLP/HTTP
to a local ``OTLPReceiver`` (``TFY_TRACING_ENDPOINT``). Two ways:

- offline, as a user runs it with nothing configured: it starts its own LLM stand-in;
- through "the gateway": ``TFY_GATEWAY_URL`` and ``TFY_API_KEY`` point it at this test's
  ``FakeLLMServer``, which records what the gateway would receive, so the metadata and the
  trace id each request carried are checked against the exported trace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from truefoundry_tracing.spans import SpanList
from truefoundry_tracing.testing import FakeLLMServer, OTLPReceiver, SpanRecord

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEY = "tfy-example-key-Np3Vd8Kw1"


@dataclass(frozen=True)
class Case:
    script: str
    app: str
    tree: Any  # (name, [children...]) with children in start order
    metadata: list[dict[str, str]]  # what each gateway request carries, besides the trace id
    replies: list[dict[str, Any]] = field(default_factory=list)


CHAT = "openai.chat"
CASES = {
    "chat_stream": Case(
        "chat_stream.py",
        "openai-example",
        ("chat_stream.workflow", [(CHAT, [])]),
        [{"feature": "chat-stream", "customer_id": "demo-customer", "tfy_log_request": "true"}],
        [{"content": "Spans are chapters."}],
    ),
    "joke_workflow": Case(
        "joke_workflow.py",
        "joke-workflow",
        (
            "pirate_joke_generator.workflow",
            [
                ("joke_creation.task", [(CHAT, [])]),
                ("pirate_translation.task", [(CHAT, [])]),
                ("signature_generation.task", [(CHAT, [])]),
            ],
        ),
        [
            {"workflow": "pirate_joke_generator", "customer_id": "demo", "step": step}
            for step in ("joke_creation", "pirate_translation", "signature_generation")
        ],
    ),
    "agent_tools": Case(
        "agent_tools.py",
        "agent-tools",
        (
            "joke_translation.agent",
            [(CHAT, []), ("history_jokes.tool", [(CHAT, [])]), (CHAT, [])],
        ),
        [{"agent": "joke_translation", "customer_id": "demo"}] * 3,
        [
            {"tool_calls": [{"name": "history_jokes", "arguments": {"topic": "pirates"}}]},
            {"content": "An old one about a plank."},
            {"content": "Arr, the light be drawin' bugs!"},
        ],
    ),
}


def shape(spans: SpanList, span: SpanRecord) -> Any:
    children = sorted(spans.children(span), key=lambda s: s.start_ns)
    return (span.name, [shape(spans, c) for c in children])


def run_example(case: Case, receiver: OTLPReceiver, **env: str) -> tuple[str, SpanList]:
    # Only the openai instrumentation: loading every installed one costs seconds per run.
    full_env = {
        **os.environ,
        "TFY_TRACING_ENDPOINT": receiver.url,
        "TFY_TRACING_INSTRUMENTS": "openai",
        **env,
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / case.script)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    count = sum(1 for _ in _walk(case.tree))
    spans = SpanList(receiver.wait_for_spans(count, timeout=10))
    assert len(spans) == count, spans.tree()
    # One trace, with exactly the promised tree.
    assert len({s.trace_id for s in spans}) == 1, spans.tree()
    assert shape(spans, spans.root) == case.tree, spans.tree()
    assert {s.service_name for s in spans} == {case.app}
    return done.stdout, spans


def _walk(tree: Any) -> Any:
    yield tree[0]
    for child in tree[1]:
        yield from _walk(child)


@pytest.mark.parametrize("name", list(CASES))
def test_example_runs_offline(name: str, receiver: OTLPReceiver) -> None:
    stdout, spans = run_example(CASES[name], receiver)
    assert stdout.strip()
    for span in spans.llm_spans():
        assert span.status != "ERROR"
    for request in receiver.requests:
        assert "authorization" not in request.headers  # nothing configured, no key sent


@pytest.mark.parametrize("name", list(CASES))
def test_example_through_the_gateway(name: str, receiver: OTLPReceiver, llm: FakeLLMServer) -> None:
    case = CASES[name]
    for reply in case.replies:
        llm.reply(**reply)
    stdout, spans = run_example(
        case, receiver, TFY_GATEWAY_URL=llm.base_url, TFY_API_KEY=KEY, TFY_MODEL="openai-main/m"
    )
    trace_id = spans.root.trace_id
    requests = llm.chat_requests()
    assert [r.json["model"] for r in requests] == ["openai-main/m"] * len(case.metadata)
    for request, expected in zip(requests, case.metadata, strict=True):
        assert request.headers["authorization"] == f"Bearer {KEY}"
        sent = json.loads(request.headers["x-tfy-metadata"])
        assert sent == {"tfy_trace_id": trace_id, **expected}
    # The traces went to the receiver with the same key; the key is in no span.
    for request in receiver.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert KEY.encode() not in request.body
    if case.replies and case.replies[-1].get("content"):
        assert case.replies[-1]["content"] in stdout


def test_chat_stream_example_records_the_streamed_usage(receiver: OTLPReceiver) -> None:
    # A server that, like OpenAI, streams usage only when asked: the example asks for it,
    # and its LLM span records the server's figures on both traceloop lines.
    with FakeLLMServer(stream_usage=False) as server:
        server.reply("Spans are chapters.", prompt_tokens=21, completion_tokens=3)
        _, spans = run_example(
            CASES["chat_stream"], receiver, TFY_GATEWAY_URL=server.base_url, TFY_API_KEY=KEY
        )
        assert server.chat_requests()[0].json["stream_options"] == {"include_usage": True}
    view = spans.llm(spans.llm_spans()[0])
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (21, 3, 24)
