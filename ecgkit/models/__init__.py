"""Models: the Hannun 1D ResNet with one logistic head per task."""
from __future__ import annotations

from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig, make_model

__all__ = ["ResNet1d", "ResNet1dConfig", "make_model"]
