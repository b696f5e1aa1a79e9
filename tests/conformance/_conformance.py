"""Runs traceloop-sdk's own test suite twice: as upstream, and through truefoundry_tracing.

The suite is the ``tests/`` folder of traceloop-sdk's source distribution for the installed
version, downloaded at test time with ``pip download`` and kept in a cache outside the repo
(``$CONFORMANCE_CACHE``, else ``/tmp/truefoundry-tracing-conformance``); nothing of it is
committed. Each mode runs in its own child pytest process, offline, with cassettes replayed
(``--record-mode=none``):

- ``plain``: upstream's suite as it is (``Traceloop.init`` in its ``exporter`` fixture);
- ``tfy``: the same suite with ``harness/tfy_conftest.py`` in place of its conftest, so
  ``truefoundry_tracing.init`` and truefoundry_tracing's decorators are used.

Run it by hand for the full comparison (``python tests/conformance/_conformance.py``); the
pytest module ``test_upstream_suite.py`` runs it in CI.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from conformance_expectations import DELIBERATE, EXCLUDED, LANGCHAIN, NEEDS_PACKAGE

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "harness"
MODES = ("plain", "tfy")
PASSING = ("passed",)
CHILD_TIMEOUT = 600


def installed_version() -> str:
    """The traceloop-sdk version installed in this environment."""
    return metadata.version("traceloop-sdk")


def cache_root() -> Path:
    return Path(
        os.environ.get("CONFORMANCE_CACHE")
        or Path(tempfile.gettempdir()) / "truefoundry-tracing-conformance"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip() -> list[str]:
    """A pip to download with: this interpreter's, else python3's (uv venvs have none)."""
    candidates = [sys.executable, shutil.which("python3") or ""]
    for python in filter(None, candidates):
        probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True)
        if probe.returncode == 0:
            return [python, "-m", "pip"]
    raise RuntimeError(
        "No pip found to download traceloop-sdk's source distribution: install pip for "
        f"{sys.executable} or for python3."
    )


class NoUpstreamTests(Exception):
    """The source distribution of this version ships no tests/ folder."""


def upstream_tests(version: str) -> Path:
    """The ``tests/`` folder of traceloop-sdk ``version``'s sdist, downloaded once and cached.

    Raises NoUpstreamTests when the sdist has no tests (0.38.12's has none).
    """
    root = cache_root() / f"traceloop-sdk-{version}"
    tests, marker = root / "tests", root / "NO-TESTS"
    with _locked(root.parent / f"{root.name}.lock"):
        if not tests.is_dir() and not marker.exists():
            with tempfile.TemporaryDirectory() as scratch:
                subprocess.run(
                    [
                        *_pip(),
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--no-binary",
                        ":all:",
                        f"traceloop-sdk=={version}",
                        "-d",
                        scratch,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=600,
                )
                (archive,) = Path(scratch).glob("*.tar.gz")
                root.mkdir(parents=True, exist_ok=True)
                _extract_tests(archive, root)
            if not tests.is_dir():
                marker.write_text(f"traceloop-sdk {version}'s sdist has no tests/ folder\n")
    if marker.exists():
        raise NoUpstreamTests(marker.read_text().strip())
    return tests


def _extract_tests(archive: Path, dest: Path) -> None:
    """Only ``<sdist>/tests/**``: traceloop's own source must never shadow the installed one."""
    staging = dest / "tests.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) > 2 and parts[1] == "tests" and (member.isfile() or member.isdir()):
                member.name = str(Path(*parts[2:]))
                tar.extract(member, staging, filter="data")
    if staging.is_dir() and any(staging.iterdir()):
        staging.rename(dest / "tests")
    else:
        shutil.rmtree(staging, ignore_errors=True)


def installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def excluded_tests() -> dict[str, str]:
    """Tests deselected in both modes in this environment, with the reason."""
    out = dict(EXCLUDED)
    for test_id, (distribution, reason) in NEEDS_PACKAGE.items():
        if not installed(distribution):
            out[test_id] = f"{reason}; {distribution} is not installed here"
    return out


def prepare(tests: Path, work: Path, mode: str) -> Path:
    """A scratch copy of upstream's tests for one mode; returns the folder to run pytest in."""
    root = work / mode
    shutil.copytree(tests, root / "tests")
    if mode == "tfy":
        (root / "tests" / "conftest.py").rename(root / "tests" / "upstream_conftest.py")
        shutil.copy(HARNESS / "tfy_conftest.py", root / "tests" / "conftest.py")
    return root


def child_env(results: Path, exclude: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("TFY_", "TRACELOOP_", "OTEL_", "PYTEST_", "OPENAI_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(HARNESS), env.get("PYTHONPATH")])),
        CONFORMANCE_RESULTS=str(results),
        CONFORMANCE_EXCLUDE=str(exclude),
        # Both modes: traceloop's metrics would go to api.traceloop.com (refused offline, but
        # retried with back-off at exit).
        TRACELOOP_METRICS_ENABLED="false",
        # Both modes: an OTLP export to a host the offline run refuses gives up after 1 s
        # instead of retrying for 10 s (each span, when the processor is synchronous).
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="1",
    )
    return env


@dataclass
class Run:
    mode: str
    tests: dict[str, dict[str, str]]
    network: dict[str, list[str]]
    returncode: int
    output: str

    def outcome(self, test_id: str) -> str:
        return self.tests.get(test_id, {}).get("outcome", "missing")


def selection() -> list[str]:
    """What to run: the whole suite, or, where LangChain is installed, only its LangChain tests.

    The LangChain tests need langchain-openai, which only the framework environments have;
    everything else runs in the base environment. With every framework installed, each
    ``Traceloop.init`` takes about 20 s (it instruments them all), and upstream's fixtures call
    it again and again, so the framework environments run just the tests only they can run.
    """
    return list(LANGCHAIN) if installed("langchain-openai") else ["tests"]


def run_mode(root: Path, mode: str, exclude: Path) -> subprocess.Popen[str]:
    results = root / "results.json"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            *selection(),
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-p",
            "tfy_conformance",
            "-q",
            "--rootdir",
            str(root),
            "--record-mode=none",
            "--continue-on-collection-errors",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-W",
            "ignore::DeprecationWarning",
        ],
        cwd=root,
        env=child_env(results, exclude),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def collect(root: Path, mode: str, proc: subprocess.Popen[str]) -> Run:
    output, _ = proc.communicate(timeout=CHILD_TIMEOUT)
    results = root / "results.json"
    if proc.returncode not in (0, 1) or not results.exists():
        raise RuntimeError(
            f"the {mode} run failed or wrote no results (exit {proc.returncode}):\n{output[-4000:]}"
        )
    data = json.loads(results.read_text())
    return Run(mode, data["tests"], data["network"], proc.returncode, output)


@dataclass
class Comparison:
    version: str
    plain: Run
    tfy: Run
    regressions: dict[str, str] = field(default_factory=dict)
    deliberate: dict[str, str] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)

    def ids(self) -> list[str]:
        return sorted(k for k, v in self.plain.tests.items() if v["outcome"] != "collect-error")

    def count(self, run: Run) -> int:
        return sum(run.outcome(t) in PASSING for t in self.ids())

    def summary(self) -> str:
        total = len(self.ids())
        ran = total - len(self.excluded)
        lines = [
            f"traceloop-sdk {self.version}: {total} upstream tests, {len(self.excluded)} "
            f"excluded in both modes, {ran} run; {self.count(self.plain)} pass plain, "
            f"{self.count(self.tfy)} pass through truefoundry_tracing; "
            f"{len(self.regressions)} regressions, {len(self.deliberate)} deliberate differences",
        ]
        for test_id, detail in sorted(self.regressions.items()):
            lines.append(f"  REGRESSION {test_id}: {detail}")
        for test_id, reason in sorted(self.excluded.items()):
            lines.append(f"  excluded {test_id}: {reason}")
        for test_id, reason in sorted(self.deliberate.items()):
            lines.append(f"  deliberate {test_id}: {reason}")
        for test_id in self.stale:
            lines.append(f"  STALE (passes through us, remove from DELIBERATE) {test_id}")
        for mode, run in (("plain", self.plain), ("tfy", self.tfy)):
            for test_id, hosts in sorted(run.network.items()):
                lines.append(f"  network attempt ({mode}) in {test_id}: {sorted(set(hosts))}")
        return "\n".join(lines)


def compare(version: str, plain: Run, tfy: Run, excluded: dict[str, str]) -> Comparison:
    result = Comparison(version, plain, tfy)
    result.excluded = {t: r for t, r in excluded.items() if t in plain.tests}
    for test_id in result.ids():
        if plain.outcome(test_id) not in PASSING:
            continue
        if tfy.outcome(test_id) in PASSING:
            if test_id in DELIBERATE:
                result.stale.append(test_id)
            continue
        detail = tfy.tests.get(test_id, {}).get("detail") or _collect_error(tfy, test_id)
        if test_id in DELIBERATE:
            result.deliberate[test_id] = DELIBERATE[test_id]
        else:
            result.regressions[test_id] = f"{tfy.outcome(test_id)}: {detail}"
    return result


def _collect_error(run: Run, test_id: str) -> str:
    module = test_id.split("::")[0]
    return run.tests.get(module, {}).get("detail", "")[-2000:]


def run_suite(version: str, work: Path) -> Comparison:
    """Download (once), run both modes side by side, and compare."""
    tests = upstream_tests(version)
    excluded = excluded_tests()
    exclude_file = work / "excluded.json"
    exclude_file.write_text(json.dumps(excluded))
    roots = {mode: prepare(tests, work, mode) for mode in MODES}
    procs = {mode: run_mode(roots[mode], mode, exclude_file) for mode in MODES}
    runs = {mode: collect(roots[mode], mode, procs[mode]) for mode in MODES}
    return compare(version, runs["plain"], runs["tfy"], excluded)


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        comparison = run_suite(installed_version(), Path(work))
        print(comparison.summary())
        if "-v" in sys.argv:
            for test_id in comparison.ids():
                print(
                    f"{comparison.plain.outcome(test_id):10} {comparison.tfy.outcome(test_id):10} "
                    f"{test_id}"
                )
        return 1 if comparison.regressions or comparison.stale else 0


if __name__ == "__main__":
    sys.exit(main())
