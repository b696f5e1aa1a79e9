"""LangChain: a ``prompt | ChatOpenAI`` chain inside a ``@workflow``, traced by ``init()``.

Needs ``langchain-core`` and ``langchain-openai`` (see docs/frameworks/langchain.md). Offline
by default: the chain talks to a local OpenAI-compatible stand-in and the trace is printed as a
tree to stderr. With ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway
(``<TFY_HOST>/api/llm``, model ``TFY_MODEL`` or ``openai-main/gpt-4o-mini``) and the trace goes
to TrueFoundry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

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
    server.reply("The capital of France is Paris.")
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str], str]:
    """The traced app: a workflow running the chain once."""
    llm = ChatOpenAI(model=model, base_url=base_url, api_key=api_key, max_retries=0)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer in one sentence."), ("human", "What is the capital of {country}?")]
    )
    chain = prompt | llm

    @workflow(name="capital_question")
    def ask(country: str) -> str:
        return str(chain.invoke({"country": country}).content)

    return ask


def main() -> None:
    tt.init(app_name="langchain-example")
    with ExitStack() as stack:
        print(make_app(*endpoint(stack))("France"))
    tt.flush()


if __name__ == "__main__":
    main()
