"""The libraries ``init()`` knows how to instrument, and the outcome record of each.

A leaf module (no OpenTelemetry, no traceloop): settings validate ``instruments=`` and
``TFY_TRACING_INSTRUMENTS`` against :data:`KNOWN` here without importing what applies them
(``_instruments``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ._errors import ConfigError

__all__ = [
    "DEFAULT",
    "KNOWN",
    "OPT_IN",
    "InstrumentOutcome",
    "Instrumentation",
    "Report",
    "State",
    "check_names",
    "own",
]


State = Literal[
    "applied", "deferred", "kept", "not installed", "unavailable", "incompatible", "failed"
]


@dataclass(frozen=True)
class Instrumentation:
    """One library ``init()`` knows how to instrument."""

    name: str
    dists: tuple[str, ...]  # distributions, any of which means the library is installed
    module: str  # module of the instrumentation
    cls: str
    # the library's modules whose import means it may be used: importing any of them applies
    # an instrumentation deferred by init()
    imports: tuple[str, ...] = ()
    removable: bool = False  # its uninstrument() really unwraps (OpenTelemetry contrib ones)

    @property
    def package(self) -> str:
        """The distribution that provides the instrumentation.

        Example:
            >>> KNOWN["openai"].package
            'opentelemetry-instrumentation-openai'
            >>> own("demo", "demo", "_demo", "DemoInstrumentor").package
            'truefoundry-tracing'
        """
        if self.module.startswith(_OWN):
            return "truefoundry-tracing"
        return "opentelemetry-instrumentation-" + self.module.rsplit(".", 1)[-1].replace("_", "-")


@dataclass(frozen=True)
class InstrumentOutcome:
    """What ``init()`` did about one library.

    ``state`` is ``applied``; ``deferred`` (installed and not used yet: instrumented as the
    app imports the library, or for the OpenAI client on its first use, so ``init()`` does not
    pay for loading what the app may never call); ``kept`` (applied by an earlier ``init()``,
    no longer asked for, still active); ``not installed``; ``unavailable`` (this traceloop-sdk
    ships no instrumentation for it); ``incompatible`` (versions that do not work together,
    named in ``reason``); or ``failed`` (the instrumentation raised; the error is in ``reason``).

    Example:
        >>> o = InstrumentOutcome("langchain", "not installed", "langchain-core is not installed.")
        >>> o.active, str(o)
        (False, 'langchain: not installed (langchain-core is not installed.)')
    """

    name: str
    state: State
    reason: str = ""
    library_version: str | None = None
    instrumentation_version: str | None = None

    @property
    def active(self) -> bool:
        """True when calls to the library are traced (``applied``, ``deferred`` or ``kept``)."""
        return self.state in ("applied", "deferred", "kept")

    def __str__(self) -> str:
        return f"{self.name}: {self.state}" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class Report:
    """Every outcome of one ``init()``, in table order."""

    outcomes: tuple[InstrumentOutcome, ...]


def _i(
    name: str,
    dists: str | tuple[str, ...],
    module: str,
    cls: str,
    imports: str | tuple[str, ...] | None = None,
) -> Instrumentation:
    return Instrumentation(
        name,
        (dists,) if isinstance(dists, str) else dists,
        "opentelemetry.instrumentation." + module,
        cls,
        (imports,) if isinstance(imports, str) else (imports or (module,)),
    )


_OWN = "truefoundry_tracing._frameworks."


def own(
    name: str,
    dists: str | tuple[str, ...],
    module: str,
    cls: str,
    imports: str | tuple[str, ...] | None = None,
) -> Instrumentation:
    """An instrumentation this library ships (``module`` under ``_frameworks``), for a
    framework traceloop does not instrument, or not completely. ``imports`` defaults to the
    distribution's name as a module.

    Example:
        >>> own("demo", "demo-sdk", "_demo", "DemoInstrumentor").imports
        ('demo_sdk',)
    """
    dists = (dists,) if isinstance(dists, str) else dists
    if imports is None:
        imports = dists[0].replace("-", "_")
    return Instrumentation(
        name,
        dists,
        _OWN + module,
        cls,
        (imports,) if isinstance(imports, str) else imports,
    )


def module_available(module: str) -> bool:
    """Whether ``module`` can be imported (found, not imported).

    Example:
        >>> module_available("json"), module_available("no_such_module.sub")
        (True, False)
    """
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _agents() -> Instrumentation:
    """The OpenAI Agents SDK's entry: traceloop's instrumentation where it is installed, else
    this library's (:mod:`._frameworks._openai_agents`, on the SDK's own tracing API).

    Example:
        >>> _agents().name
        'openai_agents'
    """
    traceloop = _i(
        "openai_agents", "openai-agents", "openai_agents", "OpenAIAgentsInstrumentor", "agents"
    )
    if module_available(traceloop.module):
        return traceloop
    return own(
        "openai_agents", "openai-agents", "_openai_agents", "OpenAIAgentsInstrumentor", "agents"
    )


def _google() -> Instrumentation:
    """The Google GenAI entry: traceloop's instrumentation, except where google-genai is
    installed and traceloop's wraps only the old google-generativeai SDK (before 0.45.6: the
    traceloop-sdk 0.38 line); there this library's (:mod:`._frameworks._google_genai_calls`).

    Example:
        >>> _google().name
        'google_generativeai'
    """
    traceloop = _i(
        "google_generativeai",
        ("google-genai", "google-generativeai"),
        "google_generativeai",
        "GoogleGenerativeAiInstrumentor",
        ("google.genai", "google.generativeai"),
    )
    if not module_available("google.genai") or _wraps_google_genai():
        return traceloop
    return own(
        "google_generativeai",
        "google-genai",
        "_google_genai_calls",
        "GoogleGenAIInstrumentor",
        "google.genai",
    )


def _wraps_google_genai() -> bool:
    """Whether traceloop's google_generativeai instrumentation wraps google-genai (it does from
    0.45.6), read from its source: importing it, or asking ``importlib.metadata`` for its
    version, would load at ``init()`` what ``init()`` must not load. True when it is not
    installed (traceloop's entry then reports that).

    Example:
        >>> isinstance(_wraps_google_genai(), bool)
        True
    """
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec("opentelemetry.instrumentation")
    except (ImportError, ValueError):
        return True
    for folder in (spec.submodule_search_locations or ()) if spec is not None else ():
        try:
            with open(os.path.join(folder, "google_generativeai", "__init__.py"), "rb") as f:
                return b"google.genai" in f.read()
        except OSError:
            continue
    return True


DEFAULT: tuple[Instrumentation, ...] = (
    # model providers
    _i("openai", "openai", "openai", "OpenAIInstrumentor"),
    _i("anthropic", "anthropic", "anthropic", "AnthropicInstrumentor"),
    _i("bedrock", "boto3", "bedrock", "BedrockInstrumentor", "botocore"),
    _i("sagemaker", "boto3", "sagemaker", "SageMakerInstrumentor", "botocore"),
    _i("vertexai", "google-cloud-aiplatform", "vertexai", "VertexAIInstrumentor"),
    _google(),  # traceloop's, or ours for google-genai where traceloop's wraps the old SDK only
    _i("cohere", "cohere", "cohere", "CohereInstrumentor"),
    _i("mistral", "mistralai", "mistralai", "MistralAiInstrumentor"),
    _i("groq", "groq", "groq", "GroqInstrumentor"),
    _i("ollama", "ollama", "ollama", "OllamaInstrumentor"),
    _i("together", "together", "together", "TogetherAiInstrumentor"),
    _i("replicate", "replicate", "replicate", "ReplicateInstrumentor"),
    _i("transformers", "transformers", "transformers", "TransformersInstrumentor"),
    _i(
        "watsonx",
        ("ibm-watsonx-ai", "ibm-watson-machine-learning"),
        "watsonx",
        "WatsonxInstrumentor",
        ("ibm_watsonx_ai", "ibm_watson_machine_learning"),
    ),
    _i(
        "alephalpha",
        "aleph-alpha-client",
        "alephalpha",
        "AlephAlphaInstrumentor",
        "aleph_alpha_client",
    ),
    _i("litellm", "litellm", "litellm", "LiteLLMInstrumentor"),
    _i("voyageai", "voyageai", "voyageai", "VoyageAIInstrumentor"),
    _i("writer", "writer-sdk", "writer", "WriterInstrumentor", "writerai"),
    # agent frameworks (LangGraph runs on langchain-core, so one instrumentation covers both)
    _i("langchain", "langchain-core", "langchain", "LangchainInstrumentor", "langchain_core"),
    _i(
        "llama_index",
        ("llama-index-core", "llama-index"),
        "llamaindex",
        "LlamaIndexInstrumentor",
        # llama_index is a namespace package since 0.10: its import runs no hook
        ("llama_index.core", "llama_index"),
    ),
    _i("crewai", "crewai", "crewai", "CrewAIInstrumentor"),
    # Haystack's own tracing, recorded by ours, on both majors (traceloop's fails on 3.x)
    own("haystack", "haystack-ai", "_haystack", "HaystackInstrumentor", "haystack"),
    # traceloop's where this traceloop-sdk ships it (0.62), else ours (0.38), see _agents()
    _agents(),
    # traceloop 0.62's splits a streamed run into several traces and 0.38 ships none
    own("agno", "agno", "_agno", "AgnoInstrumentor"),
    own("mcp", "mcp", "_mcp", "McpInstrumentor"),  # traceloop's on mcp 1.x, ours on 2.x
    own(
        "pydantic_ai",
        ("pydantic-ai-slim", "pydantic-ai"),
        "_pydantic_ai",
        "PydanticAIInstrumentor",
        "pydantic_ai",
    ),
    own("autogen", "autogen-agentchat", "_autogen", "AutoGenInstrumentor"),
    own("ag2", "ag2", "_ag2", "AG2Instrumentor"),
    own("smolagents", "smolagents", "_smolagents", "SmolagentsInstrumentor"),
    own("dspy", ("dspy", "dspy-ai"), "_dspy", "DSPyInstrumentor", "dspy"),
    # vector databases
    _i("chroma", "chromadb", "chromadb", "ChromaInstrumentor"),
    _i("pinecone", ("pinecone", "pinecone-client"), "pinecone", "PineconeInstrumentor"),
    _i("qdrant", "qdrant-client", "qdrant", "QdrantInstrumentor", "qdrant_client"),
    _i("weaviate", "weaviate-client", "weaviate", "WeaviateInstrumentor"),
    _i("milvus", "pymilvus", "milvus", "MilvusInstrumentor", "pymilvus"),
    _i("lancedb", "lancedb", "lancedb", "LanceInstrumentor"),
    _i("marqo", "marqo", "marqo", "MarqoInstrumentor"),
)

OPT_IN: tuple[Instrumentation, ...] = tuple(
    Instrumentation(i.name, i.dists, i.module, i.cls, i.imports, removable=True)
    for i in (
        _i("requests", "requests", "requests", "RequestsInstrumentor"),
        _i("urllib3", "urllib3", "urllib3", "URLLib3Instrumentor"),
        _i("httpx", "httpx", "httpx", "HTTPXClientInstrumentor"),
        _i("sqlalchemy", "sqlalchemy", "sqlalchemy", "SQLAlchemyInstrumentor"),
        _i("redis", "redis", "redis", "RedisInstrumentor"),
        _i("pymysql", "pymysql", "pymysql", "PyMySQLInstrumentor"),
    )
)

KNOWN: dict[str, Instrumentation] = {i.name: i for i in DEFAULT + OPT_IN}
_ALIASES = {
    "crew": "crewai",
    "langgraph": "langchain",
    "llamaindex": "llama_index",
    "llama-index": "llama_index",
    "mistralai": "mistral",
    "chromadb": "chroma",
    "gemini": "google_generativeai",
    "google_genai": "google_generativeai",
    "openai-agents": "openai_agents",
    "pydantic-ai": "pydantic_ai",
}


def check_names(names: Iterable[str], setting: str = "instruments") -> tuple[str, ...]:
    """Canonical names for ``instruments=``, or ConfigError naming the unknown ones.

    Example:
        >>> check_names(["OpenAI", "langgraph", "llamaindex"])
        ('openai', 'langchain', 'llama_index')
    """
    out: list[str] = []
    unknown: list[str] = []
    for raw in names:
        key = raw.strip().lower()
        name = _ALIASES.get(key, key)
        if name in KNOWN:
            out.append(name)
        elif key:
            unknown.append(raw)
    if unknown:
        listed = ", ".join(repr(u) for u in unknown)
        raise ConfigError(
            f"{setting} names unknown libraries: {listed}. Use names from this list: "
            f"{', '.join(sorted(KNOWN))}."
        )
    return tuple(dict.fromkeys(out))
