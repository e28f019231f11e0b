"""The encoder and decoder bodies the models are built from: dense, tied, invertible and convolutional."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vae.models.config import IMAGE_SHAPE, N_PIXELS

# ---------------------------------------------------------------------------------------------
# Encoder / decoder bodies. Each encoder ends in a ``[B, out_dim]`` linear head; each decoder returns
# logits ``[B, 1, 28, 28]`` so BCE can use the numerically stable ``*_with_logits`` form.


def _activation(linear: bool) -> nn.Module:
    # Identity keeps the layer indices (and so the weights' names) of the non-linear model.
    return nn.Identity() if linear else nn.ReLU()


def _mlp(sizes: list[int], linear: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), _activation(linear)]
    return layers


class DenseEncoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        sizes = [N_PIXELS, *hidden]
        self.body = nn.Sequential(nn.Flatten(), *_mlp(sizes))
        self.head = nn.Linear(sizes[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, out_dim]
        return self.head(self.body(x))


class DenseDecoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        sizes = [latent_dim, *reversed(hidden)]
        self.body = nn.Sequential(*_mlp(sizes))
        self.head = nn.Linear(sizes[-1], N_PIXELS)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> logits [B, 1, 28, 28]
        return self.head(self.body(z)).view(-1, *IMAGE_SHAPE)


class TiedDenseDecoder(nn.Module):
    """Decoder whose layers are the encoder's linear maps transposed, each with a bias of its own.

    Holding a reference to the encoder (not a copy) means one optimiser step moves both directions.
    """

    def __init__(self, encoder: DenseEncoder) -> None:
        super().__init__()
        # Registered as a plain attribute list, not a submodule, so the weights are saved once.
        self._linears = [m for m in [*encoder.body, encoder.head] if isinstance(m, nn.Linear)][::-1]
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(m.in_features)) for m in self._linears)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> logits [B, 1, 28, 28]
        h = z
        for i, (linear, bias) in enumerate(zip(self._linears, self.biases)):
            h = F.linear(h, linear.weight.t(), bias)
            if i < len(self._linears) - 1:
                h = F.relu(h)
        return h.view(-1, *IMAGE_SHAPE)


# Two stride-2 convolutions take 28x28 to 7x7; the decoder mirrors them with transposed convolutions.
CONV_CHANNELS = (32, 64)
CONV_KERNEL = 4  # each first-layer filter sees a 4 x 4 patch: the patch size the Experiments page compares with


# Slope of the invertible AE's leaky ReLU for negative inputs; its inverse multiplies them by 1 / slope.
# Far from 0 so the inverse does not blow small differences up (InvAuto uses leaky ReLU too).
INVERTIBLE_SLOPE = 0.5


class OrthonormalRows(nn.Module):
    """A parametrization (``torch.nn.utils.parametrize``): any full-rank V ``[m, n]`` (m <= n) -> W with W W^T = I.

    W is the Q factor of V^T's QR decomposition, transposed, with each row's sign chosen so that R's
    diagonal is positive: unique and continuous in V, and W = V when V already has orthonormal rows.
    Exact to float rounding, like torch's ``parametrizations.orthogonal``, which builds these rectangular
    weights from 400 Householder reflections one after the other: 0.48 s per training step of a 784 x 400
    layer on this machine, against 0.04 s for one QR (Cayley's map: 0.29 s).
    """

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # [m, n] -> [m, n], orthonormal rows
        q, r = torch.linalg.qr(v.t())  # q [n, m], r [m, m]
        signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(q.dtype)
        return (q * signs).t()


class InvertibleDenseEncoder(nn.Module):
    """784 -> hidden... -> D, each linear map with orthonormal rows (W W^T = I), leaky ReLU in between.

    Every layer has an exact right inverse: h -> W^T (h - b) undoes h = W x + b on the image of W, and
    leaky ReLU with slope 1 / s undoes slope s. :meth:`inverse` chains them backwards (InvAuto, Teng &
    Choromanska, 2019, sec. 3: the decoder is the encoder's inverse, not a second network), so
    ``forward(inverse(z)) == z`` for every code z, up to float rounding. The code layer's bias cancels in
    D(E(x)), so reconstruction alone never moves it: it only places the map.

    The orthonormal rows are a parametrization (:class:`OrthonormalRows`), recomputed at each access;
    :func:`materialised` turns them into plain tensors for export.
    """

    def __init__(self, hidden: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        from torch.nn.utils import parametrize

        sizes = [N_PIXELS, *hidden, latent_dim]
        self.linears = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        for linear in self.linears:
            # The layer's random initial weight becomes the unconstrained V; the weight used is its Q factor.
            parametrize.register_parametrization(linear, "weight", OrthonormalRows())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, D]
        h = x.flatten(1)
        last = len(self.linears) - 1
        for i, linear in enumerate(self.linears):
            h = linear(h)
            if i < last:
                h = F.leaky_relu(h, INVERTIBLE_SLOPE)
        return h

    def inverse(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> pixels [B, 1, 28, 28], not squashed
        h = z
        last = len(self.linears) - 1
        for i in range(last, -1, -1):
            linear = self.linears[i]
            if i < last:
                h = F.leaky_relu(h, 1.0 / INVERTIBLE_SLOPE)  # the inverse of the slope-s leaky ReLU
            h = (h - linear.bias) @ linear.weight  # W^T (h - b): with W W^T = I, W of this is h - b again
        return h.view(-1, *IMAGE_SHAPE)


class InvertedDenseDecoder(nn.Module):
    """The decoder of an invertible AE: :meth:`InvertibleDenseEncoder.inverse`, with no weights of its own."""

    def __init__(self, encoder: InvertibleDenseEncoder) -> None:
        super().__init__()
        self._encoder = [encoder]  # a plain list, not a submodule: the weights are saved once, by the encoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> pixels [B, 1, 28, 28]
        return self._encoder[0].inverse(z)


class ConvEncoder(nn.Module):
    """``linear``: every activation is the identity, so the whole encoder is one affine map."""

    def __init__(self, hidden: tuple[int, ...], out_dim: int, linear: bool = False) -> None:
        super().__init__()
        c1, c2 = CONV_CHANNELS
        sizes = [c2 * 7 * 7, *hidden]
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, CONV_KERNEL, stride=2, padding=1),
            _activation(linear),  # [B, c1, 14, 14]
            nn.Conv2d(c1, c2, CONV_KERNEL, stride=2, padding=1),
            _activation(linear),  # [B, c2, 7, 7]
            nn.Flatten(),
            *_mlp(sizes, linear),
        )
        self.head = nn.Linear(sizes[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, out_dim]
        return self.head(self.body(x))


class ConvDecoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], latent_dim: int, linear: bool = False) -> None:
        super().__init__()
        c1, c2 = CONV_CHANNELS
        sizes = [latent_dim, *reversed(hidden), c2 * 7 * 7]
        self.body = nn.Sequential(
            *_mlp(sizes, linear),
            nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, CONV_KERNEL, stride=2, padding=1),
            _activation(linear),  # [B, c1, 14, 14]
            nn.ConvTranspose2d(c1, 1, CONV_KERNEL, stride=2, padding=1),  # [B, 1, 28, 28]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> logits [B, 1, 28, 28]
        return self.body(z)
