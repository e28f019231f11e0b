"""What every plane does the same way: which view of the latent it shows, and how it is titled."""

from __future__ import annotations

from vae.projections import available_views
from vae.store import StoredModel


def chosen_view(method: str, latent_dim: int) -> str:
    """``method`` if a ``latent_dim``-D latent offers it, else ``"identity"``: a 2-D latent is shown as it is,
    whatever view the (shared) selector holds for the wider models."""
    return method if method in available_views(latent_dim) else "identity"


def plane_title(stored: StoredModel, view_label: str, latent_dim: int, note: str = "") -> str:
    """``"name (VAE)"``, and for a latent wider than 2-D the view it is seen through:
    ``"name (VAE) · PCA view of 8-D"`` (``note`` is appended to that part)."""
    title = f"{stored.name} ({stored.config.kind.upper()})"
    return title if latent_dim == 2 else f"{title} · {view_label} view of {latent_dim}-D{note}"
