"""LlamaIndex: a ``FunctionAgent`` with one tool, run plainly or streamed, traced by ``init()``.

Needs ``llama-index-core`` and ``llama-index-llms-openai`` (see docs/frameworks/llamaindex.md).
Offline by default: the model is a local OpenAI-compatible stand-in (it asks for the
``get_weather`` tool, then answers) and the trace is printed as a tree to stderr. With
``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL``
or ``gpt-4o-mini``) and the trace goes to TrueFoundry. Pass ``--stream`` to read the agent's
events as they come.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.llms.openai import OpenAI

import truefoundry_tracing as tt
from truefoundry_tracing import workflow

ANSWER = "It is sunny in Paris, 24 C."


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny in {city}, 24 C."


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        return host.rstrip("/") + "/api/llm", key, os.environ.get("TFY_MODEL", "gpt-4o-mini")
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.reply(ANSWER)
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_agent(base_url: str, api_key: str, model: str) -> FunctionAgent:
    """An agent that may call ``get_weather``.

    llama-index's OpenAI class streams every agent step; the ``stream_options`` ask the API for
    the token usage of each stream, which is what the trace records as the call's tokens.
    """
    llm = OpenAI(
        model=model,
        api_base=base_url,
        api_key=api_key,
        max_retries=0,
        additional_kwargs={"stream_options": {"include_usage": True}},
    )
    return FunctionAgent(
        tools=[get_weather], llm=llm, system_prompt="Look the weather up, then answer."
    )


async def ask(agent: FunctionAgent, question: str, *, stream: bool = False) -> str:
    """Run the agent; with ``stream`` its events (text deltas, tool calls) are read as they come."""
    handler = agent.run(question)
    if stream:
        async for _event in handler.stream_events():  # AgentStream, ToolCallResult, ...
            pass
    return str(await handler)


def make_app(
    base_url: str, api_key: str, model: str, *, stream: bool = False
) -> Callable[[str], Awaitable[str]]:
    """The traced app: a workflow running the agent on one question."""
    agent = make_agent(base_url, api_key, model)

    @workflow(name="weather_agent")
    async def run(question: str) -> str:
        return await ask(agent, question, stream=stream)

    return run


def main() -> None:
    tt.init(app_name="llamaindex-agent-example")
    with ExitStack() as stack:
        app = make_app(*endpoint(stack), stream="--stream" in sys.argv)
        print(asyncio.run(app("What is the weather in Paris?")))
    tt.flush()


if __name__ == "__main__":
    main()
