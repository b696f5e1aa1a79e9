"""Haystack 2: a pipeline with a prompt builder and a chat generator, traced by ``init()``,
run once and once streamed.

Needs ``haystack-ai<3`` (see docs/frameworks/haystack.md). Offline by default against a
local OpenAI-compatible stand-in, printing each run's trace tree to stderr; with ``TFY_HOST``
and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL`` or
``openai-main/gpt-4o-mini``) and the traces go to TrueFoundry. ``init()`` switches Haystack's
telemetry off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack.utils import Secret

import truefoundry_tracing as tt


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply("Paris is the capital of France.")
    server.reply("Paris is the capital of France.")
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str, bool], str]:
    """The app: ``ask(country, stream)`` runs the pipeline and returns the reply."""

    def ask(country: str, stream: bool = False) -> str:
        chunks: list[str] = []

        def collect(chunk: StreamingChunk) -> None:
            chunks.append(chunk.content)

        llm = OpenAIChatGenerator(
            api_key=Secret.from_token(api_key),
            model=model,
            api_base_url=base_url,
            max_retries=0,
            streaming_callback=collect if stream else None,
            # without it the API sends no token counts with a stream, and the span has none
            generation_kwargs={"stream_options": {"include_usage": True}} if stream else None,
        )
        template = [ChatMessage.from_user("What is the capital of {{ country }}?")]
        pipe = Pipeline()
        pipe.add_component("prompt", ChatPromptBuilder(template, required_variables=["country"]))
        pipe.add_component("llm", llm)
        pipe.connect("prompt.prompt", "llm.messages")
        result = pipe.run({"prompt": {"country": country}})
        text = result["llm"]["replies"][0].text or ""
        assert not stream or "".join(chunks) == text
        return text

    return ask


def main() -> None:
    tt.init(app_name="haystack-example")
    with ExitStack() as stack:
        ask = make_app(*endpoint(stack))
        print(ask("France", False))
        print(ask("France", True))
    tt.flush()


if __name__ == "__main__":
    main()
