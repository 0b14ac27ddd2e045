"""A convolutional VAE for small images (28x28 MNIST-like by default).

It is a :class:`~gentorch.models.VAE` with convolutional networks: the same likelihoods, losses
and methods, and the same flattened input ``x: (B, C*H*W)`` (the layout of
``gentorch.data.load``), which it reshapes to ``(B, C, H, W)`` inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from gentorch._checks import check_positive_int
from gentorch.models.vae import VAE, GaussianVariance, Likelihood, _activation

__all__ = ["ConvVAE"]


class _ConvDecoder(nn.Module):
    """``z: (..., L) -> (..., C*H*W)``: MLP to a ``(c, H/2^n, W/2^n)`` map, then ``n``
    stride-2 transposed convolutions that double it back to ``(C, H, W)``."""

    def __init__(self, net: nn.Sequential, latent_dim: int, output_dim: int) -> None:
        super().__init__()
        self.net = net
        self.latent_dim = latent_dim
        self.output_dim = output_dim

    def forward(self, z: Tensor) -> Tensor:
        # Convolutions take one batch dimension: fold the leading ones (e.g. K samples) into it.
        out: Tensor = self.net(z.reshape(-1, z.shape[-1]))
        return out.reshape(*z.shape[:-1], self.output_dim)


class ConvVAE(VAE):
    """Convolutional VAE for images ``(C, H, W)``, taking flattened input ``(B, C*H*W)``.

    Encoder: ``n = len(channels)`` stride-2 ``4x4`` convolutions (each halves ``H`` and ``W``:
    ``28 -> 14 -> 7`` with the default two), a ``Linear`` to ``hidden_dim``, and a ``Linear``
    to ``2L`` (``mu`` then ``logvar``). Decoder: the mirror image, ``Linear`` layers to a
    ``(channels[-1], H/2^n, W/2^n)`` map, then stride-2 ``4x4`` transposed convolutions back to
    ``(C, H, W)``, flattened. Activations between all layers, none after the last.

    Everything else (likelihoods, ``elbo``, ``iwae_bound``, ``loss``, ``sample`` returning
    ``(n, C*H*W)``) is :class:`VAE`'s. Reshape outputs to images with
    ``out.view(-1, *model.image_shape)``.

    Args:
        latent_dim: ``L``.
        likelihood: ``"bernoulli"`` (``decode`` returns logits) or ``"gaussian"`` (means).
        image_shape: ``(C, H, W)``; ``H`` and ``W`` must be divisible by ``2 ** len(channels)``.
        channels: output channels of the encoder's convolutions (the decoder reverses them).
        hidden_dim: width of the fully connected layer between the convolutions and the latent.
        gaussian_variance, gaussian_logvar, activation: as for :class:`VAE`.

    Raises:
        ValueError: ``image_shape`` is not three positive ints, ``H`` or ``W`` is not divisible
            by ``2 ** len(channels)``, ``channels`` is empty or holds a non-positive entry, a
            non-positive ``hidden_dim``, and as for :class:`VAE`.
        TypeError: ``image_shape`` or ``channels`` is not a sequence, and as for :class:`VAE`.

    Shapes:
        ``x: (B, C*H*W)``; ``encode(x) -> (mu, logvar)`` each ``(B, L)``;
        ``decode(z: (..., L)) -> (..., C*H*W)``; ``sample(n) -> (n, C*H*W)``.

    Example:
        >>> import torch
        >>> from gentorch.models import ConvVAE
        >>> model = ConvVAE(latent_dim=16)  # 28x28 grey-level images
        >>> mu, logvar = model.encode(torch.rand(8, 784))
        >>> mu.shape
        torch.Size([8, 16])
        >>> model.sample(4).view(-1, *model.image_shape).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(
        self,
        latent_dim: int,
        likelihood: Likelihood = "bernoulli",
        image_shape: Sequence[int] = (1, 28, 28),
        *,
        channels: Sequence[int] = (32, 64),
        hidden_dim: int = 256,
        gaussian_variance: GaussianVariance = "fixed",
        gaussian_logvar: float = 0.0,
        activation: str = "relu",
    ) -> None:
        # VAE.__init__ builds MLPs; a ConvVAE shares the rest of its set-up.
        nn.Module.__init__(self)
        for name, value in (("image_shape", image_shape), ("channels", channels)):
            if isinstance(value, (str, Tensor)) or not isinstance(value, Sequence):
                raise TypeError(f"{name}: expected a sequence of ints, got {type(value).__name__}")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape: expected (C, H, W), got {tuple(image_shape)}")
        C, H, W = (check_positive_int("image_shape[*]", s) for s in image_shape)
        chans = tuple(check_positive_int("channels[*]", c) for c in channels)
        if not chans:
            raise ValueError("channels: expected at least one convolution, got ()")
        scale = 2 ** len(chans)
        if H % scale or W % scale:
            raise ValueError(
                f"image_shape: H and W must be divisible by 2**len(channels) = {scale}, "
                f"got {(C, H, W)}"
            )
        hidden = check_positive_int("hidden_dim", hidden_dim)
        self._setup(C * H * W, [hidden], latent_dim, likelihood, activation)
        self._setup_variance(gaussian_variance, gaussian_logvar)
        self.image_shape = (C, H, W)
        self.channels = chans
        self.hidden_dim = hidden
        L = self.latent_dim
        h, w = H // scale, W // scale
        flat = chans[-1] * h * w

        encoder: list[nn.Module] = [nn.Unflatten(1, (C, H, W))]
        for c_in, c_out in zip((C, *chans[:-1]), chans, strict=True):
            # 4x4 kernel, stride 2, padding 1: (H, W) -> (H/2, W/2)
            encoder += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), _activation(activation)]
        encoder += [
            nn.Flatten(),
            nn.Linear(flat, hidden),
            _activation(activation),
            nn.Linear(hidden, 2 * L),
        ]
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [
            nn.Linear(L, hidden),
            _activation(activation),
            nn.Linear(hidden, flat),
            _activation(activation),
            nn.Unflatten(1, (chans[-1], h, w)),
        ]
        outs = (*reversed(chans[:-1]), C)
        for i, (c_in, c_out) in enumerate(zip(reversed(chans), outs, strict=True)):
            # 4x4 transposed kernel, stride 2, padding 1: (h, w) -> (2h, 2w)
            decoder.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(chans) - 1:
                decoder.append(_activation(activation))
        decoder.append(nn.Flatten())
        self.decoder = _ConvDecoder(nn.Sequential(*decoder), L, C * H * W)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments as a JSON-able dict (see :meth:`VAE.config`).

        Example:
            >>> from gentorch.models import ConvVAE
            >>> ConvVAE(16).config()["image_shape"]
            [1, 28, 28]
        """
        return {
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "image_shape": list(self.image_shape),
            "channels": list(self.channels),
            "hidden_dim": self.hidden_dim,
            "gaussian_variance": self.gaussian_variance,
            "gaussian_logvar": self.gaussian_logvar,
            "activation": self.activation,
        }

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, image_shape={self.image_shape}"
