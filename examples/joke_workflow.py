"""The seed's joke workflow: a ``@workflow`` calling three ``@task``s, each calling the LLM.

Every call goes through TrueFoundry's AI gateway client, tagged with the workflow's metadata
(``gateway_metadata``) plus the step it came from, and with the trace id, so the gateway's
request logs can be filtered by workflow and matched to this trace.

Offline (no ``TFY_GATEWAY_URL`` or ``TFY_HOST``): a local OpenAI-compatible stand-in answers and
the trace is printed to stderr. Live: set ``TFY_HOST`` (or ``TFY_GATEWAY_URL``) and
``TFY_API_KEY``; the model is ``TFY_MODEL`` or ``openai-main/gpt-4o-mini``.

    python examples/joke_workflow.py
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import openai

import truefoundry_tracing as tt
from truefoundry_tracing import gateway, task, workflow


def connect(stack: ExitStack) -> tuple[openai.OpenAI, str]:
    """The gateway when one is configured, else a local stand-in started for this run."""
    if os.environ.get("TFY_GATEWAY_URL") or os.environ.get("TFY_HOST"):
        client = stack.enter_context(gateway.openai_client())
        return client, os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply("Why did the span go to therapy? It had unresolved parent issues.")
    server.reply("Arr, why did the span see the ship's surgeon? Unresolved parent issues!")
    server.reply("-- Captain Trace, scourge of the seven services")
    client = stack.enter_context(gateway.openai_client(server.base_url, api_key="offline-demo"))
    return client, "gpt-4o-mini"


def main() -> None:
    tt.init(app_name="joke-workflow")
    with ExitStack() as stack:
        client, model = connect(stack)

        def ask(prompt: str) -> str:
            completion = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}]
            )
            return completion.choices[0].message.content or ""

        @task(name="joke_creation")
        def create_joke() -> str:
            with tt.gateway_metadata(step="joke_creation"):
                return ask("Tell me a joke about opentelemetry")

        @task(name="pirate_translation")
        def translate_joke_to_pirate(joke: str) -> str:
            with tt.gateway_metadata(step="pirate_translation"):
                return ask(f"Translate the below joke to pirate-like english:\n\n{joke}")

        @task(name="signature_generation")
        def generate_signature(joke: str) -> str:
            with tt.gateway_metadata(step="signature_generation"):
                return ask(f"Add a signature to the joke:\n\n{joke}")

        @workflow(name="pirate_joke_generator")
        def joke_workflow() -> str:
            with tt.gateway_metadata(workflow="pirate_joke_generator", customer_id="demo"):
                eng_joke = create_joke()
                pirate_joke = translate_joke_to_pirate(eng_joke)
                signature = generate_signature(pirate_joke)
                return pirate_joke + "\n\n" + signature

        print(joke_workflow())
    tt.flush()


if __name__ == "__main__":
    main()
