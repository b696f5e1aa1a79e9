"""Agno: an agent with one tool, run once and once streamed, traced by ``init()``.

The model asks for the ``get_weather`` tool, the tool runs, the model answers. Needs ``agno``
and ``openai`` (see docs/frameworks/agno.md). Offline by default: the agent's model is a local
OpenAI-compatible stand-in and each run's trace is printed as a tree to stderr; ``init()``
switches Agno's own telemetry off. With ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls
TrueFoundry's AI gateway (model ``TFY_MODEL`` or ``openai-main/gpt-4o-mini``) and the traces go
to TrueFoundry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import truefoundry_tracing as tt


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
    for _ in range(2):  # the plain run, then the streamed one
        server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        server.reply("It is sunny in Paris, 24 C.")
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_agent(base_url: str, api_key: str, model: str) -> Any:
    """The agent: an OpenAI chat model (any OpenAI-compatible endpoint) and one tool."""
    # imported here, after init(): Agno's telemetry is off before Agno is first used
    from agno.agent import Agent
    from agno.models.openai import OpenAIChat

    return Agent(
        name="Weather",
        model=OpenAIChat(id=model, base_url=base_url, api_key=api_key, max_retries=0),
        tools=[get_weather],
        instructions="Answer with the tool.",
    )


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str, bool], str]:
    """The app: ``ask(question, stream)`` runs the agent and returns its answer."""
    from agno.run.agent import RunContentEvent

    agent = make_agent(base_url, api_key, model)

    def ask(question: str, stream: bool = False) -> str:
        if not stream:
            return str(agent.run(question).content)
        return "".join(
            str(event.content or "")
            for event in agent.run(question, stream=True)
            if isinstance(event, RunContentEvent)
        )

    return ask


def main() -> None:
    tt.init(app_name="agno-example")
    with ExitStack() as stack:
        ask = make_app(*endpoint(stack))
        print(ask("What is the weather in Paris?", False))
        print(ask("What is the weather in Paris?", True))
    tt.flush()


if __name__ == "__main__":
    main()
