"""Google GenAI: automatic function calling and a streamed answer inside a ``@workflow``,
traced by ``init()``.

The SDK calls Gemini, runs the Python function ``get_weather`` Gemini asks for, sends the result
back and returns Gemini's answer (automatic function calling); then one streamed call. Needs
``google-genai`` (see docs/frameworks/google-genai.md). Offline by default against a local
stand-in of the Gemini API, printing the trace tree to stderr: each model call is its own LLM
span, under an ``automatic_function_calling`` agent span with a tool span for the function.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

from google import genai
from google.genai import types

import truefoundry_tracing as tt
from truefoundry_tracing import workflow


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny, 24 C in {city}"


def endpoint(stack: ExitStack) -> tuple[str | None, str, str]:
    """(base URL, API key, model): Gemini when GEMINI_API_KEY is set, else a local stand-in."""
    key = os.environ.get("GEMINI_API_KEY")
    if key:
        return None, key, os.environ.get("GEMINI_MODEL", "gemini-2.5-flash")
    from truefoundry_tracing.testing import FakeGeminiServer

    server = stack.enter_context(FakeGeminiServer())
    server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.reply("It is sunny in Paris, 24 C.")
    server.reply("Bring sunglasses.")
    return server.url, "offline-example", "gemini-2.5-flash"


def make_client(base_url: str | None, api_key: str) -> genai.Client:
    """A client for Gemini, or for the stand-in at ``base_url``."""
    options = types.HttpOptions(base_url=base_url) if base_url else None
    return genai.Client(api_key=api_key, http_options=options)


def make_app(base_url: str | None, api_key: str, model: str) -> Callable[[str], tuple[str, str]]:
    """The traced app: a chat turn that calls ``get_weather``, then one streamed call."""
    client = make_client(base_url, api_key)

    @workflow(name="weather_assistant")
    def ask(question: str) -> tuple[str, str]:
        chat = client.chats.create(
            model=model, config=types.GenerateContentConfig(tools=[get_weather])
        )
        answer = chat.send_message(question).text or ""
        tip = "".join(
            chunk.text or ""
            for chunk in client.models.generate_content_stream(
                model=model, contents=f"One tip for this weather: {answer}"
            )
        )
        return answer, tip

    return ask


def main() -> None:
    tt.init(app_name="google-genai-example")
    with ExitStack() as stack:
        answer, tip = make_app(*endpoint(stack))("What is the weather in Paris?")
        print(answer)
        print(tip)
    tt.flush()


if __name__ == "__main__":
    main()
