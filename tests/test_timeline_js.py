"""The timeline player's pure JavaScript helpers (static/components/timeline/scales.js), under node --test."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO


def test_the_players_helpers_pass_their_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but node is missing (make test installs Debian's nodejs)")
        pytest.skip("node is not installed (make test installs it)")
    result = subprocess.run(
        [node, "--test", str(REPO / "static" / "tests" / "timeline_scales.test.js")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
