"""The seed's agent with tools: an ``@agent`` that lets the model call a ``@tool``.

The agent asks the model to translate a joke into pirate English, offering it the
``history_jokes`` tool; the tool itself asks the model for a few history jokes; the agent sends
the tool's answer back and gets the translation. Every call goes through TrueFoundry's AI
gateway client, tagged with the agent's metadata and the trace id.

Offline (no ``TFY_GATEWAY_URL`` or ``TFY_HOST``): a local OpenAI-compatible stand-in answers and
the trace is printed to stderr. Live: set ``TFY_HOST`` (or ``TFY_GATEWAY_URL``) and
``TFY_API_KEY``; the model is ``TFY_MODEL`` or ``openai-main/gpt-4o-mini``.

    python examples/agent_tools.py
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from typing import Any

import openai

import truefoundry_tracing as tt
from truefoundry_tracing import agent, gateway, tool

JOKE = "Why do programmers prefer dark mode? Because light attracts bugs."
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "history_jokes",
            "description": "Get a few jokes from history on a topic, for inspiration.",
            "parameters": {
                "type": "object",
                "properties": {"topic": {"type": "string"}},
                "required": ["topic"],
            },
        },
    }
]


def connect(stack: ExitStack) -> tuple[openai.OpenAI, str]:
    """The gateway when one is configured, else a local stand-in started for this run."""
    if os.environ.get("TFY_GATEWAY_URL") or os.environ.get("TFY_HOST"):
        client = stack.enter_context(gateway.openai_client())
        return client, os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply(tool_calls=[{"name": "history_jokes", "arguments": {"topic": "pirates"}}])
    server.reply("Why couldn't the pirate play cards? He was standing on the deck.")
    server.reply("Why do coders fancy the dark seas, matey? The light be drawin' bugs!")
    client = stack.enter_context(gateway.openai_client(server.base_url, api_key="offline-demo"))
    return client, "gpt-4o-mini"


def main() -> None:
    tt.init(app_name="agent-tools")
    with ExitStack() as stack:
        client, model = connect(stack)

        @tool(name="history_jokes")
        def history_jokes(topic: str) -> str:
            completion = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": f"Get some history jokes about {topic}."}],
            )
            return completion.choices[0].message.content or ""

        @agent(name="joke_translation")
        def translate_joke_to_pirate(joke: str) -> str:
            with tt.gateway_metadata(agent="joke_translation", customer_id="demo"):
                messages: list[Any] = [
                    {
                        "role": "user",
                        "content": "Translate the below joke to pirate-like english; look at "
                        f"some history jokes first for inspiration.\n\n{joke}",
                    }
                ]
                first = (
                    client.chat.completions.create(
                        model=model,
                        messages=messages,
                        tools=TOOLS,
                        tool_choice={"type": "function", "function": {"name": "history_jokes"}},
                    )
                    .choices[0]
                    .message
                )
                messages.append(first.model_dump(exclude_none=True))
                for call in first.tool_calls or []:
                    arguments = json.loads(call.function.arguments or "{}")
                    result = history_jokes(**arguments)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
                final = client.chat.completions.create(model=model, messages=messages)
                return final.choices[0].message.content or ""

        print(translate_joke_to_pirate(JOKE))
    tt.flush()


if __name__ == "__main__":
    main()
