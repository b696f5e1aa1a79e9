"""Quickstart: a small traced LLM app (a workflow with tasks, an agent and a tool).

Run it with ``bash scripts/demo``. With no TrueFoundry settings it starts a local
OpenAI-compatible stand-in, so it works offline, and prints its trace tree to stderr. With
``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway
(``<TFY_HOST>/api/llm``, model ``TFY_MODEL`` or ``openai-main/gpt-4o-mini``) and sends the
trace to TrueFoundry.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import openai

import truefoundry_tracing as tt
from truefoundry_tracing import agent, task, tool, workflow


def make_client(stack: ExitStack) -> tuple[openai.OpenAI, str]:
    """A real OpenAI client: to the gateway when configured, else to the local stand-in."""
    host = os.environ.get("TFY_HOST")
    key = os.environ.get("TFY_API_KEY")
    if host and key:
        base_url = host.rstrip("/") + "/api/llm"
        return openai.OpenAI(base_url=base_url, api_key=key), os.environ.get(
            "TFY_MODEL", "openai-main/gpt-4o-mini"
        )
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply("Why did the span cross the trace? To reach its parent.")
    server.reply("Arr, why did the span cross the trace? To reach its parent, matey!")
    server.reply(tool_calls=[{"name": "word_count", "arguments": {"text": "ahoy"}}])
    server.reply("The joke has 12 words.")
    return openai.OpenAI(base_url=server.base_url, api_key="offline-demo"), "gpt-4o-mini"


def main() -> None:
    tt.init(app_name="quickstart")
    with ExitStack() as stack:
        client, model = make_client(stack)

        def chat(prompt: str) -> openai.types.chat.ChatCompletion:
            return client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}]
            )

        @task(name="create_joke")
        def create_joke() -> str:
            return chat("Tell me a joke about OpenTelemetry").choices[0].message.content or ""

        @task(name="pirate_translation")
        def translate(joke: str) -> str:
            reply = chat(f"Translate this joke to pirate English:\n\n{joke}")
            return reply.choices[0].message.content or ""

        @tool(name="word_count")
        def word_count(text: str) -> int:
            return len(text.split())

        @agent(name="joke_critic")
        def critic(joke: str) -> str:
            first = chat(f"Use a tool to count the words of: {joke}").choices[0].message
            for call in first.tool_calls or []:
                word_count(joke)
                del call
            return chat("Summarize the word count.").choices[0].message.content or ""

        @workflow(name="pirate_joke_generator")
        def joke_workflow() -> str:
            joke = translate(create_joke())
            return f"{joke}\n(critic: {critic(joke)})"

        print(joke_workflow())
    tt.flush()


if __name__ == "__main__":
    main()
