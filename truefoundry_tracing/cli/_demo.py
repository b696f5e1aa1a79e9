"""``truefoundry-tracing demo``: a small traced LLM app, runnable right after ``pip install``.

A workflow with two tasks, an agent and a tool, calling an OpenAI-compatible chat endpoint
through the real ``openai`` client. With no TrueFoundry settings it starts the project's local
stand-in (:class:`~truefoundry_tracing.testing.FakeLLMServer`), so it works offline, and
``init()`` prints the trace tree to stderr. With ``TFY_HOST`` and ``TFY_API_KEY`` set it calls
TrueFoundry's AI gateway (``<TFY_HOST>/api/llm``, model ``TFY_MODEL`` or
``openai-main/gpt-4o-mini``) and sends the trace to TrueFoundry; with ``TFY_HOST`` alone
(a local ``truefoundry-tracing serve``) it traces there and still uses the stand-in.

``examples/quickstart.py`` in the repository runs this same program::

    pip install 'truefoundry-tracing[openai]'
    truefoundry-tracing demo          # or: python -m truefoundry_tracing demo
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO, Any

INSTALL_HINT = (
    "The demo calls an OpenAI-compatible endpoint through the openai client, which is not "
    "installed in this environment. Install it with: pip install 'truefoundry-tracing[openai]' "
    "(or uv pip install 'truefoundry-tracing[openai]'), then run truefoundry-tracing demo again.\n"
)

# What the offline stand-in answers, in call order.
_REPLIES = (
    "Why did the span cross the trace? To reach its parent.",
    "Arr, why did the span cross the trace? To reach its parent, matey!",
)


def _client(openai: Any, stack: ExitStack) -> tuple[Any, str]:
    """A real OpenAI client: to the gateway when configured, else to the local stand-in."""
    host = os.environ.get("TFY_HOST")
    key = os.environ.get("TFY_API_KEY")
    if host and key:
        base_url = host.rstrip("/") + "/api/llm"
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return openai.OpenAI(base_url=base_url, api_key=key), model
    from ..testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    for text in _REPLIES:
        server.reply(text)
    server.reply(tool_calls=[{"name": "word_count", "arguments": {"text": "ahoy"}}])
    server.reply("The joke has 12 words.")
    return openai.OpenAI(base_url=server.base_url, api_key="offline-demo"), "gpt-4o-mini"


def _app(client: Any, model: str) -> Callable[[], str]:
    """The traced program: a workflow of two tasks and an agent that uses a tool."""
    from .. import agent, task, tool, workflow

    def chat(prompt: str) -> Any:
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
        for _call in first.tool_calls or []:
            word_count(joke)
        return chat("Summarize the word count.").choices[0].message.content or ""

    @workflow(name="pirate_joke_generator")
    def joke_workflow() -> str:
        joke = translate(create_joke())
        return f"{joke}\n(critic: {critic(joke)})"

    return joke_workflow


def run_demo(out: IO[str]) -> int:
    """Run the traced demo; print its answer to ``out``; return the exit code.

    Returns 1, after saying how to install it, when the ``openai`` client is missing.
    """
    try:
        import openai
    except ImportError:
        out.write(INSTALL_HINT)
        return 1
    import truefoundry_tracing as tt

    tt.init(app_name="quickstart")
    with ExitStack() as stack:
        client, model = _client(openai, stack)
        out.write(_app(client, model)() + "\n")
        out.flush()
    tt.flush()
    return 0
