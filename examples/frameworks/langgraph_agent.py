"""LangGraph: a tool-calling agent graph inside a ``@workflow``, traced by ``init()``.

The graph has an ``agent`` node (a chat model with one tool bound) and a ``tools`` node; the
model asks for the tool, the tool runs, the model answers. Needs ``langgraph`` and
``langchain-openai`` (see docs/frameworks/langgraph.md). Offline by default against a local
OpenAI-compatible stand-in, printing the trace tree to stderr; with ``TFY_HOST`` and
``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL`` or
``openai-main/gpt-4o-mini``) and the trace goes to TrueFoundry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from typing import Annotated, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import truefoundry_tracing as tt
from truefoundry_tracing import workflow


@tool
def population(city: str) -> str:
    """The population of a city."""
    return {"paris": "2.1 million"}.get(city.lower(), "unknown")


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply(tool_calls=[{"name": "population", "arguments": {"city": "Paris"}}])
    server.reply("Paris has about 2.1 million inhabitants.")
    return server.base_url, "offline-example", "gpt-4o-mini"


def build_graph(llm: ChatOpenAI) -> CompiledStateGraph:  # type: ignore[type-arg]
    """agent -> (tools -> agent)* -> end."""
    model = llm.bind_tools([population])

    def agent(state: State) -> State:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([population]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str], str]:
    """The traced app: a workflow running the agent graph on one question."""
    graph = build_graph(ChatOpenAI(model=model, base_url=base_url, api_key=api_key, max_retries=0))

    @workflow(name="city_agent")
    def ask(question: str) -> str:
        result = graph.invoke({"messages": [HumanMessage(question)]})
        return str(result["messages"][-1].content)

    return ask


def main() -> None:
    tt.init(app_name="langgraph-example")
    with ExitStack() as stack:
        print(make_app(*endpoint(stack))("How many people live in Paris?"))
    tt.flush()


if __name__ == "__main__":
    main()
