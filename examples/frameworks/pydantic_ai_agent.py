"""Pydantic AI: an agent with one tool, run once and once streamed, traced by ``init()``.

The model asks for the ``get_weather`` tool, the tool runs, the model answers. Needs
``pydantic-ai`` (see docs/frameworks/pydantic-ai.md). Offline by default, against a local
stand-in of OpenAI's chat completions API, printing each run's trace tree to stderr; with
``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL`` or
``openai-main/gpt-4o-mini``) and the traces go to TrueFoundry. Each run is one trace: the
agent span, a tool span per tool call, and one LLM span per model call.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import ExitStack

from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import truefoundry_tracing as tt

QUESTION = "What is the weather in Paris?"


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        return (
            host.rstrip("/") + "/api/llm",
            key,
            os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini"),
        )
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    for _ in range(2):  # the plain run, then the streamed one
        server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        server.reply("It is sunny in Paris, 24 C.")
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_agent(model: Model) -> Agent[None, str]:
    """The agent: one tool, answers in a sentence."""
    agent = Agent(model, name="weather_agent", instructions="Answer with the tool.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny, 24 C in {city}"

    return agent


async def _streamed(agent: Agent[None, str], question: str, how: str) -> str:
    if how == "run":
        return (await agent.run(question)).output
    if how == "run_stream_events":
        output = ""
        async with agent.run_stream_events(question) as events:  # a background run
            async for event in events:
                output = getattr(getattr(event, "result", None), "output", output)
        return output
    async with agent.run_stream(question) as result:
        return "".join([delta async for delta in result.stream_text(delta=True)])


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str, str], str]:
    """The app: ``ask(question, how)`` runs the agent with ``agent.<how>`` (``run_sync``,
    ``run``, ``run_stream``, ``run_stream_sync`` or ``run_stream_events``) and returns its
    answer."""
    provider = OpenAIProvider(base_url=base_url, api_key=api_key)
    agent = make_agent(OpenAIChatModel(model, provider=provider))

    def ask(question: str, how: str = "run_sync") -> str:
        if how == "run_sync":
            return agent.run_sync(question).output
        if how == "run_stream_sync":
            return "".join(agent.run_stream_sync(question).stream_text(delta=True))
        return asyncio.run(_streamed(agent, question, how))

    return ask


def main() -> None:
    tt.init(app_name="pydantic-ai-example")
    with ExitStack() as stack:
        ask = make_app(*endpoint(stack))
        print(ask(QUESTION, "run_sync"))

        @tt.workflow(name="weather_assistant")
        def streamed(question: str) -> str:
            return ask(question, "run_stream")

        print(streamed(QUESTION))
    tt.flush()


if __name__ == "__main__":
    main()
