"""The public surface: exactly what __all__ says, every name documented with an example."""

from __future__ import annotations

import importlib

import pytest

import truefoundry_tracing
import truefoundry_tracing.testing

PUBLIC_MODULES = [
    "truefoundry_tracing",
    "truefoundry_tracing.gateway",
    "truefoundry_tracing.testing",
    "truefoundry_tracing.spans",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_is_sorted_and_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    assert names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None, name


def test_top_level_surface_is_the_documented_one() -> None:
    assert set(truefoundry_tracing.__all__) == {
        "ConfigError",
        "InstrumentOutcome",
        "MissingDependencyError",
        "TracingError",
        "TracingStatus",
        "__version__",
        "agent",
        "association_properties",
        "conversation",
        "flush",
        "gateway_headers",
        "gateway_metadata",
        "init",
        "parse_metadata",
        "shutdown",
        "status",
        "task",
        "tool",
        "workflow",
    }


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_callable_has_a_docstring_with_an_example(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if not callable(obj):
            continue
        doc = obj.__doc__ or ""
        assert doc.strip(), f"{module_name}.{name} has no docstring"
        assert "Example" in doc or ">>>" in doc, f"{module_name}.{name} has no example"


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        truefoundry_tracing.nope  # noqa: B018


def test_config_error_is_a_value_error_and_a_tracing_error() -> None:
    assert issubclass(truefoundry_tracing.ConfigError, ValueError)
    assert issubclass(truefoundry_tracing.ConfigError, truefoundry_tracing.TracingError)
    assert issubclass(truefoundry_tracing.MissingDependencyError, ImportError)


def _public_members(cls: type) -> list[tuple[str, object]]:
    """Methods and properties a class defines itself (inherited ones are checked on their own)."""
    out: list[tuple[str, object]] = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        target = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if callable(target):
            out.append((name, target))
    return out


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_method_and_property_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    undocumented = [
        f"{name}.{member}"
        for name in module.__all__
        if isinstance(getattr(module, name), type)
        for member, target in _public_members(getattr(module, name))
        if not (getattr(target, "__doc__", None) or "").strip()
    ]
    assert not undocumented, f"{module_name}: no docstring on {undocumented}"
