"""Jigsaw: an inter-agency safeguarding message broker."""

__all__ = ["__version__"]

__version__ = "0.1.0"
