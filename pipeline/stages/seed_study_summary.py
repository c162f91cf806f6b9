"""Stage ``seed_study_summary``: per studied comparison, the paired difference over N seeds.

    python -m pipeline.stages.seed_study_summary [--params params.yaml] [--runs reports/seed_study/runs]
                                                 [--comparisons reports/comparisons] [--out reports/seed_study]

Reads params ``seed_study`` and ``analysis.comparisons`` (no variant's params), every studied
variant's ``reports/seed_study/runs/<variant>.json`` (stage ``seed_study@<variant>``) and every
studied comparison's ``reports/comparisons/<key>.json`` (stage ``compare@<key>``: whether its
two variants differ in more than the factor). Writes:

``reports/seed_study/summary.json``     per variant the spread of its test accuracy; per
                                        comparison the paired differences a - b, their mean,
                                        t-interval, who is ahead in how many seeds, and the verdict
``reports/seed_study/differences.png``  each variant's accuracy per seed with mean +- std, and
                                        each comparison's paired differences with the interval
"""

from __future__ import annotations

from pipeline.analysis.seed_study_summary import summarize
from pipeline.core.cli import PARAMS, path_arg, stage_main

main = stage_main(
    __doc__,
    [
        PARAMS,
        path_arg("--runs", "reports/seed_study/runs", "folder of the seed_study@ runs files"),
        path_arg("--comparisons", "reports/comparisons", "folder of the compare@ files (their confounds)"),
        path_arg("--out", "reports/seed_study", "output folder"),
    ],
    lambda args: summarize(args.params, args.runs, args.comparisons, args.out),
)


if __name__ == "__main__":
    main()
