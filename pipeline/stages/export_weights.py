"""Stage ``export_cse849``: a variant's weights alone, as the CSE 849 handout asks for them.

    python -m pipeline.stages.export_weights --variant cse849 --out reports/cse849/q1_model.pt

CSE 849 wants the best model's weights submitted as ``q1_model.pt``, loaded the handout's way:
``model.load_state_dict(torch.load("q1_model.pt"))`` into the network the student built. The
train stage's checkpoint (``models/<variant>.pt``) carries more (normalization, classes,
params); this writes ``torch.save(model.state_dict())`` only, after validating the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.cli import MODELS_DIR, arg, path_arg, stage_main
from pipeline.core.io import check_outputs
from pipeline.training.checkpoint import export_state_dict

log = logging.getLogger("pipeline.stages.export_weights")


def run(variant: str, models_dir: Path, out: Path) -> list[str]:
    check_outputs([out], {"checkpoint": models_dir / f"{variant}.pt"})  # --out must not overwrite its input
    names = export_state_dict(models_dir / f"{variant}.pt", out, variant)
    log.info("%s: %d tensors of %s", out, len(names), variant)
    return names


main = stage_main(
    __doc__,
    [
        arg(
            "--variant",
            required=True,
            help="a variant: a name under variants in params.yaml; reads <models-dir>/<variant>.pt",
        ),
        MODELS_DIR,
        path_arg("--out", None, "the .pt file to write", required=True),
    ],
    lambda args: run(args.variant, args.models_dir, args.out),
)


if __name__ == "__main__":
    main()
