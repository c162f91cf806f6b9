"""Stage ``mitigation@<row>``: one row of the CSE 849 mitigation study, trained.

    python -m pipeline.stages.mitigation ROW [--params params.yaml] [--models models/mitigation]
        [--runs reports/mitigation/runs]

Reads params ``mitigation_study`` and ``variants.<base>``. Trains the base variant with the
row's augmentation for the study's epochs (:mod:`pipeline.studies.mitigation`) and writes
``models/mitigation/<row>.pt`` and ``reports/mitigation/runs/<row>.json``;
``evaluate_mitigation@<row>`` evaluates that checkpoint.
"""

from __future__ import annotations

from pipeline.core.cli import PARAMS, arg, path_arg, stage_main
from pipeline.studies.mitigation import mitigation

main = stage_main(
    __doc__,
    [
        arg("row", help="a key of mitigation_study.rows"),
        PARAMS,
        path_arg("--models", "models/mitigation", "checkpoint folder"),
        path_arg("--runs", "reports/mitigation/runs", "training-record folder"),
    ],
    lambda args: mitigation(args.row, args.params, args.models, args.runs),
)


if __name__ == "__main__":
    main()
