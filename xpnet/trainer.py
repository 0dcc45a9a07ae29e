"""The book's ``common/trainer.py`` under its own name: :class:`xpnet.training.Trainer`."""

from .training.trainer import Trainer

__all__ = ["Trainer"]
