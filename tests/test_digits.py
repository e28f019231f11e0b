"""Turning a drawn or uploaded digit into an MNIST image, and refusing every kind of bad file."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import REPO
from vae.digits import MAX_SIDE, ImageRejected, digit_from_upload, read_image, to_mnist


def png(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=options.pop("format", "PNG"), **options)
    return out.getvalue()


def drawn_one(size: int = 300, ink: int = 0, paper: int = 255, offset: int = 0) -> Image.Image:
    """A '1' drawn with a thick pen, off-centre, as a person would on a canvas: dark ink on white."""
    image = Image.new("L", (size, size), paper)
    draw = ImageDraw.Draw(image)
    draw.line([(60 + offset, 40), (80 + offset, 250)], fill=ink, width=18)
    return image


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(digit.shape)
    return float((ys * digit).sum() / digit.sum()), float((xs * digit).sum() / digit.sum())


def test_a_drawn_digit_becomes_an_mnist_style_image() -> None:
    digit = digit_from_upload(png(drawn_one()))
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert 0.0 <= digit.min() and digit.max() <= 1.0 and digit.max() > 0.9
    rows, cols = np.nonzero(digit > 0.05)
    assert rows.max() - rows.min() + 1 <= 21 and cols.max() - cols.min() + 1 <= 21  # fits the 20 x 20 box
    assert rows.max() - rows.min() + 1 >= 19  # the long side is scaled to the box
    com_y, com_x = centre_of_mass(digit)
    assert abs(com_y - 14.0) <= 0.75 and abs(com_x - 14.0) <= 0.75
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # white ink on black, background clean


def test_position_and_size_on_the_canvas_do_not_matter() -> None:
    a = digit_from_upload(png(drawn_one(offset=0)))
    b = digit_from_upload(png(drawn_one(offset=150)))
    c = digit_from_upload(png(drawn_one().resize((120, 120))))
    assert np.abs(a - b).max() < 1e-6
    assert np.abs(a - c).mean() < 0.05


def test_light_ink_on_black_and_transparent_backgrounds_read_the_same() -> None:
    reference = digit_from_upload(png(drawn_one()))
    inverted = digit_from_upload(png(drawn_one(ink=255, paper=0)))
    rgba = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(60, 40), (80, 250)], fill=(0, 0, 0, 255), width=18)
    transparent = digit_from_upload(png(rgba))
    assert np.abs(reference - inverted).mean() < 0.02
    assert np.abs(reference - transparent).mean() < 0.02


@pytest.mark.parametrize("mode", ["RGB", "P", "CMYK", "I;16", "1"])
def test_other_modes_are_converted(mode: str) -> None:
    image = drawn_one()
    converted = image.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(image, dtype=np.uint16) * 257)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    digit = digit_from_upload(png(converted, format=fmt))
    assert np.abs(digit - digit_from_upload(png(drawn_one()))).mean() < 0.05


def test_a_real_mnist_digit_survives_the_round_trip() -> None:
    raw = REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    if not raw.is_file():
        pytest.skip("MNIST not fetched")
    from vae.data import load_mnist

    images, _ = load_mnist("test", REPO / "data")
    original = images[0].numpy()
    # As a person would upload it: dark on white, four times larger.
    upload = Image.fromarray(255 - original).resize((112, 112), Image.NEAREST)
    digit = digit_from_upload(png(upload))
    correlation = np.corrcoef(digit.ravel(), original.ravel() / 255.0)[0, 1]
    assert correlation > 0.85


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"%PDF-1.4 not a picture", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an image|damaged"),
    ],
)
def test_unreadable_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageRejected, match=message):
        digit_from_upload(data)


def test_a_huge_file_is_refused_before_decoding() -> None:
    with pytest.raises(ImageRejected, match="MB"):
        read_image(b"\x00" * (6 * 1024 * 1024))


def test_huge_dimensions_are_refused_without_allocating_them() -> None:
    # A valid PNG header that claims 10,000 x 10,000 pixels: a decompression bomb in a few bytes (below
    # Pillow's own bomb limit, so it is our size check that refuses it).
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")
    with pytest.raises(ImageRejected, match=f"at most {MAX_SIDE}"):
        read_image(bomb)


def test_animated_images_are_refused() -> None:
    frames = [drawn_one(offset=k * 40).convert("P") for k in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageRejected, match="animated"):
        read_image(out.getvalue())


def test_a_truncated_image_is_refused() -> None:
    data = png(drawn_one())
    with pytest.raises(ImageRejected, match="damaged|not an image"):
        read_image(data[: len(data) // 2])


@pytest.mark.parametrize("blank", [np.zeros((50, 50)), np.full((50, 50), 0.01)])
def test_a_blank_canvas_is_refused(blank: np.ndarray) -> None:
    with pytest.raises(ImageRejected, match="blank"):
        to_mnist(blank)
    with pytest.raises(ImageRejected, match="blank"):
        digit_from_upload(png(Image.new("L", (64, 64), 255)))


def test_to_mnist_refuses_wrong_shapes() -> None:
    with pytest.raises(ImageRejected, match="2-D"):
        to_mnist(np.ones((3, 28, 28)))


def test_claims_beyond_pillows_bomb_limit_are_refused_too() -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
    with pytest.raises(ImageRejected, match="billions of pixels"):
        read_image(bomb + chunk(b"IEND", b""))
