"""ebgan: energy-based generative adversarial networks and the GAN family on one trainer."""

__version__ = "0.1.0"
