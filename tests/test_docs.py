"""The documentation, tested like code.

Every ```python block in README.md and docs/**/*.md runs here, offline, against the local
stand-ins (``FakeLLMServer``, ``OTLPReceiver``). An HTML comment on the line(s) just above a
block changes how it runs:

- ``<!-- no-run: <reason> -->``: the block is only compiled; the test is skipped with the reason
  (``pytest -rs`` lists them), so no block is left out silently.
- ``<!-- continued -->``: the block runs after the previous python block of the same page, as one
  program (for a page that builds an example up step by step).
- ``<!-- requires: pkg, other -->``: the block runs when those modules are importable, and is
  skipped naming the missing one otherwise (framework pages).

A block (or chain) that defines ``test_*`` functions is written to a file and run by pytest in a
subprocess, with the plugin's fixtures, as a user's test file would be. Any other block runs
in-process in a fresh namespace, after the autouse fixture of conftest.py cleared the tracing
variables, with ``os.environ`` and the working directory put back afterwards.

Also here: every page is in the mkdocs nav, the configuration reference matches the options
table in the code, and the API reference covers every public name.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PUBLIC_MODULES = [
    "truefoundry_tracing",
    "truefoundry_tracing.gateway",
    "truefoundry_tracing.testing",
    "truefoundry_tracing.spans",
]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<name>[a-z][a-z-]*)\s*(?::(?P<arg>.*?))?\s*-->\s*$")
_KNOWN_DIRECTIVES = {"no-run", "continued", "requires"}
_RUN_LANGS = {"python", "py", "python3"}
INNER_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def markdown_files() -> list[Path]:
    """README.md and every page under docs/, research notes included."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


@dataclass
class Block:
    """One fenced python block and the directives written just above it."""

    path: Path
    line: int  # 1-based line of the block's first code line
    code: str
    directives: dict[str, str]


@dataclass
class Group:
    """Blocks run together: one block, or a block and those ``continued`` from it."""

    blocks: list[Block] = field(default_factory=list)

    @property
    def id(self) -> str:
        first = self.blocks[0]
        lines = "+".join(str(b.line) for b in self.blocks)
        return f"{_rel(first.path)}:{lines}"

    @property
    def source(self) -> str:
        """The blocks' code, each at its own line number, so tracebacks point into the page."""
        out: list[str] = []
        for block in self.blocks:
            out.extend([""] * (block.line - 1 - len(out)))
            out.extend(block.code.splitlines())
        return "\n".join(out) + "\n"

    def directive(self, name: str) -> str | None:
        for block in self.blocks:
            if name in block.directives:
                return block.directives[name]
        return None

    @property
    def is_pytest(self) -> bool:
        tree = ast.parse(self.source)
        return any(
            (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name.startswith("test")
            )
            or (isinstance(node, ast.ClassDef) and node.name.startswith("Test"))
            for node in tree.body
        )


def parse(path: Path) -> tuple[list[Group], list[str]]:
    """The page's python blocks, grouped, and any misuse of the directives."""
    lines = path.read_text(encoding="utf-8").splitlines()
    groups: list[Group] = []
    problems: list[str] = []
    pending: dict[str, str] = {}
    pending_line = 0
    i = 0
    while i < len(lines):
        where = f"{_rel(path)}:{i + 1}"
        directive = _DIRECTIVE.match(lines[i])
        if directive and directive["name"] in _KNOWN_DIRECTIVES:
            name, arg = directive["name"], (directive["arg"] or "").strip()
            if name in ("no-run", "requires") and not arg:
                problems.append(f"{where}: <!-- {name}: ... --> needs a reason or module names")
            pending[name] = arg
            pending_line = pending_line or i + 1
            i += 1
            continue
        fence = _FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip() and pending:
                problems.append(
                    f"{_rel(path)}:{pending_line}: directive {sorted(pending)} is not followed "
                    "by a code block"
                )
                pending, pending_line = {}, 0
            i += 1
            continue
        indent, marker = fence["indent"], fence["fence"]
        info = fence["info"].strip()
        lang = re.split(r"[\s{]", info, maxsplit=1)[0].lower() if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(marker[0] * len(marker))
            and set(lines[j].strip()) == {marker[0]}
        ):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        if lang in _RUN_LANGS:
            block = Block(path, i + 2, "\n".join(body) + "\n", pending)
            if "continued" in pending:
                if not groups:
                    problems.append(f"{where}: <!-- continued --> but no python block before it")
                    groups.append(Group([block]))
                elif groups[-1].directive("no-run") is not None or "no-run" in pending:
                    problems.append(f"{where}: a no-run block cannot be continued or continue")
                    groups[-1].blocks.append(block)
                else:
                    groups[-1].blocks.append(block)
            else:
                groups.append(Group([block]))
        elif pending:
            problems.append(
                f"{_rel(path)}:{pending_line}: directive {sorted(pending)} is above a "
                f"{lang or 'plain'} block; directives apply to python blocks only"
            )
        pending, pending_line = {}, 0
        i = j + 1
    return groups, problems


