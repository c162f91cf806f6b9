"""Stage ``seed_study@<variant>``: one studied variant trained with the study's N seeds.

    python -m pipeline.stages.seed_study VARIANT [--params params.yaml] [--reports-dir reports]
                                                 [--out reports/seed_study/runs]

Reads params ``variants.<variant>`` and ``seed_study.seeds`` (N) and
``reports/<variant>/metrics.json``: the variant's committed run, which is the study's run with the variant's own seed (training is deterministic), so
it is read rather than repeated. Trains the other N - 1 seeds (``seed + 1`` ...) with the
variant's own set-up and writes ``reports/seed_study/runs/<variant>.json``: each run's
seed, test accuracy and loss and training time, and the mean, standard deviation, min and
max of the test accuracy. No model file is kept: the study is about the spread.
"""

from __future__ import annotations

from pipeline.core.cli import PARAMS, REPORTS_DIR, arg, path_arg, stage_main
from pipeline.studies.seed_study import seed_study

main = stage_main(
    __doc__,
    [
        arg("variant", help="a variant named by one of seed_study.comparisons"),
        PARAMS,
        REPORTS_DIR,
        path_arg("--out", "reports/seed_study/runs", "output folder"),
    ],
    lambda args: seed_study(args.variant, args.params, args.reports_dir, args.out),
)


if __name__ == "__main__":
    main()
