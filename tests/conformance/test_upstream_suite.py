"""traceloop-sdk's own test suite, run plain and through truefoundry_tracing: no regressions.

The suite comes from the source distribution of the installed traceloop-sdk (downloaded at test
time, cached outside the repo, never committed); see ``_conformance.py``. A test that passes
with plain traceloop and fails through truefoundry_tracing is a regression, unless it is listed
in ``conformance_expectations.DELIBERATE`` (and, with the same reason, in
docs/compatibility.md). 0.38.12's sdist ships no tests: there ``test_traceloop_038.py`` pins
what openllmetry's v0.38.12 tests pin.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from _conformance import NoUpstreamTests, installed_version, run_suite, upstream_tests
from conformance_expectations import DELIBERATE

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"


@pytest.mark.slow
def test_traceloop_suite_passes_through_truefoundry_tracing(tmp_path: Path) -> None:
    version = installed_version()
    try:
        upstream_tests(version)
    except NoUpstreamTests as exc:
        pytest.skip(f"{exc}; tests/conformance/test_traceloop_038.py covers this line")
    except subprocess.CalledProcessError as exc:
        pytest.fail(
            f"Could not download traceloop-sdk {version}'s source distribution with pip "
            f"(exit {exc.returncode}): {exc.stderr!r}. The conformance run needs the package "
            "index; set CONFORMANCE_CACHE to a folder holding traceloop-sdk-"
            f"{version}/tests to run offline."
        )
    comparison = run_suite(version, tmp_path)
    print(comparison.summary())
    extra_network = {
        test_id: hosts
        for test_id, hosts in comparison.tfy.network.items()
        if set(hosts) - set(comparison.plain.network.get(test_id, []))
    }
    problems = []
    if comparison.regressions:
        problems.append(f"{len(comparison.regressions)} regressions against plain traceloop")
    if comparison.stale:
        problems.append("DELIBERATE entries that now pass (remove them here and in the docs)")
    if extra_network:
        problems.append(f"connections attempted only through truefoundry_tracing: {extra_network}")
    assert not problems, "; ".join(problems) + "\n" + comparison.summary()


def test_every_deliberate_difference_is_documented() -> None:
    """Each DELIBERATE entry is in docs/compatibility.md's "traceloop's own tests" section."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"^## traceloop's own tests$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, 'docs/compatibility.md has no section "## traceloop\'s own tests"'
    section = match.group(1)
    documented = set(re.findall(r"`(tests/[^`]+::[^`]+)`", section))
    assert documented == set(DELIBERATE), (
        "docs/compatibility.md and conformance_expectations.DELIBERATE disagree: "
        f"only in the docs {sorted(documented - set(DELIBERATE))}, "
        f"only in DELIBERATE {sorted(set(DELIBERATE) - documented)}"
    )
