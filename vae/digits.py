"""A person's own digit, drawn or uploaded, turned into an MNIST image, and every bad file refused.

MNIST's own recipe (LeCun et al., the dataset's page): the digit's bounding box is scaled, keeping its
aspect ratio, to fit a 20 x 20 box (with anti-aliasing, hence grey levels), then placed in a 28 x 28 field so
that its centre of mass sits at the centre. Digits are white on black.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# An upload bigger than this is not a digit someone drew (the server caps uploads at 5 MB too).
MAX_BYTES = 5 * 1024 * 1024
# Checked before decoding, so a small file that claims huge dimensions (a decompression bomb) is refused
# without allocating them.
MAX_SIDE = 4096
FIELD, BOX = 28, 20


class ImageRejected(ValueError):
    """The file cannot be read as one still image of a digit; the message says why, for the user."""


def read_image(data: bytes) -> np.ndarray:
    """Bytes of a PNG, JPEG, GIF, BMP or WebP file -> grey levels float32 ``[H, W]`` in [0, 1], ink bright.

    Transparent pixels count as background; dark ink on light paper (the usual photo or scan) is inverted
    to MNIST's light ink on black, judged by the image's border.
    """
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageRejected(
            f"the file is {len(data) / 2**20:.1f} MB; a digit image must be under {MAX_BYTES // 2**20} MB"
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns between its two bomb limits; the size check below refuses those images anyway.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("this is not an image file (PNG, JPEG, GIF, BMP or WebP)") from None
    except Image.DecompressionBombError:  # Pillow's own guard, for claims far beyond ours
        raise ImageRejected(
            f"the image claims billions of pixels; at most {MAX_SIDE} x {MAX_SIDE} is accepted"
        ) from None
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageRejected("the image has no pixels")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageRejected(f"the image is {width} x {height} pixels; at most {MAX_SIDE} x {MAX_SIDE} is accepted")
    if getattr(image, "n_frames", 1) > 1:
        raise ImageRejected("animated images are not accepted: upload a single still frame")
    try:
        image.load()
    except (OSError, ValueError) as error:  # truncated or corrupt pixel data behind a valid header
        raise ImageRejected(f"the image data is damaged ({error})") from None
    return _to_grey(image)


def _to_grey(image: Image.Image) -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent background: composite onto white so that ink-on-transparent reads like ink on paper.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        span = values.max() - values.min()
        grey = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    else:
        grey = np.asarray(ImageOps.grayscale(image.convert("RGB")), dtype=np.float64) / 255.0
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.mean() > 0.5:  # light background: dark ink on paper
        grey = 1.0 - grey
    return grey.astype(np.float32)


def to_mnist(grey: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Grey levels ``[H, W]`` in [0, 1], ink bright -> an MNIST-style digit float32 ``[28, 28]`` in [0, 1].

    Pixels below ``threshold`` of the brightest are background (paper texture, JPEG noise). Raises
    :class:`ImageRejected` when nothing is left: a blank canvas or an empty upload.
    """
    grey = np.asarray(grey, dtype=np.float32)
    if grey.ndim != 2 or grey.size == 0:
        raise ImageRejected(f"expected a 2-D grey image, got shape {grey.shape}")
    peak = float(grey.max())
    if not np.isfinite(peak) or peak <= 0.05:
        raise ImageRejected("the image is blank: draw or upload a digit")
    ink = np.where(grey >= threshold * peak, grey / peak, 0.0)
    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    # Longest side to 20 px, aspect kept; LANCZOS anti-aliases as MNIST's normalisation did.
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    boxed = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS), dtype=np.float32)
    boxed /= 255.0
    # Centre of mass to the field's centre (MNIST: "translating the image so as to position this point at
    # the center of the 28x28 field").
    # In float64 and to a millionth of a pixel before rounding: a symmetric stroke puts its centre exactly
    # between two pixels, and the page (static/lib/image.js), summing in another order, must tip the same way.
    mass = boxed.astype(np.float64)
    total = mass.sum()
    ys, xs = np.indices(boxed.shape)
    com_y, com_x = (ys * mass).sum() / total, (xs * mass).sum() / total
    # MNIST's centre is pixel index 14 (its digits' mean centre of mass is (14.2, 14.2)), not 13.5.
    top = int(round(round(FIELD / 2 - com_y, 6)))
    left = int(round(round(FIELD / 2 - com_x, 6)))
    # Keep the whole digit in the field when its mass is far off-centre (e.g. a "7" with a long bar).
    top = min(max(top, 0), FIELD - boxed.shape[0])
    left = min(max(left, 0), FIELD - boxed.shape[1])
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + boxed.shape[0], left : left + boxed.shape[1]] = boxed
    return np.clip(field, 0.0, 1.0)


def digit_from_upload(data: bytes) -> np.ndarray:
    """Uploaded bytes -> MNIST-style ``[28, 28]``; :class:`ImageRejected` with a user-facing reason otherwise."""
    return to_mnist(read_image(data))
