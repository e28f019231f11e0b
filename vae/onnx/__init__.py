"""Every model as a pair of ONNX graphs, so its decoder and encoder can run outside PyTorch (in a browser).

- ``graphs``: how any graph is read and run safely (parsed from bytes, no external data, CPU only), the
  tensors a graph stores, the opset it imports, and the tolerance two computations must agree to;
- ``export``: the project's own models, torch -> the standard ONNX pair, checked against the model, and
  the export cache the pages serve from (:func:`~vae.onnx.export.pair_for`);
- ``importer``: a stranger's encoder and decoder become a model of the store
  (:func:`~vae.onnx.importer.import_onnx`), through ``checks`` (read, fold in external data, probe) and
  ``standard`` (the standard pair built around the user's graphs);
- ``model``: :class:`~vae.onnx.model.OnnxModel`, the imported model behind the ``LatentModel`` interface;
- ``__main__``: ``python -m vae.onnx export|import|cache``.

Nothing is imported here: ``import vae.onnx`` costs nothing, and each caller names the module it uses.
"""
