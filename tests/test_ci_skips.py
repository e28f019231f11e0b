"""Under CI nothing may skip: tests/conftest.py turns a skip into a failure there (and only there)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import pytest

def test_skips():
    pytest.skip("no widget installed")

@pytest.mark.skipif(True, reason="not on this platform")
def test_marked():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_to_fail():
    assert False

def test_passes():
    pass
"""


def run_probe(tmp_path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "REQUIRE_BROWSER")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "test_probe.py",
        ],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_under_ci_is_a_failure_that_says_why(tmp_path) -> None:
    for env in ({"REQUIRE_BROWSER": "1"}, {"CI": "true"}):
        result = run_probe(tmp_path, **env)
        assert result.returncode == 1, result.stdout
        # A skip in the test's body fails it; one at setup (a skipif mark, a fixture's skip) errors it.
        assert "1 failed, 1 passed, 1 xfailed, 1 error" in result.stdout, result.stdout
        assert "skipped under CI, where nothing may skip" in result.stdout
        assert "no widget installed" in result.stdout and "not on this platform" in result.stdout


def test_outside_ci_a_skip_stays_a_skip(tmp_path) -> None:
    result = run_probe(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout, result.stdout
