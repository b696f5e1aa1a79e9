"""From the package index to a trace on screen, without a clone.

- ``truefoundry-tracing demo`` (also ``python -m truefoundry_tracing demo``) runs the traced
  quickstart from the installed package, offline, and says how to install the openai client
  when it is missing;
- (slow) the built wheel installs into a fresh virtual environment the way the README's
  "Install" section says, with plain pip and with uv, using the package index this machine is
  configured with, and the demo runs from there. pip's wall time is printed (``-s``), never
  asserted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from truefoundry_tracing.spans import SpanList
from truefoundry_tracing.testing import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints" / "traceloop-latest.txt"
TREE = (
    "pirate_joke_generator.workflow",
    [
        ("create_joke.task", [("openai.chat", [])]),
        ("pirate_translation.task", [("openai.chat", [])]),
        ("joke_critic.agent", [("openai.chat", []), ("word_count.tool", []), ("openai.chat", [])]),
    ],
)
INSTALL_HINT = "pip install 'truefoundry-tracing[openai]'"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFY_", "TRACELOOP_"))}
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def _shape(spans: SpanList, span: object) -> object:
    children = sorted(spans.children(span), key=lambda s: s.start_ns)  # type: ignore[arg-type]
    return (span.name, [_shape(spans, c) for c in children])  # type: ignore[attr-defined]


def _check_demo(command: list[str], receiver: OTLPReceiver | None = None) -> str:
    env = _clean_env(TFY_TRACING_INSTRUMENTS="openai")
    if receiver is not None:
        env["TFY_TRACING_ENDPOINT"] = receiver.url
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT.parent
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "critic: The joke has 12 words." in done.stdout
    return done.stderr


def test_demo_verb_runs_the_traced_quickstart_offline(receiver: OTLPReceiver) -> None:
    _check_demo([sys.executable, "-m", "truefoundry_tracing", "demo"], receiver)
    spans = SpanList(receiver.wait_for_spans(9, timeout=10))
    assert len({s.trace_id for s in spans}) == 1
    assert _shape(spans, spans.root) == TREE
    assert {s.service_name for s in spans} == {"quickstart"}


def test_demo_prints_its_trace_tree_when_nothing_is_configured() -> None:
    stderr = _check_demo([sys.executable, "-m", "truefoundry_tracing", "demo"])
    for line in ("pirate_joke_generator.workflow", "word_count.tool  [tool]", "model=gpt-4o-mini"):
        assert line in stderr, stderr


def test_demo_without_openai_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['openai'] = None  # as if it were not installed\n"
        "from truefoundry_tracing.cli import main\n"
        "sys.exit(main(['demo']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert INSTALL_HINT in done.stdout
    assert "Traceback" not in done.stderr


# -- the built wheel in a fresh environment -----------------------------------------------


def _uv() -> str | None:
    return shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".venv" / "bootstrap" / "bin" / "uv"] if p.exists()), None
    )


def _newest_line() -> bool:
    """The fresh-environment tests install their own dependencies: run them on one line."""
    import importlib.metadata

    return not importlib.metadata.version("traceloop-sdk").startswith("0.38.")


once = pytest.mark.skipif(
    not _newest_line(), reason="installs into fresh environments: runs on the newest line only"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from this checkout the way the project's scripts build (uv)."""
    out = tmp_path_factory.mktemp("dist")
    uv = _uv()
    if uv is not None:
        cmd = [uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)]
    else:
        cmd = ["python3", "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(ROOT)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    (built,) = out.glob("truefoundry_tracing-*.whl")
    return built


def _base_python() -> str:
    """A Python with pip and venv (not this test's uv-made environment, which has no pip)."""
    found = shutil.which("python3")
    if found is None:
        pytest.skip("no python3 on PATH to make a fresh virtual environment with")
    return found


@pytest.mark.slow
@once
def test_wheel_installs_with_plain_pip_and_runs_the_demo(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    started = time.perf_counter()
    # The README's pip command: the tested versions as constraints, the index pip is set up with.
    done = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "-c",
            str(CONSTRAINTS),
            f"{wheel}[openai]",
        ],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.perf_counter() - started
    print(f"\npip install (resolve, download, install) took {seconds:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    _check_demo([str(venv / "bin" / "truefoundry-tracing"), "demo"])
    _check_demo([str(venv / "bin" / "python"), "-m", "truefoundry_tracing", "demo"])


PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _interpreter(version: str) -> str | None:
    """A working ``python<version>``: on PATH, or one pyenv installed but does not expose."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = shutil.which(f"python{version}")
    candidates = [found] if found else []
    candidates += [str(p) for p in sorted(root.glob(f"versions/{version}.*/bin/python{version}"))]
    for candidate in candidates:
        ok = subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=60)
        if ok.returncode == 0:
            return candidate
    return None


@pytest.mark.slow
@once
@pytest.mark.parametrize("version", PYTHONS)
def test_wheel_installs_with_uv_and_runs_the_demo(
    wheel: Path, tmp_path: Path, version: str
) -> None:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (scripts/_common.sh ensure_uv installs it)")
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no working python{version} on this machine")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", python, str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            f"{wheel}[openai]",
        ],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _check_demo([str(venv / "bin" / "truefoundry-tracing"), "demo"])
