"""Stage ``evaluate_mitigation@<row>``: one row of the CSE 849 mitigation study, evaluated.

    python -m pipeline.stages.evaluate_mitigation ROW [--models models/mitigation]
        [--runs reports/mitigation/runs] [--out reports/mitigation]

Reads the checkpoint and training record of ``mitigation@<row>``, evaluates the checkpoint as
``evaluate@`` does (test and validation accuracy, shortcut, occlusion, counterfactual;
:mod:`pipeline.inference.mitigation`) and writes ``reports/mitigation/<row>.json``.
"""

from __future__ import annotations

from pipeline.core.cli import arg, path_arg, stage_main
from pipeline.inference.mitigation import evaluate_mitigation

main = stage_main(
    __doc__,
    [
        arg("row", help="a key of mitigation_study.rows"),
        path_arg("--models", "models/mitigation", "checkpoint folder"),
        path_arg("--runs", "reports/mitigation/runs", "training-record folder"),
        path_arg("--out", "reports/mitigation", "output folder"),
    ],
    lambda args: evaluate_mitigation(args.row, args.models, args.runs, args.out),
)


if __name__ == "__main__":
    main()
