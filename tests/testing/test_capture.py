"""``capture_spans()`` without ``init()``: LLM calls are captured, nothing is sent anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from truefoundry_tracing.testing import OTLPReceiver

# In a fresh interpreter: instrumentation is process-wide, so in this process another test may
# already have instrumented openai.
NO_INIT = """
import json
import openai
import truefoundry_tracing as tt
from truefoundry_tracing import workflow
from truefoundry_tracing.testing import FakeLLMServer, capture_spans

with FakeLLMServer() as llm, capture_spans() as spans:
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)

    @workflow(name="ask")
    def ask() -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}]
        )
        return reply.choices[0].message.content or ""

    ask()
    client.embeddings.create(model="e", input="outside any workflow")
    out = {"tree": [s.name for s in spans]}
    if spans.llm_spans():
        chat_span = spans.one("openai.chat")
        chat = spans.llm(chat_span)
        out["llm_parent"] = spans.parent(chat_span).name
        out["model"], out["input_tokens"] = chat.model, chat.input_tokens
out["status"] = tt.status() is None
out["flushed"] = tt.flush(1)
print(json.dumps(out))
"""

AFTER_SHUTDOWN = """
import json
import openai
import truefoundry_tracing as tt
from truefoundry_tracing.testing import FakeLLMServer, capture_spans

with capture_spans():
    pass  # openai is imported: its instrumentation waits for the first client
tt.shutdown()  # cancels what still waits
with FakeLLMServer() as llm, capture_spans() as spans:
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
print(json.dumps({"names": [s.name for s in spans]}))
"""


def run(code: str, **env: str) -> dict[str, object]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_", "OTEL_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def test_llm_calls_are_captured_without_init_and_nothing_is_exported() -> None:
    with OTLPReceiver() as receiver:
        # A destination in the environment: capture_spans() alone must not send to it.
        out = run(NO_INIT, TFY_HOST=receiver.url, TFY_API_KEY="k" * 20)
        assert receiver.requests == []
    assert sorted(out["tree"]) == ["ask.workflow", "openai.chat", "openai.embeddings"]  # type: ignore[arg-type]
    assert out["llm_parent"] == "ask.workflow"
    assert (out["model"], out["input_tokens"]) == ("gpt-4o-mini", 3)
    assert out["status"] is True  # no init() happened
    # It instruments what init() would: here, as the environment says, not openai.
    assert run(NO_INIT, TFY_TRACING_INSTRUMENTS="anthropic")["tree"] == ["ask.workflow"]


def test_a_capture_after_shutdown_instruments_again() -> None:
    assert run(AFTER_SHUTDOWN)["names"] == ["openai.chat"]