def all_groups() -> list[Group]:
    return [g for path in markdown_files() for g in parse(path)[0]]


GROUPS = all_groups()


def test_pages_have_python_examples() -> None:
    pages = {_rel(g.blocks[0].path) for g in GROUPS}
    for page in ("README.md", "docs/index.md", "docs/testing.md", "docs/decorators.md"):
        assert page in pages, f"{page} has no python example"


def test_directives_are_well_formed() -> None:
    problems = [p for path in markdown_files() for p in parse(path)[1]]
    assert not problems, "\n".join(problems)


def test_misused_directives_are_reported(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- no-run: -->\n```python\nx = 1\n```\n"
        "<!-- continued -->\nText.\n"
        "<!-- requires: yaml -->\n```bash\necho\n```\n"
        "```python\na = 1\n```\n<!-- continued -->\n```python\nassert a == 1\n```\n",
        encoding="utf-8",
    )
    groups, problems = parse(page)
    assert [g.id for g in groups] == ["page.md:3", "page.md:12+16"]
    assert groups[1].source.splitlines()[15] == "assert a == 1"
    assert groups[0].directive("no-run") == ""
    assert len(problems) == 3
    assert "needs a reason" in problems[0]
    assert "not followed by a code block" in problems[1]
    assert "python blocks only" in problems[2]


@pytest.fixture
def restored_process_state(tmp_path: Path) -> Iterator[Path]:
    """os.environ and the working directory as they were, whatever the block changes."""
    env = dict(os.environ)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)


def _clean_env() -> dict[str, str]:
    drop = ("TFY_", "TRACELOOP_", "OTEL_", "PYTEST_")
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}


@pytest.mark.parametrize("group", GROUPS, ids=[g.id for g in GROUPS])
def test_markdown_python_block(group: Group, restored_process_state: Path) -> None:
    filename = group.id.rsplit(":", 1)[0]
    code = compile(group.source, filename, "exec", dont_inherit=True)
    reason = group.directive("no-run")
    if reason is not None:
        pytest.skip(f"{group.id} is marked no-run: {reason}")
    needs = group.directive("requires")
    if needs:
        for name in (n.strip() for n in needs.split(",")):
            if name and importlib.util.find_spec(name) is None:
                pytest.skip(f"{group.id} requires {name}, which is not installed")
    if not group.is_pytest:
        exec(code, {"__name__": "__main__", "__file__": filename})
        return
    test_file = restored_process_state / "test_from_docs.py"
    test_file.write_text(group.source, encoding="utf-8")
    (restored_process_state / "pytest.ini").write_text(INNER_INI, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name],
        cwd=restored_process_state,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0 and "passed" in summary and "skipped" not in summary, (
        f"the tests in {group.id} did not all pass:\n{result.stdout}\n{result.stderr}"
    )


# -- the site's structure ---------------------------------------------------------------------


