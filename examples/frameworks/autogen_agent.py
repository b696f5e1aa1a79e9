"""AutoGen: an ``AssistantAgent`` with one tool, run once and once streamed, traced by ``init()``.

The model asks for the ``get_weather`` tool, the tool runs, the model answers. Needs
``autogen-agentchat`` and ``autogen-ext[openai]`` (see docs/frameworks/autogen.md). Offline by
default, against a local OpenAI-compatible stand-in, printing each run's trace tree to stderr:
one agent span, the tool span with its arguments and result, and one LLM span per model call.
With ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model
``TFY_MODEL`` or ``openai-main/gpt-4o-mini``) and the traces go to TrueFoundry.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core.models import ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient

import truefoundry_tracing as tt

# AutoGen compares the answering model's name with its own table of dated OpenAI names; a
# gateway or the local stand-in answers with the name it was asked for.
warnings.filterwarnings("ignore", message="Resolved model mismatch")


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


def make_app(
    base_url: str, api_key: str, model: str
) -> Callable[[str, bool], Coroutine[Any, Any, str]]:
    """The app: ``await ask(question, stream)`` runs the agent and returns its answer."""

    async def ask(question: str, stream: bool = False) -> str:
        client = OpenAIChatCompletionClient(
            model=model,
            base_url=base_url,
            api_key=api_key,
            max_retries=0,
            # a model name AutoGen does not know (a gateway's) needs its capabilities
            model_info=ModelInfo(
                vision=False,
                function_calling=True,
                json_output=False,
                family="unknown",
                structured_output=False,
            ),
            # streamed answers carry token counts only when asked for
            stream_options={"include_usage": True},
        )
        agent = AssistantAgent(
            "weather",
            model_client=client,
            tools=[get_weather],
            system_message="Answer with the tool.",
            reflect_on_tool_use=True,  # the tool's result goes back to the model
            model_client_stream=stream,
        )
        try:
            if not stream:
                result = await agent.run(task=question)
            else:
                items = [item async for item in agent.run_stream(task=question)]
                result = items[-1]  # events and messages, then the TaskResult
            return str(result.messages[-1].to_text())  # type: ignore[union-attr]
        finally:
            await client.close()

    return ask


def main() -> None:
    tt.init(app_name="autogen-example")
    with ExitStack() as stack:
        ask = make_app(*endpoint(stack))
        print(asyncio.run(ask("What is the weather in Paris?", False)))
        print(asyncio.run(ask("What is the weather in Paris?", True)))
    tt.flush()


if __name__ == "__main__":
    main()
