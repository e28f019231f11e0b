"""The one atomic write every module uses: all of the new bytes or none, and nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vae.files import TEMPORARY_GLOB, atomic_file, write_atomically


def test_a_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.json"
    target.write_bytes(b"old")
    write_atomically(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert list(tmp_path.glob(TEMPORARY_GLOB)) == []


def test_a_failure_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="half way"):
        with atomic_file(target) as f:
            f.write(b"half of the new")
            assert list(tmp_path.glob(TEMPORARY_GLOB)), "the bytes go to a temporary name first"
            raise ValueError("half way")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_the_new_file_gets_the_umask_permissions_of_a_plain_open(tmp_path: Path) -> None:
    before = os.umask(0o022)
    try:
        write_atomically(tmp_path / "a", b"x")
    finally:
        os.umask(before)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644


def test_a_missing_folder_is_an_error_not_a_silent_success(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "no" / "such" / "file", b"x")
