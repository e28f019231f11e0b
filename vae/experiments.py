"""``python -m vae.experiments ...``: the studies' command line, which lives in :mod:`vae.studies.cli`.

Kept as its own file because saved models name this command (``model.json``'s ``extra.command``) and the
README and the Makefile give it. Code imports :mod:`vae.studies`, never this module.
"""

from __future__ import annotations

import sys

from vae.studies.cli import main

if __name__ == "__main__":
    sys.exit(main())
