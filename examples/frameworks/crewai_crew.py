"""CrewAI: a one-agent crew with a tool, plain and streamed, traced by ``init()``.

Needs ``crewai`` (see docs/frameworks/crewai.md). Offline by default: the agent's model is a
local OpenAI-compatible stand-in (it asks for the ``get_weather`` tool, then answers) and the
trace is printed as a tree to stderr; ``init()`` switches CrewAI's own telemetry and
trace-sharing prompt off. With ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI
gateway (model ``TFY_MODEL`` or ``openai-main/gpt-4o-mini``) and the trace goes to TrueFoundry.
Pass ``--stream`` to run the crew with ``Crew(stream=True)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import ExitStack

# CrewAI sends anonymous usage telemetry to its own servers; init() turns it off.
from crewai import LLM, Agent, Crew, Task
from crewai.tools import tool

import truefoundry_tracing as tt
from truefoundry_tracing import workflow

ANSWER = "It is sunny in Paris, 24 C."


@tool("get_weather")
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny in {city}, 24 C."


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    server.reply(ANSWER)
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_crew(base_url: str, api_key: str, model: str, *, stream: bool = False) -> Crew:
    """A one-agent, one-task crew whose agent may call ``get_weather``."""
    # the "openai/" prefix picks CrewAI's OpenAI provider; the rest is sent as the model name
    llm = LLM(model=f"openai/{model}", base_url=base_url, api_key=api_key)
    forecaster = Agent(
        role="Forecaster",
        goal="Answer weather questions in one sentence.",
        backstory="You look the weather up before you answer.",
        llm=llm,
        tools=[get_weather],
        allow_delegation=False,
    )
    question = Task(
        description="What is the weather in Paris?",
        expected_output="One sentence with the weather.",
        agent=forecaster,
    )
    return Crew(agents=[forecaster], tasks=[question], stream=stream)


def kickoff(crew: Crew) -> str:
    """Run the crew; a streamed one is read to its end (its chunks are the answer's text)."""
    result = crew.kickoff()
    if crew.stream:
        for _chunk in result:  # each chunk: chunk.content, chunk.agent_role, ...
            pass
        result = result.result
    return str(result)


def make_app(base_url: str, api_key: str, model: str, *, stream: bool = False) -> Callable[[], str]:
    """The traced app: a workflow kicking off the crew."""
    crew = make_crew(base_url, api_key, model, stream=stream)

    @workflow(name="weather_crew")
    def run() -> str:
        return kickoff(crew)

    return run


def main() -> None:
    tt.init(app_name="crewai-example")
    with ExitStack() as stack:
        print(make_app(*endpoint(stack), stream="--stream" in sys.argv)())
    tt.flush()


if __name__ == "__main__":
    main()