def _mkdocs_config() -> dict[str, object]:
    yaml = pytest.importorskip("yaml", reason="the docs extra is not installed")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def _nav_files(node: object) -> Iterator[str]:
    if isinstance(node, str):
        if not node.startswith(("http://", "https://")):
            yield node
    elif isinstance(node, list):
        for item in node:
            yield from _nav_files(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _nav_files(value)


def test_every_page_is_in_the_nav() -> None:
    config = _mkdocs_config()
    excluded = [p.strip().strip("/") for p in str(config.get("exclude_docs", "")).splitlines()]
    pages = {
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if not any(p.relative_to(DOCS).as_posix().startswith(e + "/") for e in excluded if e)
    }
    nav = list(_nav_files(config["nav"]))
    assert len(nav) == len(set(nav)), f"pages listed twice in the nav: {nav}"
    missing, dangling = sorted(pages - set(nav)), sorted(set(nav) - pages)
    assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"
    assert not dangling, f"the nav in mkdocs.yml lists pages that do not exist: {dangling}"


def _api_directives() -> list[tuple[str, list[str] | None]]:
    """``::: module`` lines of docs/api.md with their ``members:`` list, if any."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    out: list[tuple[str, list[str] | None]] = []
    for match in re.finditer(r"^::: ([\w.]+)\n((?:[ \t]+.*\n?)*)", text, re.MULTILINE):
        members = re.search(r"members:\s*\[([^\]]*)\]", match.group(2))
        names = [m.strip() for m in members.group(1).split(",")] if members else None
        out.append((match.group(1), names))
    return out


def test_api_reference_covers_every_public_name() -> None:
    documented: dict[str, list[str] | None] = dict(_api_directives())
    shown: set[int] = set()
    for module_name, members in documented.items():
        module = importlib.import_module(module_name)
        for name in members if members is not None else module.__all__:
            shown.add(id(getattr(module, name)))
    for module_name in PUBLIC_MODULES:
        assert module_name in documented, f"docs/api.md has no '::: {module_name}'"
        module = importlib.import_module(module_name)
        hidden = [
            n
            for n in module.__all__
            if not n.startswith("__") and id(getattr(module, n)) not in shown
        ]
        assert not hidden, f"docs/api.md does not render {module_name}: {hidden}"


# -- the configuration reference --------------------------------------------------------------


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "config_reference", DOCS / "_gen" / "config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_helpers_doctests() -> None:
    pytest.importorskip("griffe", reason="the docs extra is not installed")
    for name in ("config_reference", "griffe_docstrings"):
        spec = importlib.util.spec_from_file_location(name, DOCS / "_gen" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        failed, _ = doctest.testmod(module, verbose=False)
        assert failed == 0, f"docs/_gen/{name}.py has failing doctests"


def test_configuration_reference_is_generated_from_the_options_table() -> None:
    gen = _generator()
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert gen.generated_block(page) == gen.render(), (
        "docs/configuration.md is stale; run: python docs/_gen/config_reference.py"
    )


def test_init_and_resolve_take_exactly_the_documented_options() -> None:
    from truefoundry_tracing import init
    from truefoundry_tracing._config import OPTIONS, resolve

    _generator().check_signature()
    names = [opt.name for opt in OPTIONS]
    assert len(names) == len(set(names))
    assert set(inspect.signature(init).parameters) == set(names)
    resolve(env={}, **dict.fromkeys(names))  # resolve() takes init()'s arguments by name
    with pytest.raises(TypeError, match="brand_new"):
        resolve(env={}, brand_new=True)


def test_the_generator_refuses_an_undocumented_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()

    def init(app_name: str | None = None, *, brand_new: bool | None = None) -> None:
        del app_name, brand_new

    monkeypatch.setattr(gen, "init", init)
    with pytest.raises(ValueError, match=r"parameters without an option: \['brand_new'\]"):
        gen.render()


def _package_env_vars() -> set[str]:
    """Every TFY_/TRACELOOP_/OTEL_ name written as a string literal in the package."""
    found: set[str] = set()
    for path in (ROOT / "truefoundry_tracing").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(re.findall(r"^(?:TFY|TRACELOOP|OTEL)_[A-Z0-9_]+$", node.value))
    return found


def test_every_environment_variable_the_package_names_is_documented() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    variables = _package_env_vars()
    assert "TFY_HOST" in variables
    missing = sorted(v for v in variables if f"`{v}`" not in page)
    assert not missing, f"docs/configuration.md does not mention {missing}"


def test_readme_configuration_table_names_every_option() -> None:
    from truefoundry_tracing._config import OPTIONS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for opt in OPTIONS:
        assert f"`{opt.name}`" in table, f"README's configuration table lacks {opt.name}"
        for var in opt.env:
            assert f"`{var}`" in table, f"README's configuration table lacks {var}"
