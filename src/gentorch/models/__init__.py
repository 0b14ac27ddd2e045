"""Models: variational autoencoders (MLP, convolutional, conditional) and GANs.

Models depend on :mod:`gentorch.layers` and :mod:`gentorch.losses`; they never load data.
"""

from gentorch.models.conv_vae import ConvVAE
from gentorch.models.resnet_gan import SNGANResNetDiscriminator, SNGANResNetGenerator
from gentorch.models.sngan import SNGANDiscriminator, SNGANGenerator
from gentorch.models.vae import VAE, ConditionalVAE

__all__: list[str] = []
__all__ += ["VAE", "ConditionalVAE", "ConvVAE"]
__all__ += ["SNGANDiscriminator", "SNGANGenerator"]
__all__ += ["SNGANResNetDiscriminator", "SNGANResNetGenerator"]
