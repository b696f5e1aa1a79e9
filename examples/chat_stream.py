"""A streamed chat completion through TrueFoundry's AI gateway, with request metadata.

The seed's first program, ported: the same request (system and user message, sampling
parameters, ``stream=True``), but the ``X-TFY-METADATA`` header is built by
``gateway_headers`` / ``gateway_metadata`` instead of hand-written JSON, and each request also
carries the trace id (``tfy_trace_id``) so the gateway's log of it can be found from the trace.

Offline (no ``TFY_GATEWAY_URL`` or ``TFY_HOST``): a local OpenAI-compatible stand-in answers and
the trace is printed to stderr. Live: set ``TFY_HOST`` (or ``TFY_GATEWAY_URL``) and
``TFY_API_KEY``; the model is ``TFY_MODEL`` or ``openai-main/gpt-4o``.

    python examples/chat_stream.py
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import openai

import truefoundry_tracing as tt
from truefoundry_tracing import gateway, workflow


def connect(stack: ExitStack) -> tuple[openai.OpenAI, str]:
    """The gateway when one is configured, else a local stand-in started for this run."""
    if os.environ.get("TFY_GATEWAY_URL") or os.environ.get("TFY_HOST"):
        client = stack.enter_context(gateway.openai_client())
        return client, os.environ.get("TFY_MODEL", "openai-main/gpt-4o")
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply("Traces are the story of a request; spans are its chapters.")
    client = stack.enter_context(gateway.openai_client(server.base_url, api_key="offline-demo"))
    return client, "gpt-4o"


def main() -> None:
    tt.init(app_name="openai-example")
    with ExitStack() as stack:
        client, model = connect(stack)

        @workflow(name="chat_stream")
        def chat(prompt: str) -> str:
            # Every gateway call in this block is tagged; the workflow span records the tags.
            with tt.gateway_metadata(feature="chat-stream", customer_id="demo-customer"):
                stream = client.chat.completions.create(
                    messages=[
                        {"role": "system", "content": "You are an AI bot."},
                        {"role": "user", "content": prompt},
                    ],
                    model=model,
                    stream=True,
                    # the last chunk carries the token usage, which the trace records
                    stream_options={"include_usage": True},
                    temperature=0.7,
                    max_tokens=256,
                    top_p=0.8,
                    frequency_penalty=0,
                    presence_penalty=0,
                    stop=["</s>"],
                    extra_headers=tt.gateway_headers(log_request=True),
                )
                parts = []
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content is not None:
                        parts.append(chunk.choices[0].delta.content)
                        print(chunk.choices[0].delta.content, end="", flush=True)
                print()
                return "".join(parts)

        chat("Explain traces and spans in one sentence.")
    tt.flush()


if __name__ == "__main__":
    main()
