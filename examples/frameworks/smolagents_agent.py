"""smolagents: a ``ToolCallingAgent`` with one tool, run plainly and streamed, traced by
``init()``.

The model asks for the ``get_weather`` tool, the tool runs, the model calls ``final_answer``;
then the same question once more with ``run(stream=True)``, step by step. Each run is one
trace: ``ToolCallingAgent.agent`` > ``step_<n>.task`` > the model call and the tool calls.
Needs ``smolagents`` and ``openai`` (see docs/frameworks/smolagents.md). Offline by default
against a local OpenAI-compatible stand-in, printing the trace trees to stderr; with
``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL``
or ``openai-main/gpt-4o-mini``) and the traces go to TrueFoundry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

from smolagents import LogLevel, OpenAIServerModel, ToolCallingAgent, tool

import truefoundry_tracing as tt
from truefoundry_tracing import workflow


@tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city's name.
    """
    return f"Sunny, 24 C in {city}"


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    for _run in range(2):  # the plain run, then the streamed one
        server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        server.reply(tool_calls=[{"name": "final_answer", "arguments": {"answer": "Sunny, 24 C."}}])
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_agent(base_url: str, api_key: str, model: str) -> ToolCallingAgent:
    """A tool-calling agent with the weather tool, quiet on the console."""
    llm = OpenAIServerModel(
        model_id=model, api_base=base_url, api_key=api_key, client_kwargs={"max_retries": 0}
    )
    return ToolCallingAgent(tools=[get_weather], model=llm, verbosity_level=LogLevel.OFF)


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str], str]:
    """The traced app: a workflow running the agent on one question."""
    agent = make_agent(base_url, api_key, model)

    @workflow(name="weather_assistant")
    def ask(question: str) -> str:
        return str(agent.run(question))

    return ask


def main() -> None:
    tt.init(app_name="smolagents-example")
    with ExitStack() as stack:
        base_url, api_key, model = endpoint(stack)
        print(make_app(base_url, api_key, model)("What is the weather in Paris?"))
        # streamed: the steps arrive as they finish; the run is one trace all the same
        steps = make_agent(base_url, api_key, model).run("And now?", stream=True)
        print(getattr(list(steps)[-1], "output", None))
    tt.flush()


if __name__ == "__main__":
    main()
