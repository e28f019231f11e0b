"""Nothing a user hands the app is executed, the server is private by default, and a full disk loses nothing."""

from __future__ import annotations

import ast
import errno
import os
import tomllib
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, SEED
from vae import files, store
from vae.models import ModelConfig, build_model

# vae/ recursively: its sub-packages (studies, training, plots, onnx) read files too.
APP_SOURCES = sorted(
    [*REPO.glob("vae/**/*.py"), *REPO.glob("app/*.py"), *REPO.glob("app_pages/*.py"), REPO / "dashboard.py"]
)
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve", "yaml"}


def unsafe_uses(path: Path, root: Path = REPO) -> list[str]:
    """Calls and imports that can execute data as code, found in the syntax tree (not in comments)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"import {n}" for n in names if n and n.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if isinstance(func, ast.Name) and name in {"eval", "exec", "__import__"}:  # not model.eval()
                found.append(f"{name}()")
            if owner == "torch" and name == "load":
                found.append("torch.load()")
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"{owner}.{name}(allow_pickle=...)")
    return [f"{path.relative_to(root)}: {use}" for use in found]


def test_no_code_path_can_unpickle_or_evaluate() -> None:
    assert len(APP_SOURCES) > 10
    assert [use for path in APP_SOURCES for use in unsafe_uses(path)] == []


def test_the_scanner_would_notice(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport numpy as np\neval('1')\nmodel.eval()\ntorch.load('m.pt')\n"
        "np.load('x.npz', allow_pickle=True)\n"
    )
    found = [use.split(": ", 1)[1] for use in unsafe_uses(bad, root=tmp_path)]
    assert found == ["import pickle", "eval()", "torch.load()", "np.load(allow_pickle=...)"]


def test_server_defaults_are_private() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    assert config["server"]["enableXsrfProtection"] is True
    # The server's one cap (MB) is the ONNX import's; every uploader sets its own, smaller one where it is less.
    assert config["server"]["maxUploadSize"] == 200
    assert config["browser"]["gatherUsageStats"] is False


def test_a_full_disk_during_a_save_keeps_the_previous_model(tmp_path: Path, monkeypatch) -> None:
    torch.manual_seed(SEED)
    config = ModelConfig(kind="vae", latent_dim=2, hidden=(16,))
    first, second = build_model(config), build_model(config)
    folder = store.save_model(first, tmp_path / "m", metrics={"run": 1})
    real_fdopen = os.fdopen

    class FullDisk:
        """A file object whose writes fail the way a full disk makes them fail."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(store.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        store.save_model(second, folder, metrics={"run": 2})
    monkeypatch.setattr(store.os, "fdopen", real_fdopen)
    loaded, stored = store.load_model(folder)
    assert stored.metrics == {"run": 1}
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in first.state_dict().items())
    assert not list(folder.glob("*.tmp")) and len(list(folder.glob("weights-*.safetensors"))) == 1


def test_a_read_only_store_refuses_the_save_and_keeps_the_previous_model(tmp_path: Path, monkeypatch) -> None:
    torch.manual_seed(SEED)
    config = ModelConfig(kind="ae", latent_dim=2, hidden=(16,))
    first = build_model(config)
    folder = store.save_model(first, tmp_path / "m", metrics={"run": 1})

    real_open = os.open

    def read_only(
        path, flags, *args, **kwargs
    ):  # what creating a file meets in a read-only folder (root ignores chmod)
        if flags & os.O_CREAT:
            raise PermissionError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", read_only)
    with pytest.raises(PermissionError, match="Read-only"):
        store.save_model(build_model(config), folder, metrics={"run": 2})
    monkeypatch.undo()
    loaded, stored = store.load_model(folder)
    assert stored.metrics == {"run": 1}
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in first.state_dict().items())


def test_every_file_uploader_sets_its_own_size_cap() -> None:
    """The server accepts up to maxUploadSize for any uploader, so each one states the cap the browser enforces,
    and the digit uploader keeps a digit image's 5 MB (the import's own tests check 200 MB on the page)."""
    caps = {}
    for path in REPO.glob("app_pages/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "file_uploader":
                keywords = {k.arg: k.value for k in node.keywords}
                assert "max_upload_size" in keywords, f"{path.name}: a file_uploader without max_upload_size"
                caps[(path.name, ast.unparse(keywords["key"]))] = ast.unparse(keywords["max_upload_size"])
    assert caps[("digit.py", "'digit_upload'")] == "MAX_BYTES // 2 ** 20"
    assert ("train.py", "f'import_{what}'") in caps
    from vae.digits import MAX_BYTES

    assert MAX_BYTES // 2**20 == 5


def test_onnxruntime_runs_on_the_cpu_only_and_never_loads_an_operator_library() -> None:
    """Every session the code opens names the CPU provider alone; no custom operator library is ever registered."""
    sessions = 0
    for path in APP_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                assert node.attr != "register_custom_ops_library", f"{path.name} registers an operator library"
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "InferenceSession":
                sessions += 1
                providers = {k.arg: k.value for k in node.keywords}.get("providers")
                assert providers is not None and ast.literal_eval(providers) == ["CPUExecutionProvider"], path.name
    assert sessions >= 2  # vae/onnx/export.py's checks and vae/onnx/graphs.py's sessions
