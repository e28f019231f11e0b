"""The studies by name, and the calls that take a study's name: its variants, a run, its answer, its files.

Each study is one module with one :class:`~vae.studies.runner.Study` subclass; :data:`STUDIES` names them,
in the order the command line runs them, as PyTorch-VAE's ``vae_models`` dict names its models. A new
study is one new module and one entry here. Code looks a study up with :func:`get_study` and calls its
hooks; the functions below do that for the calls every caller makes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import torch

from vae.models import LatentModel
from vae.studies import beta, class_aware, conv, conv_filters, decoupled, invertible, pca_vs_ae
from vae.studies.runner import (
    Progress,
    Study,
    StudyResult,
    StudySettings,
    Variant,
    VariantMapper,
    read_result,
    run,
    write_result,
)

STUDIES: dict[str, Study] = {
    study.name: study
    for study in (
        pca_vs_ae.PcaVsAe(),
        conv.Conv(),
        beta.Beta(),
        class_aware.ClassAware(),
        invertible.Invertible(),
        conv_filters.ConvFilters(),
        decoupled.Decoupled(),
    )
}


def get_study(name: str) -> Study:
    """The study called ``name``; a ValueError naming the known ones otherwise."""
    if name not in STUDIES:
        raise ValueError(f"study must be one of {list(STUDIES)}, got {name!r}")
    return STUDIES[name]


def variants(study: str, settings: StudySettings) -> list[Variant]:
    """The models behind ``study``, in the order they are trained."""
    return get_study(study).variants(settings)


def run_study(
    study: str,
    settings: StudySettings = StudySettings(),  # noqa: B008 (frozen: one shared default is safe)
    data_dir: str | None = None,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    on_model: Callable[[Variant, LatentModel, dict[str, Any], list[dict[str, Any]]], None] | None = None,
    map_variants: VariantMapper | None = None,
    only: Collection[str] | None = None,
) -> StudyResult:
    """Train and measure every variant of ``study`` (:func:`vae.studies.runner.run`, whose arguments these are)."""
    return run(
        get_study(study),
        settings,
        data_dir,
        progress=progress,
        should_stop=should_stop,
        data=data,
        on_model=on_model,
        map_variants=map_variants,
        only=only,
    )


def summarise(result: StudyResult) -> list[str]:
    """One or more sentences answering the result's question with its measured numbers."""
    return get_study(result.study).summarise(result)


def save_result(result: StudyResult, directory: str | Path) -> Path:
    """Write ``<study>.json`` + ``<study>.npz`` into ``directory`` atomically; returns the JSON's path."""
    return write_result(result, directory, get_study(result.study).question)


def load_result(directory: str | Path, study: str) -> StudyResult:
    """Read ``study``'s saved result from ``directory``; raises :class:`~vae.studies.runner.ExperimentFileError`
    saying what is wrong with the files."""
    return read_result(directory, get_study(study).name)
