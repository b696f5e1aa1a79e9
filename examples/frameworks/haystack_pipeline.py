"""Haystack (2.x or 3.x): a pipeline with a prompt builder and a chat generator, run once and
once streamed, and an ``Agent`` with a weather tool, traced by ``init()``.

Offline by default against a local OpenAI-compatible stand-in, printing each run's trace tree
to stderr; with ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model
``TFY_MODEL`` or ``openai-main/gpt-4o-mini``) and the traces go to TrueFoundry. ``init()``
switches Haystack's telemetry off. Every run is one trace with a span per component, agent
and tool call (and per agent step on Haystack 3; see docs/frameworks/haystack.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

from haystack import Pipeline
from haystack.components.agents import Agent
from haystack.components.builders import ChatPromptBuilder
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack.tools import Tool
from haystack.utils import Secret

import truefoundry_tracing as tt

ANSWER = "Paris is the capital of France."
WEATHER = "It is sunny in Paris, 24 C."


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply(ANSWER)
    server.reply(ANSWER)
    server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.reply(WEATHER)
    return server.base_url, "offline-example", "gpt-4o-mini"


def generator(base_url: str, api_key: str, model: str, stream: bool) -> OpenAIChatGenerator:
    """An OpenAI chat generator; a streamed one asks for token counts (else the API sends
    none with a stream, and the LLM span has none)."""
    return OpenAIChatGenerator(
        api_key=Secret.from_token(api_key),
        model=model,
        api_base_url=base_url,
        max_retries=0,
        generation_kwargs={"stream_options": {"include_usage": True}} if stream else None,
    )


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str, bool], str]:
    """The app: ``ask(country, stream)`` runs the pipeline and returns the reply."""

    def ask(country: str, stream: bool = False) -> str:
        chunks: list[str] = []

        def collect(chunk: StreamingChunk) -> None:
            chunks.append(chunk.content)

        llm = generator(base_url, api_key, model, stream)
        template = [ChatMessage.from_user("What is the capital of {{ country }}?")]
        pipe = Pipeline()
        pipe.add_component("prompt", ChatPromptBuilder(template, required_variables=["country"]))
        pipe.add_component("llm", llm)
        pipe.connect("prompt.prompt", "llm.messages")
        data = {"prompt": {"country": country}}
        if stream:
            data["llm"] = {"streaming_callback": collect}
        result = pipe.run(data)
        text = result["llm"]["replies"][0].text or ""
        assert not stream or "".join(chunks) == text
        return text

    return ask


def get_weather(city: str) -> str:
    """The agent's tool: the weather in a city."""
    return f"Sunny, 24 C in {city}"


WEATHER_TOOL = Tool(
    name="get_weather",
    description="The current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    function=get_weather,
)


def make_agent(base_url: str, api_key: str, model: str) -> Callable[[str, bool], str]:
    """The agent app: ``weather(question, stream)`` runs an ``Agent`` with the weather tool
    and returns its answer."""

    def weather(question: str, stream: bool = False) -> str:
        chunks: list[str] = []

        def collect(chunk: StreamingChunk) -> None:
            chunks.append(chunk.content)

        agent = Agent(
            chat_generator=generator(base_url, api_key, model, stream), tools=[WEATHER_TOOL]
        )
        result = agent.run(
            messages=[ChatMessage.from_user(question)],
            streaming_callback=collect if stream else None,
        )
        text = result["last_message"].text or ""
        assert not stream or text in "".join(chunks)
        return text

    return weather


def main() -> None:
    tt.init(app_name="haystack-example")
    with ExitStack() as stack:
        where = endpoint(stack)
        ask = make_app(*where)
        print(ask("France", False))
        print(ask("France", True))
        print(make_agent(*where)("What is the weather in Paris?", False))
    tt.flush()


if __name__ == "__main__":
    main()
