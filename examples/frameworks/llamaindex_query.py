"""LlamaIndex: index two documents and query them inside a ``@workflow``, traced by ``init()``.

Needs ``llama-index`` (or ``llama-index-core`` with ``llama-index-llms-openai`` and
``llama-index-embeddings-openai``; see docs/frameworks/llamaindex.md). Offline by default: the
embeddings and the answer come from a local OpenAI-compatible stand-in and the trace is printed
as a tree to stderr. With ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls TrueFoundry's AI gateway
(models ``TFY_MODEL`` / ``TFY_EMBEDDING_MODEL``, default ``openai-main/gpt-4o-mini`` and
``openai-main/text-embedding-3-small``) and the trace goes to TrueFoundry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

import truefoundry_tracing as tt
from truefoundry_tracing import workflow


class GatewayOpenAI(OpenAI):
    """llama-index's OpenAI LLM, also accepting gateway model names (``provider/model``).

    llama-index looks the model name up in its own table (context window, chat support);
    the part after the last ``/`` is the OpenAI model name.
    """

    def _get_model_name(self) -> str:
        return super()._get_model_name().rsplit("/", 1)[-1]


def endpoint(stack: ExitStack) -> tuple[str, str, str, str]:
    """(base URL, API key, chat model, embedding model): the gateway or a local stand-in."""
    host, key = os.environ.get("TFY_HOST"), os.environ.get("TFY_API_KEY")
    if host and key:
        return (
            host.rstrip("/") + "/api/llm",
            key,
            os.environ.get("TFY_MODEL", "openai-main/gpt-4o-mini"),
            os.environ.get("TFY_EMBEDDING_MODEL", "openai-main/text-embedding-3-small"),
        )
    from truefoundry_tracing.testing import FakeLLMServer

    server = stack.enter_context(FakeLLMServer())
    server.reply("Paris is the capital of France.")
    return server.base_url, "offline-example", "gpt-4o-mini", "text-embedding-3-small"


DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
]


def make_app(base_url: str, api_key: str, model: str, embedding_model: str) -> Callable[[str], str]:
    """The traced app: a workflow that indexes :data:`DOCUMENTS` and answers one question."""
    llm_class = GatewayOpenAI if "/" in model else OpenAI
    Settings.llm = llm_class(model=model, api_base=base_url, api_key=api_key, max_retries=0)
    Settings.embed_model = OpenAIEmbedding(
        model_name=embedding_model, api_base=base_url, api_key=api_key, max_retries=0
    )

    @workflow(name="city_facts")
    def ask(question: str) -> str:
        index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS])
        return str(index.as_query_engine(similarity_top_k=1).query(question))

    return ask


def main() -> None:
    tt.init(app_name="llamaindex-example")
    with ExitStack() as stack:
        print(make_app(*endpoint(stack))("What is the capital of France?"))
    tt.flush()


if __name__ == "__main__":
    main()
