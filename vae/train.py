"""``python -m vae.train ...``: the trainer's command line, which lives in :mod:`vae.training.trainer`.

Kept as its own file because saved models name this command (``model.json``'s ``extra.command``). Code
imports :mod:`vae.training.trainer`, never this module: ``vae.train`` is the public function
(``vae.train(config, ...)``), and importing a submodule of that name would shadow it.
"""

from __future__ import annotations

import sys

from vae.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
