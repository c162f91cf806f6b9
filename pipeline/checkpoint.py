"""``models/<variant>.pt``: weights plus everything needed to rebuild and feed the model.

A checkpoint is a plain dict saved with ``torch.save``:

``format``      checkpoint format version (int)
``variant``     variant name, e.g. ``"prac5"``
``model``       ``{"name": registry name, "args": keyword arguments}``
``input``       ``{"channels", "height", "width", "mean", "std"}``: the evaluation preprocessing
``classes``     class names, index = label
``state_dict``  the weights (float32)
``params``      the variant's full ``params.yaml`` entry, for provenance

It is serialized to memory first and written atomically, so the bytes do not
depend on the (temporary) file name torch would otherwise embed.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.config import VariantConfig, build, validate_variant
from pipeline.io import atomic_path
from pipeline.models import create_model
from pipeline.normalizer import Normalizer

FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    variant: str
    model: nn.Module
    normalizer: Normalizer
    input_shape: tuple[int, int, int]  # (channels, height, width)
    classes: list[str]
    params: dict


def save_checkpoint(path: str | Path, variant: VariantConfig, model: nn.Module, normalizer: Normalizer,
                    input_shape: tuple[int, int, int], classes: list[str]) -> None:
    channels, height, width = input_shape
    payload = {
        "format": FORMAT_VERSION,
        "variant": variant.name,
        "model": {"name": variant.model.name, "args": dict(variant.model.args)},
        "input": {"channels": channels, "height": height, "width": width, **normalizer.state()},
        "classes": list(classes),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "params": dataclasses.asdict(variant),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (train it first: `dvc repro train@<variant>`)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {payload.get('format')!r}, expected {FORMAT_VERSION}")
    model = create_model(payload["model"]["name"], **payload["model"]["args"])
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    info = payload["input"]
    return LoadedModel(
        variant=payload["variant"],
        model=model,
        normalizer=Normalizer(info["mean"], info["std"]),
        input_shape=(info["channels"], info["height"], info["width"]),
        classes=payload["classes"],
        params=payload["params"],
    )


def variant_from_checkpoint(loaded: LoadedModel, where: str = "checkpoint") -> VariantConfig:
    """The typed variant config stored in a checkpoint's ``params`` (what the model was trained with)."""
    raw = dict(loaded.params)
    name = raw.pop("name", loaded.variant)
    variant = build(VariantConfig, raw, f"{where}: params", name=name)
    validate_variant(variant, f"{where}: params")
    return variant
