"""A griffe extension that lets the API reference render this package's docstrings as written.

The docstrings follow Google style, with two habits griffe's Google parser does not read:

- ``Example:`` (singular) heads the doctest section; griffe only knows ``Examples:`` and would
  render the doctest lines as a nested quote. It is renamed, so examples render as code.
- Sphinx roles (``:class:`~truefoundry_tracing.ConfigError```, ``:meth:`start```) become
  mkdocstrings cross-references, so ``mkdocs build --strict`` fails when one names nothing.
- A public function built at run time (``workflow = _factory("workflow")``, its docstring set
  afterwards) is invisible to static analysis; it is documented as the function it is at run
  time, with its signature and docstring.

Loaded by mkdocs.yml (``extensions:`` of the python handler); the package's code is not changed.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|exc|mod|obj):`(~?)([\w.]+)(\(\))?`")


def _crossref(match: re.Match[str]) -> str:
    short, target, call = match.group(1), match.group(2), match.group(3) or ""
    shown = target.rsplit(".", 1)[-1] if short else target
    return f"[`{shown}{call}`][{target}]"


def rewrite(text: str) -> str:
    """The docstring text with ``Example:`` headings and Sphinx roles rewritten.

    Example:
        >>> rewrite("Raises :class:`~pkg.ConfigError`.\\n\\nExample:\\n    >>> 1\\n    1")
        'Raises [`ConfigError`][pkg.ConfigError].\\n\\nExamples:\\n    >>> 1\\n    1'
    """
    return _ROLE.sub(_crossref, _EXAMPLE.sub(r"\1Examples:", text))


_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.VAR_POSITIONAL: griffe.ParameterKind.var_positional,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
    inspect.Parameter.VAR_KEYWORD: griffe.ParameterKind.var_keyword,
}


def _annotation(value: Any) -> str | None:
    if value is inspect.Parameter.empty:
        return None
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _runtime_function(attr: griffe.Attribute) -> griffe.Function | None:
    """The function an undocumented module attribute holds at run time, as a griffe Function."""
    try:
        value = getattr(importlib.import_module(attr.module.path), attr.name)
        signature = inspect.signature(value)
    except Exception:
        return None
    if not inspect.isfunction(value) or not value.__doc__:
        return None
    parameters = griffe.Parameters(
        *(
            griffe.Parameter(
                p.name,
                kind=_KINDS[p.kind],
                annotation=_annotation(p.annotation),
                default=None if p.default is inspect.Parameter.empty else repr(p.default),
            )
            for p in signature.parameters.values()
        )
    )
    func = griffe.Function(
        attr.name,
        lineno=attr.lineno,
        endlineno=attr.endlineno,
        parameters=parameters,
        returns=_annotation(signature.return_annotation),
        docstring=griffe.Docstring(rewrite(inspect.cleandoc(value.__doc__)), parser="google"),
    )
    func.docstring.parent = func  # type: ignore[union-attr]
    return func


class SphinxishDocstrings(griffe.Extension):
    """Rewrites each docstring once, when griffe creates the object that carries it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)

    def on_module_members(self, *, mod: griffe.Module, **kwargs: Any) -> None:
        for name, member in list(mod.members.items()):
            if member.is_alias or not member.is_attribute or member.docstring is not None:
                continue
            func = _runtime_function(member)  # type: ignore[arg-type]
            if func is not None:
                mod.set_member(name, func)
