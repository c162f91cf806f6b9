"""Stage ``analyze@<variant>``: filters, shapes, parameter counts and loss curve of one variant.

    python -m pipeline.stages.analyze VARIANT [--models-dir models] [--reports-dir reports]
                                              [--out reports/VARIANT/analysis]

Reads ``models/<variant>.pt`` (the model and the variant config it was trained with),
``reports/<variant>/{metrics,training}.json`` and ``reports/<variant>/plots/{steps,epochs}.csv``;
nothing else (no params, no data). Writes the folder ``reports/<variant>/analysis/``
(atomically: on an error the previous folder, if any, is left as it was):

``filters.png``        the first convolution's kernels (absent for a model without one, e.g. an MLP)
``filters.json``       what each of those kernels responds to: colour, brightness blob or edge/texture
``loss_curve.png``     DS 5220 Part 4.1: training loss vs training examples seen, test loss per epoch
``shape_trace.json``   Practical 5 Fig. 6: the tensor shape after every layer for one input
``shape_trace.md``     the same as a table
``layer_summary.md``   torchsummary-like table (batch of one)
``layer_summary.json`` the same rows (``input_shape``, ``layers`` [{layer, module, output_shape, params}])
``param_counts.json``  DS 5220 Q3.3: ``total``, ``trainable``, ``non_trainable`` (DVC metrics)
"""

from __future__ import annotations

from pipeline.analysis.analyze import analyze
from pipeline.core.cli import MODELS_DIR, REPORTS_DIR, VARIANT, path_arg, stage_main

main = stage_main(
    __doc__,
    [
        VARIANT,
        MODELS_DIR,
        REPORTS_DIR,
        path_arg("--out", None, "output folder (default: <reports-dir>/VARIANT/analysis)"),
    ],
    lambda args: analyze(args.variant, args.models_dir, args.reports_dir, args.out),
)


if __name__ == "__main__":
    main()
