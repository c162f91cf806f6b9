"""cnn-pipeline: five university CNN assignments as one reproducible DVC pipeline."""

__version__ = "0.1.0"
