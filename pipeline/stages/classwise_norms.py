"""Stage ``classwise_norms``: class-wise average feature-map norms (CSE 849 section 2.2).

    python -m pipeline.stages.classwise_norms [--model PATH] [--data PATH] [--out DIR]

Reads ``analysis.classwise_norms`` (``variant``, ``layers``, ``cv_threshold``),
``models/<variant>.pt`` and the validation split of the data it was trained on
(no augmentation, the checkpoint's normalizer). For each conv block in ``layers``:
``torch.norm`` of every channel over height and width (``b x c``), averaged per
class (``10 x c``). Writes the folder ``reports/<variant>/classwise_norms/`` (atomically:
on an error the previous folder, if any, is left as it was):

``classwise_norms.json``            DVC metrics: per layer (``conv1``, ``conv5``) a ``summary``
                                    (mean / median / max coefficient of variation across
                                    classes, number of class-specific filters: CV > threshold,
                                    dead filters) and ``per_filter`` (``filter_00``: cv,
                                    argmax_class, mean_norm)
``classwise_norms.csv``             the matrices: layer, filter, class, class_name, mean_norm
``classwise_norms_conv<k>.png``     one small bar plot (10 classes) per filter; class-specific
                                    filters framed in red
``classwise_norms_heatmap.png``     each matrix divided by the filter's mean over classes

The first-layer kernels are drawn by ``analyze@<variant>`` (``reports/<variant>/analysis/filters.png``).
"""

from __future__ import annotations

from pipeline.analysis.classwise_norms import classwise_norms
from pipeline.core.cli import PARAMS, path_arg, stage_main

main = stage_main(
    __doc__,
    [
        PARAMS,
        path_arg("--model", None, "checkpoint (default: models/<analysis.classwise_norms.variant>.pt)"),
        path_arg("--data", None, "dataset folder (default: the one stored in the checkpoint)"),
        path_arg("--out", None, "output folder (default: reports/<variant>/classwise_norms)"),
    ],
    lambda args: classwise_norms(args.params, args.model, args.data, args.out),
)


if __name__ == "__main__":
    main()
