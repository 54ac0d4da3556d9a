"""Saliency Guided Training in JAX/Flax."""

from sgt import adapters, losses, masking, saliency, text

__version__ = "0.1.0"
__all__ = ["adapters", "losses", "masking", "saliency", "text"]
