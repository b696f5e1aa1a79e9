"""OpenAI Agents SDK: an agent with one tool, run once and once streamed, traced by ``init()``.

The model asks for the ``get_weather`` tool, the tool runs, the model answers. Needs
``openai-agents`` (see docs/frameworks/openai-agents.md). Offline by default, against a local
stand-in of OpenAI's Responses API (the SDK's default model API), printing each run's trace
tree to stderr; with ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway
through chat completions (model ``TFY_MODEL`` or ``openai-main/gpt-4o-mini``) and the traces go
to TrueFoundry. The SDK's own export of traces to api.openai.com is switched off by ``init()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from typing import Any

from agents import (
    Agent,
    Model,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
)
from openai import AsyncOpenAI

import truefoundry_tracing as tt


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny, 24 C in {city}"


def endpoint(stack: ExitStack) -> tuple[str, str, str, str]:
    """(base URL, API key, model, model API): the gateway when configured, else a stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model, "chat"
    from truefoundry_tracing.testing import FakeResponsesServer

    server = stack.enter_context(FakeResponsesServer())
    for _ in range(2):  # the plain run, then the streamed one
        server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        server.reply("It is sunny in Paris, 24 C.")
    return server.base_url, "offline-example", "gpt-4o-mini", "responses"


def make_app(
    base_url: str, api_key: str, model: str, api: str = "responses"
) -> Callable[[str, bool], Coroutine[Any, Any, str]]:
    """The app: ``await ask(question, stream)`` runs the agent and returns its answer."""

    async def ask(question: str, stream: bool = False) -> str:
        client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        llm: Model = (
            OpenAIResponsesModel(model, client)
            if api == "responses"
            else OpenAIChatCompletionsModel(model, client)
        )
        agent = Agent(
            name="Weather",
            instructions="Answer with the tool.",
            model=llm,
            tools=[get_weather],
            # streamed chat completions carry token counts only when asked for
            model_settings=ModelSettings(include_usage=True),
        )
        if not stream:
            return str((await Runner.run(agent, question)).final_output)
        run = Runner.run_streamed(agent, question)
        async for _event in run.stream_events():
            pass
        return str(run.final_output)

    return ask


def main() -> None:
    tt.init(app_name="openai-agents-example")
    with ExitStack() as stack:
        ask = make_app(*endpoint(stack))
        print(asyncio.run(ask("What is the weather in Paris?", False)))
        print(asyncio.run(ask("What is the weather in Paris?", True)))
    tt.flush()


if __name__ == "__main__":
    main()
