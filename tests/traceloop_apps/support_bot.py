"""An app written for traceloop-sdk, run by tests/test_traceloop_dropin.py in a child process.

``TRACING=traceloop`` starts it with ``Traceloop.init``; ``TRACING=tfy`` with
``truefoundry_tracing.init``: the one line a user changes. Everything else is traceloop's API,
except with ``TRACING=tfy-mixed``, where ``@task`` and ``@agent`` come from this library.
It prints the finished spans as JSON, one object per span, on its last line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
mode = os.environ["TRACING"]
if mode == "traceloop":
    from traceloop.sdk import Traceloop
    from traceloop.sdk.instruments import Instruments

    Traceloop.init(
        app_name="support-bot",
        exporter=exporter,
        disable_batch=True,
        telemetry_enabled=False,
        instruments={Instruments.OPENAI},
    )
else:
    import truefoundry_tracing

    truefoundry_tracing.init(
        app_name="support-bot", exporter=exporter, disable_batch=True, instruments=["openai"]
    )

import openai  # noqa: E402
from traceloop.sdk import Traceloop  # noqa: E402
from traceloop.sdk.decorators import agent, task, tool, workflow  # noqa: E402
from traceloop.sdk.tracing.manual import LLMMessage, track_llm_call  # noqa: E402

try:
    from traceloop.sdk.tracing.manual import LLMUsage
except ImportError:  # traceloop-sdk 0.38.12
    LLMUsage = None  # type: ignore[assignment,misc]

if mode == "tfy-mixed":  # half the app moved to this library's decorators
    from truefoundry_tracing import agent, task  # type: ignore[assignment]

client = openai.OpenAI(base_url=os.environ["LLM_URL"], api_key="sk-test", max_retries=0)


@dataclasses.dataclass
class Ticket:
    id: int
    text: str


class Store:
    """An object with no JSON form: recorded by its class name."""


@task(name="retrieve")
def retrieve(ticket: Ticket, store: Store) -> list[str]:
    return [f"kb/{ticket.id}.md"]


@tool(name="word_count")
def word_count(text: str) -> int:
    return len(text.split())


@agent(name="critic")
def critic(text: str) -> str:
    return f"{word_count(text)} words"


@task(name="draft")
def draft(ticket: Ticket) -> str:
    Traceloop.set_prompt("Answer: {question}", {"question": ticket.text}, 3)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": ticket.text}]
    )
    return reply.choices[0].message.content or ""


@task(name="manual_llm")
def manual_llm(question: str) -> str:
    with track_llm_call(vendor="acme", type="chat") as span:
        span.report_request(model="acme-1", messages=[LLMMessage(role="user", content=question)])
        span.report_response("acme-1", ["forty-two"])
        if hasattr(span, "report_usage"):  # traceloop-sdk 0.62; 0.38.12 has no usage report
            span.report_usage(LLMUsage(prompt_tokens=3, completion_tokens=1, total_tokens=4))
    return "forty-two"


@workflow(name="answer_ticket")
def answer_ticket(ticket: Ticket) -> dict[str, object]:
    Traceloop.set_association_properties({"user_id": "u-42", "session_id": "s-1"})
    docs = retrieve(ticket, Store())
    text = draft(ticket)
    return {"docs": docs, "text": text, "review": critic(text), "manual": manual_llm("6x7?")}


@task(name="async_step")
async def async_step(n: int) -> int:
    await asyncio.sleep(0)
    return n + 1


@workflow(name="async_flow")
async def async_flow() -> int:
    return await async_step(1)


answer_ticket(Ticket(7, "How do I reset my password?"))
asyncio.run(async_flow())

KEEP = (
    "traceloop.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "gen_ai.request.model",
    "gen_ai.conversation.id",
    "gen_ai.tool.name",
    "llm.request.type",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "llm.usage.total_tokens",
)
by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
out = []
for s in exporter.get_finished_spans():
    parent = by_id.get(s.parent.span_id) if s.parent else None
    attrs = {k: v for k, v in s.attributes.items() if k.startswith(KEEP)}
    out.append(
        {
            "name": s.name,
            "parent": parent.name if parent else None,
            "trace": format(s.context.trace_id, "032x"),
            "status": s.status.status_code.name,
            "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()},
        }
    )
sys.stdout.flush()
print(json.dumps(out))
