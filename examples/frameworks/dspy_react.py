"""DSPy: a ``ReAct`` agent with one tool inside a ``@workflow``, then a streamed answer,
traced by ``init()``.

The agent asks for the ``get_weather`` tool, then ``finish``, then extracts the answer; then
``dspy.streamify`` streams one more answer. DSPy's default engine is used: ``init()``'s DSPy
instrumentation records each model call (``dspy.chat``) under the module that made it, and a
span per module and per tool call. Needs ``dspy`` (see docs/frameworks/dspy.md). Offline by
default against a local OpenAI-compatible stand-in, printing the trace trees to stderr; with
``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway (model ``TFY_MODEL``
or ``openai-main/gpt-4o-mini``) and the traces go to TrueFoundry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

import dspy

import truefoundry_tracing as tt
from truefoundry_tracing import workflow

ANSWER = "Sunny, 24 C."


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny, 24 C in {city}"


def fields(**values: str) -> str:
    """A model answer in DSPy's chat format (what a real model writes)."""
    parts = [f"[[ ## {name} ## ]]\n{value}\n" for name, value in values.items()]
    return "\n".join([*parts, "[[ ## completed ## ]]"])


def endpoint(stack: ExitStack) -> tuple[str, str, str]:
    """(base URL, API key, model): the gateway when configured, else a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        model = os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini")
        return host.rstrip("/") + "/api/llm", key, model
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    think = {"next_thought": "Look it up.", "next_tool_name": "get_weather"}
    server.reply(fields(**think, next_tool_args='{"city": "Paris"}'))
    server.reply(fields(next_thought="Done.", next_tool_name="finish", next_tool_args="{}"))
    server.reply(fields(reasoning="The tool says sunny.", answer=ANSWER))
    server.reply(fields(answer="Bring sunglasses."))
    return server.base_url, "offline-example", "gpt-4o-mini"


def make_lm(base_url: str, api_key: str, model: str) -> dspy.LM:
    """DSPy's model on its default engine, no cache (every call reaches the model)."""
    return dspy.LM(f"openai/{model}", api_base=base_url, api_key=api_key, cache=False)


def make_app(base_url: str, api_key: str, model: str) -> Callable[[str], str]:
    """The traced app: a workflow running a ReAct agent on one question."""
    lm = make_lm(base_url, api_key, model)
    agent = dspy.ReAct("question -> answer", tools=[get_weather], max_iters=4)

    @workflow(name="weather_assistant")
    def ask(question: str) -> str:
        with dspy.context(lm=lm):
            return str(agent(question=question).answer)

    return ask


def stream_tip(lm: dspy.LM, question: str) -> str:
    """One streamed answer: ``dspy.streamify`` yields chunks, then the prediction."""
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    program = dspy.streamify(
        dspy.Predict("question -> answer"), stream_listeners=[listener], async_streaming=False
    )
    with dspy.context(lm=lm):
        *_chunks, prediction = program(question=question)
    return str(prediction.answer)


def main() -> None:
    tt.init(app_name="dspy-example")
    with ExitStack() as stack:
        base_url, api_key, model = endpoint(stack)
        print(make_app(base_url, api_key, model)("What is the weather in Paris?"))
        print(stream_tip(make_lm(base_url, api_key, model), "One tip for sunny weather?"))
    tt.flush()


if __name__ == "__main__":
    main()
