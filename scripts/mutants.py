"""Mutation testing of the core modules with mutmut: ``make mutants`` (all) or ``make mutants MODULE=vae/store.py``.

Each module is mutated on its own, against the test files that cover it (``MODULES``), in a scratch folder
``.cache/mutants/<module>/`` that links to the repository: mutmut copies the package there and runs the
chosen tests against each mutant, so the work tree is never changed. mutmut is not a dependency of the
app: it lives in its own virtual environment, ``.cache/mutvenv`` (created on first use, pinned below),
which sees .venv's packages through a ``.pth`` file. Prints, per module, the mutants, how many were killed,
survived (or timed out) and how long the run took; ``--show`` also prints each survivor's diff.

Runs on a fresh clone after ``make setup``; it needs no network after the first install of mutmut.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUTMUT = "mutmut==3.8.1"
VENV = Path(os.environ.get("MUTMUT_VENV", REPO / ".cache" / "mutvenv"))
WORK = REPO / ".cache" / "mutants"

# module -> the test files that cover it (only these run against its mutants; keep them fast), and any
# pytest arguments that narrow them.
MODULES: dict[str, list[str]] = {
    "vae/explore.py": ["tests/test_explore.py"],
    "vae/jobs.py": ["tests/test_jobs.py"],
    "vae/store.py": ["tests/test_store.py", "tests/test_timeline_store.py"],
    # Without the tests of a UMAP fit: each forked run compiles umap-learn anew (25 s), which made the module's
    # run over 30 minutes; UMAPView's fit is left to the suite (its mutants are reported as "no tests").
    "vae/projections.py": ["tests/test_projections.py", "tests/test_view_cache.py", "-m", "not fits_umap"],
    "vae/models/losses.py": ["tests/test_models.py"],
    "vae/metrics.py": ["tests/test_metrics.py"],
    # test_onnx_import.py checks the same rules end to end, but takes some 8 minutes a pass: too slow per mutant.
    "vae/onnx/checks.py": ["tests/test_onnx_checks.py"],
}
# What the tests read besides the package; linked, not copied (data alone is 100 MB).
LINKED = ["data", "models", "static", "app", "app_pages", "benchmarks", "experiments", "dashboard.py", ".cache/onnx"]


def mutmut_bin() -> Path:
    """mutmut in its own venv (never .venv): created once, seeing .venv's packages (torch, pytest) too."""
    binary = VENV / "bin" / "mutmut"
    if binary.exists():
        return binary
    python = REPO / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "venv", str(VENV)], check=True)
    site = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shared = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"], check=True, capture_output=True, text=True
    ).stdout.strip()
    Path(site, "repo_venv.pth").write_text(shared + "\n")
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", MUTMUT], check=True)
    return binary


def scratch(module: str) -> Path:
    """A fresh folder for ``module``'s run: setup.cfg for mutmut, links to the repository's files."""
    folder = WORK / module.replace("/", "_").removesuffix(".py")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("vae", "tests", "pyproject.toml"):  # what mutmut copies into mutants/
        (folder / name).symlink_to(REPO / name)
    (folder / "mutants").mkdir()
    for name in LINKED:  # what the copied tests find beside them, through REPO = mutants/
        if (REPO / name).exists():
            (folder / "mutants" / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / "mutants" / name).symlink_to(REPO / name)
    configure(folder, module)
    return folder


def configure(folder: Path, module: str) -> None:
    """mutmut's setup.cfg in ``folder``: what it mutates and the tests it runs (rewritten by ``--again`` too,
    so a rerun uses the test list as it is now)."""
    tests = "\n    ".join(MODULES[module])
    (folder / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths = vae\n"
        f"only_mutate = {module}\n"
        f"pytest_add_cli_args_test_selection =\n    {tests}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n"
        "process_isolation = forkserver\n"
    )


def results(folder: Path, env: dict) -> list[tuple[str, str]]:
    """(mutant name, status) of every mutant of the last run in ``folder``."""
    listing = subprocess.run(
        [str(mutmut_bin()), "results", "--all", "true"], cwd=folder, env=env, capture_output=True, text=True
    ).stdout
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^\s*([\w.]+):\s*(\w[\w ]*)$", listing, re.M)]


def run(module: str, show: bool, again: bool = False) -> dict:
    """Mutate ``module`` and run its tests on each mutant; ``again``: in the last run's folder, only the
    mutants that were not killed (after tests were added: mutmut finds the new tests and collects their
    coverage), the others keeping their results."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "MUTANT_UNDER_TEST": ""}
    env.pop("MUTANT_UNDER_TEST")
    folder = WORK / module.replace("/", "_").removesuffix(".py")
    names = [name for name, status in results(folder, env) if status != "killed"] if again and folder.exists() else []
    if names:
        configure(folder, module)
    else:
        folder = scratch(module)
    start = time.monotonic()
    subprocess.run([str(mutmut_bin()), "run", "--max-children", "2", *names], cwd=folder, env=env, check=False)
    seconds = time.monotonic() - start
    listing = "\n".join(f"    {name}: {status}" for name, status in results(folder, env))
    statuses = [m.group(1) for m in re.finditer(r":\s*(\w[\w ]*)$", listing, re.M)]
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    summary = {"module": module, "mutants": len(statuses), "seconds": round(seconds), **counts}
    if names:
        summary["rerun"] = len(names)
    if show:
        for line in listing.splitlines():
            name = line.split(":")[0].strip()
            if line.rstrip().endswith(("survived", "timeout", "no tests")):
                print(
                    subprocess.run([str(mutmut_bin()), "show", name], cwd=folder, capture_output=True, text=True).stdout
                )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", nargs="?", help=f"one of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--show", action="store_true", help="print each surviving mutant's diff")
    parser.add_argument(
        "--again", action="store_true", help="rerun only the last run's mutants that were not killed (after new tests)"
    )
    args = parser.parse_args(argv)
    if args.module and args.module not in MODULES:
        parser.error(f"module must be one of {', '.join(MODULES)}, got {args.module!r}")
    summaries = [run(module, args.show, args.again) for module in ([args.module] if args.module else MODULES)]
    for result in summaries:
        killed = result.get("killed", 0)
        share = f"{100 * killed / result['mutants']:.0f} %" if result["mutants"] else "-"
        print(json.dumps(result), f"killed {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
