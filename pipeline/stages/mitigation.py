"""Stage ``mitigation@<row>``: one row of the CSE 849 mitigation study, trained and evaluated.

    python -m pipeline.stages.mitigation ROW [--params params.yaml] [--out reports/mitigation]

Reads params ``mitigation_study`` and ``variants.<base>``. Trains the base variant with the
row's augmentation for the study's epochs (:mod:`pipeline.studies.mitigation`), evaluates the
kept checkpoint as ``evaluate@`` does (test and validation accuracy, shortcut, occlusion,
counterfactual) and writes ``reports/mitigation/<row>.json``. No model file is kept: the
study is about the comparison; the main model is ``train@cse849``'s.
"""

from __future__ import annotations

from pipeline.core.cli import PARAMS, arg, path_arg, stage_main
from pipeline.studies.mitigation import run_mitigation_row

main = stage_main(
    __doc__,
    [
        arg("row", help="a key of mitigation_study.rows"),
        PARAMS,
        path_arg("--out", "reports/mitigation", "output folder"),
    ],
    lambda args: run_mitigation_row(args.row, args.params, args.out),
)


if __name__ == "__main__":
    main()
