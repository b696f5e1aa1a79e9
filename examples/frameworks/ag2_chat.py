"""AG2: an agent with one tool, asked once and once run with its answer streamed, traced by
``init()``.

The model asks for the ``get_weather`` tool, the tool runs, the model answers. Needs ``ag2``
and ``openai`` (see docs/frameworks/ag2.md). Offline by default, against a local
OpenAI-compatible stand-in, printing each turn's trace tree to stderr: one agent span, the
tool span with its arguments and result, and one LLM span per model call. With ``TFY_HOST``
and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL`` or
``openai-main/gpt-4o-mini``) and the traces go to TrueFoundry.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from typing import Any

from ag2 import Agent, tool
from ag2.config.openai import OpenAIConfig
from ag2.events import ModelMessageChunk

import truefoundry_tracing as tt


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny, 24 C in {city}"


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    for _ in range(2):  # the plain turn, then the streamed one
        server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        server.reply("It is sunny in Paris, 24 C.")
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_app(
    base_url: str, api_key: str, model: str
) -> Callable[[str, bool], Coroutine[Any, Any, str]]:
    """The app: ``await ask(question, stream)`` runs one turn and returns the answer; streamed,
    the answer is put together from the chunks as they arrive."""

    async def ask(question: str, stream: bool = False) -> str:
        # streaming=True streams the model's answers (and asks for their token counts)
        config = OpenAIConfig(
            model=model, base_url=base_url, api_key=api_key, max_retries=0, streaming=stream
        )
        agent = Agent("weather", prompt="Answer with the tool.", config=config, tools=[get_weather])
        if not stream:
            return str((await agent.ask(question)).body)
        chunks: list[str] = []

        async def on_chunk(event: ModelMessageChunk) -> None:
            chunks.append(event.content)

        async with agent.run(question) as run:
            with run.stream.where(ModelMessageChunk).sub_scope(on_chunk):
                await run.result()
        return "".join(chunks)

    return ask


def main() -> None:
    tt.init(app_name="ag2-example")
    with ExitStack() as stack:
        ask = make_app(*endpoint(stack))
        print(asyncio.run(ask("What is the weather in Paris?", False)))
        print(asyncio.run(ask("What is the weather in Paris?", True)))
    tt.flush()


if __name__ == "__main__":
    main()
