"""The colours every figure of the dashboard shares, so a class, a model or a loss term looks the same everywhere.

The page's components receive them from Python in their data (``app/web_planes.py``), never restated in JS.
"""

from __future__ import annotations

from plotly.colors import qualitative

# D3's category10: ten colours that stay distinct on white; both scatter plots and every per-class
# figure index into this one tuple, so "3" is the same green everywhere.
DIGIT_COLORS: tuple[str, ...] = tuple(qualitative.D3)
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))

# Model colours for bar charts, deliberately outside DIGIT_COLORS' meaning (these are models, not classes).
MODEL_COLORS: dict[str, str] = {"AE": "#4C78A8", "VAE": "#E45756", "PCA": "#9D9D9D"}
TERM_COLORS: tuple[str, ...] = tuple(qualitative.Dark2)
