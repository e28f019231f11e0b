"""The brief's open questions as studies: train what each needs, measure it on the test set, save it.

- ``runner``: what every study shares: :class:`~vae.studies.runner.StudySettings`, the
  :class:`~vae.studies.runner.Study` a study declares, its :class:`~vae.studies.runner.Variant` models,
  running them into a :class:`~vae.studies.runner.StudyResult`, and the result's files;
- ``registry``: the studies by name (``STUDIES``, ``get_study``) and the calls that take a name
  (``variants``, ``run_study``, ``summarise``, ``save_result``, ``load_result``);
- one module per study, each with its variants, its extra measurements, its answer in words and its
  text for the page: ``pca_vs_ae`` (and the tied-weights comparison), ``conv``, ``beta``, ``class_aware``,
  ``invertible``, ``conv_filters``, ``decoupled``;
- ``patches``: the patch PCA the ``conv_filters`` study compares first layers with;
- ``cli``: ``python -m vae.experiments`` (``vae/experiments.py`` forwards to it).

The Experiments page's figures are in :mod:`vae.plots.studies`, its widgets in ``app/experiments.py``.
"""
