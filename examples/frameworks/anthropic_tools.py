"""Anthropic SDK: a tool-use loop and a streamed answer inside a ``@workflow``, traced by
``init()``.

Claude asks for the ``get_weather`` tool, the app runs it and sends the result back, Claude
answers; then one streamed call. Needs ``anthropic`` (see docs/frameworks/anthropic.md).
Offline by default against a local stand-in of Anthropic's Messages API, printing the trace
tree to stderr. Each call is one LLM span: ``init()`` keeps traceloop's and turns off the
SDK's own second span.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import anthropic

import truefoundry_tracing as tt
from truefoundry_tracing import tool, workflow

TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny, 24 C in {city}"


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): Anthropic when ANTHROPIC_API_KEY is set, else a stand-in."""
    key = os.environ.get("ANTHROPIC_API_KEY")
    if key:
        return (
            "https://api.anthropic.com",
            key,
            os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
        )
    from truefoundry_tracing.testing import FakeAnthropicServer

    server = stack.enter_context(FakeAnthropicServer())
    server.reply(
        tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    )
    server.reply("It is sunny in Paris, 24 C.")
    server.reply("Bring sunglasses.")
    return server.url, "offline-example", "claude-sonnet-4-5"


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str], tuple[str, str]]:
    """The traced app: a tool-use loop, then one streamed call; returns both answers."""
    client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0)

    @workflow(name="weather_assistant")
    def ask(question: str) -> tuple[str, str]:
        messages: list[Any] = [{"role": "user", "content": question}]
        while True:
            reply = client.messages.create(
                model=model, max_tokens=300, tools=TOOLS, messages=messages
            )
            calls = [b for b in reply.content if b.type == "tool_use"]
            if not calls:
                break
            messages.append({"role": "assistant", "content": reply.content})
            results = [
                {"type": "tool_result", "tool_use_id": c.id, "content": get_weather(**c.input)}
                for c in calls
            ]
            messages.append({"role": "user", "content": results})
        answer = "".join(b.text for b in reply.content if b.type == "text")
        with client.messages.stream(
            model=model,
            max_tokens=100,
            messages=[
                {"role": "user", "content": f"One tip for this weather: {json.dumps(answer)}"}
            ],
        ) as stream:
            tip = "".join(stream.text_stream)
        return answer, tip

    return ask


def main() -> None:
    tt.init(app_name="anthropic-example")
    with ExitStack() as stack:
        answer, tip = make_app(*endpoint(stack))("What is the weather in Paris?")
        print(answer)
        print(tip)
    tt.flush()


if __name__ == "__main__":
    main()
