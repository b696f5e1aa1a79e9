"""Which libraries ``init()`` instruments, and how.

By default: every LLM provider, agent framework and vector database in :data:`DEFAULT` whose
library is installed (traceloop's instrumentations). Generic HTTP and database instrumentations
(:data:`OPT_IN`) only when named. Each outcome is reported: applied, or skipped with the reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigError

__all__ = ["DEFAULT", "KNOWN", "OPT_IN", "Instrumentation", "apply", "check_names"]

logger = logging.getLogger("truefoundry_tracing")


@dataclass(frozen=True)
class Instrumentation:
    """One library we know how to instrument."""

    name: str
    detect: str  # module whose presence means the library is installed
    module: str  # instrumentation package
    cls: str


def _i(name: str, detect: str, module: str, cls: str) -> Instrumentation:
    return Instrumentation(name, detect, "opentelemetry.instrumentation." + module, cls)


DEFAULT: tuple[Instrumentation, ...] = (
    _i("openai", "openai", "openai", "OpenAIInstrumentor"),
    _i("anthropic", "anthropic", "anthropic", "AnthropicInstrumentor"),
    _i("bedrock", "boto3", "bedrock", "BedrockInstrumentor"),
    _i("sagemaker", "boto3", "sagemaker", "SageMakerInstrumentor"),
    _i("vertexai", "vertexai", "vertexai", "VertexAIInstrumentor"),
    _i(
        "google_generativeai",
        "google.generativeai",
        "google_generativeai",
        "GoogleGenerativeAiInstrumentor",
    ),
    _i("cohere", "cohere", "cohere", "CohereInstrumentor"),
    _i("mistral", "mistralai", "mistralai", "MistralAiInstrumentor"),
    _i("groq", "groq", "groq", "GroqInstrumentor"),
    _i("ollama", "ollama", "ollama", "OllamaInstrumentor"),
    _i("together", "together", "together", "TogetherAiInstrumentor"),
    _i("replicate", "replicate", "replicate", "ReplicateInstrumentor"),
    _i("transformers", "transformers", "transformers", "TransformersInstrumentor"),
    _i("watsonx", "ibm_watson_machine_learning", "watsonx", "WatsonxInstrumentor"),
    _i("alephalpha", "aleph_alpha_client", "alephalpha", "AlephAlphaInstrumentor"),
    _i("litellm", "litellm", "litellm", "LiteLLMInstrumentor"),
    _i("voyageai", "voyageai", "voyageai", "VoyageAIInstrumentor"),
    _i("writer", "writerai", "writer", "WriterInstrumentor"),
    _i("langchain", "langchain_core", "langchain", "LangchainInstrumentor"),
    _i("llama_index", "llama_index.core", "llamaindex", "LlamaIndexInstrumentor"),
    _i("crewai", "crewai", "crewai", "CrewAIInstrumentor"),
    _i("haystack", "haystack", "haystack", "HaystackInstrumentor"),
    _i("openai_agents", "agents", "openai_agents", "OpenAIAgentsInstrumentor"),
    _i("agno", "agno", "agno", "AgnoInstrumentor"),
    _i("mcp", "mcp", "mcp", "McpInstrumentor"),
    _i("chroma", "chromadb", "chromadb", "ChromaInstrumentor"),
    _i("pinecone", "pinecone", "pinecone", "PineconeInstrumentor"),
    _i("qdrant", "qdrant_client", "qdrant", "QdrantInstrumentor"),
    _i("weaviate", "weaviate", "weaviate", "WeaviateInstrumentor"),
    _i("milvus", "pymilvus", "milvus", "MilvusInstrumentor"),
    _i("lancedb", "lancedb", "lancedb", "LanceInstrumentor"),
    _i("marqo", "marqo", "marqo", "MarqoInstrumentor"),
)

OPT_IN: tuple[Instrumentation, ...] = (
    _i("requests", "requests", "requests", "RequestsInstrumentor"),
    _i("urllib3", "urllib3", "urllib3", "URLLib3Instrumentor"),
    _i("httpx", "httpx", "httpx", "HTTPXClientInstrumentor"),
    _i("sqlalchemy", "sqlalchemy", "sqlalchemy", "SQLAlchemyInstrumentor"),
    _i("redis", "redis", "redis", "RedisInstrumentor"),
)

KNOWN: dict[str, Instrumentation] = {i.name: i for i in DEFAULT + OPT_IN}
_ALIASES = {
    "crew": "crewai",
    "llamaindex": "llama_index",
    "mistralai": "mistral",
    "chromadb": "chroma",
    "google_genai": "google_generativeai",
}


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical names for ``instruments=``; ConfigError naming the unknown ones."""
    out: list[str] = []
    for raw in names:
        name = _ALIASES.get(raw, raw)
        if name not in KNOWN:
            raise ConfigError(
                f"instruments names an unknown library {raw!r}; known names are: "
                f"{', '.join(sorted(KNOWN))}."
            )
        out.append(name)
    return tuple(dict.fromkeys(out))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


async def _no_upload(*_args: Any, **_kwargs: Any) -> str:
    """Stands in for traceloop's image uploader: images are never sent anywhere."""
    return ""


def _construct(cls: Any) -> Any:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    kwargs: dict[str, Any] = {}
    if "upload_base64_image" in params:
        kwargs["upload_base64_image"] = _no_upload
    if "enrich_token_usage" in params:
        kwargs["enrich_token_usage"] = False  # tiktoken would download encodings
    if "enrich_assistant" in params:
        kwargs["enrich_assistant"] = False
    return cls(**kwargs)


def apply(
    names: tuple[str, ...] | None,
    tracer_provider: Any,
    applied: dict[str, Any],
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Instrument the requested (or, with None, the default installed) libraries.

    ``applied`` maps names to live instrumentor objects across calls; libraries no longer
    requested are uninstrumented. Returns (applied names, {skipped name: reason}).
    """
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    wanted = DEFAULT if names is None else tuple(KNOWN[n] for n in check_names(names))
    skipped: dict[str, str] = {}
    wanted_names = {i.name for i in wanted}
    for name in list(applied):
        if name not in wanted_names:
            try:
                applied.pop(name).uninstrument()
            except Exception as exc:
                logger.warning("truefoundry_tracing: could not uninstrument %s: %s", name, exc)
    for inst in wanted:
        if inst.name in applied:
            continue
        if not _installed(inst.detect):
            skipped[inst.name] = f"{inst.detect} is not installed"
            continue
        if not _installed(inst.module):
            skipped[inst.name] = (
                f"its instrumentation package ({inst.module}) is not installed with this "
                "traceloop-sdk version"
            )
            continue
        try:
            module = importlib.import_module(inst.module)
            instrumentor = _construct(getattr(module, inst.cls))
            conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
            if conflict is not None:
                skipped[inst.name] = f"incompatible version: {conflict}"
                continue
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=tracer_provider)
            applied[inst.name] = instrumentor
        except Exception as exc:
            skipped[inst.name] = f"failed to instrument: {type(exc).__name__}: {exc}"
    return tuple(applied), skipped
