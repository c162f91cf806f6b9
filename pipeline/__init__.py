"""cnn-pipeline: five university CNN assignments as one reproducible DVC pipeline."""

import importlib.util
import sys

__version__ = "0.1.0"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # "ruamel.yaml" without "ruamel"
        return False


# DVC runs each stage's `python -m pipeline.stages...` with the `python` first on PATH.
# The stage commands keep `python -m` on purpose: it imports the package from the
# working directory, which is what a queued `dvc exp run` needs (its copy of the code in a
# temporary workspace); the `cnn-pipeline` console script would import the editable
# install's checkout instead. The price is that `python` must be this project's
# environment: say so at once, instead of failing on the first `import torch`.
_MISSING = [name for name in ("torch", "torchvision", "yaml", "ruamel.yaml") if not _importable(name)]
if _MISSING:
    sys.exit(
        f"error: {sys.executable} cannot import {', '.join(_MISSING)}: it is not this project's "
        "environment. DVC runs each stage's `python` from PATH: use `make repro` (it puts .venv/bin "
        "first on PATH), or `source .venv/bin/activate` before `dvc repro` or `dvc exp run`."
    )
