"""The timeline player's pure JavaScript helpers (static/components/timeline/scales.js), under node --test."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO


def test_the_players_helpers_pass_their_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--test", str(REPO / "static" / "tests" / "timeline_scales.test.js")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
