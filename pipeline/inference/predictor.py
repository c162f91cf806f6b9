"""Inference from a checkpoint, in one place: evaluate, predict and the class-wise norms use it.

A :class:`Predictor` is a checkpoint loaded once (:func:`pipeline.training.checkpoint.load_checkpoint`,
with its typed variant config) and placed on the device in the memory format its variant
trained with, fed by the training's evaluation input pipeline (the checkpoint's normalizer,
no augmentation) at the variant's evaluation batch size and precision. Its logits are those
the training stage's own evaluation computes for the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.core.config import VariantConfig
from pipeline.core.errors import PipelineError
from pipeline.training.checkpoint import LoadedModel, load_checkpoint
from pipeline.training.engine import predict_logits
from pipeline.training.setup import InputPipeline, select_device


@dataclass
class Predictor:
    loaded: LoadedModel  # its model on the device ``prepare`` feeds, in the variant's memory format
    prepare: InputPipeline

    @classmethod
    def load(cls, path: str | Path, variant: str | None = None, device: torch.device | None = None) -> Predictor:
        """``path``'s checkpoint ready for inference; ``variant``: the one the caller names (another's is refused)."""
        loaded = load_checkpoint(path, variant=variant)
        device = device or select_device()
        channels_last = loaded.spec.train.channels_last
        loaded.model = loaded.model.to(device)
        if channels_last:
            loaded.model = loaded.model.to(memory_format=torch.channels_last)
        return cls(loaded, InputPipeline(loaded.normalizer, device, channels_last))

    @property
    def model(self) -> nn.Module:
        return self.loaded.model

    @property
    def spec(self) -> VariantConfig:
        return self.loaded.spec

    def logits(self, images_u8: torch.Tensor, hflip_average: bool | None = None) -> torch.Tensor:
        """Model outputs ``(N, classes)`` for uint8 images ``(N, C, H, W)``, in order; averaged over
        each image and its mirror as the variant's ``train.eval_hflip`` says, unless
        ``hflip_average`` says otherwise."""
        expected = tuple(self.loaded.input_shape)
        if tuple(images_u8.shape[1:]) != expected:
            raise PipelineError(
                f"images have shape {tuple(images_u8.shape[1:])} (C, H, W); the model expects {expected}"
            )
        train = self.spec.train
        return predict_logits(
            self.model,
            images_u8,
            self.prepare,
            train.eval_batch_size,
            train.precision,
            train.eval_hflip if hflip_average is None else hflip_average,
        )
