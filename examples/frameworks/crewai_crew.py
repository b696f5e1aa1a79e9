"""CrewAI: a one-agent, one-task crew inside a ``@workflow``, traced by ``init()``.

Needs ``crewai`` (see docs/frameworks/crewai.md). Offline by default: the agent's model is a
local OpenAI-compatible stand-in and the trace is printed as a tree to stderr; ``init()``
switches CrewAI's own telemetry and trace-sharing prompt off. With ``TFY_HOST`` and
``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL`` or
``openai-main/gpt-4o-mini``) and the trace goes to TrueFoundry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

# CrewAI sends anonymous usage telemetry to its own servers; init() turns it off.
from crewai import LLM, Agent, Crew, Task

import truefoundry_tracing as tt
from truefoundry_tracing import workflow


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply("Thought: I know this one.\nFinal Answer: Paris is the capital of France.")
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_app(base_url: str, api_key: str, model: str) -> Callable[[], str]:
    """The traced app: a workflow kicking off a one-agent, one-task crew."""
    # the "openai/" prefix picks CrewAI's OpenAI provider; the rest is sent as the model name
    llm = LLM(model=f"openai/{model}", base_url=base_url, api_key=api_key)
    geographer = Agent(
        role="Geographer",
        goal="Answer geography questions in one sentence.",
        backstory="You know every capital city.",
        llm=llm,
        allow_delegation=False,
    )
    question = Task(
        description="What is the capital of France?",
        expected_output="One sentence naming the city.",
        agent=geographer,
    )
    crew = Crew(agents=[geographer], tasks=[question])

    @workflow(name="geography_crew")
    def run() -> str:
        return str(crew.kickoff())

    return run


def main() -> None:
    tt.init(app_name="crewai-example")
    with ExitStack() as stack:
        print(make_app(*endpoint(stack))())
    tt.flush()


if __name__ == "__main__":
    main()
