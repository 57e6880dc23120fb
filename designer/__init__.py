"""Designer: design neural networks visually, check shapes, train, export PyTorch code."""

__version__ = "0.1.0"
