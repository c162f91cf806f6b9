"""Stage ``seed_study_summary``: per studied comparison, the paired difference over N seeds.

    python -m pipeline.stages.seed_study_summary [--params params.yaml]
                                                 [--runs reports/seed_study/runs] [--out reports/seed_study]

Reads params ``seed_study`` and ``analysis.comparisons`` and every studied variant's
``reports/seed_study/runs/<variant>.json`` (stage ``seed_study@<variant>``). Writes:

``reports/seed_study/summary.json``     per variant the spread of its test accuracy; per
                                        comparison the paired differences a - b, their mean,
                                        t-interval, who is ahead in how many seeds, and the verdict
``reports/seed_study/differences.png``  each variant's accuracy per seed with mean +- std, and
                                        each comparison's paired differences with the interval
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.cli import PARAMS, path_arg, stage_main
from pipeline.comparisons import load_comparison
from pipeline.config import ConfigError, load_params
from pipeline.io import read_json, require_keys, write_json
from pipeline.plots import save_figure
from pipeline.seed_study import comparison_summary, differences_figure, load_study, study_variants, verdict

log = logging.getLogger("pipeline.stages.seed_study_summary")


def run(params_path: Path, runs_dir: Path, out: Path) -> dict:
    params = load_params(params_path)
    study = load_study(params)
    runs, variants = {}, {}
    for name in study_variants(params, study):
        path = runs_dir / f"{name}.json"
        data = require_keys(read_json(path), ("seeds", "runs", "test_accuracy"), path)
        if len(data["runs"]) != study.seeds:
            raise ConfigError(
                f"{path}: {len(data['runs'])} runs, but seed_study.seeds is {study.seeds}: run `dvc repro seed_study@{name}`"
            )
        runs[name] = data["runs"]
        variants[name] = {"seeds": data["seeds"], "test_accuracy": data["test_accuracy"]}
    comparisons = []
    for key in study.comparisons:
        cmp = load_comparison(params, key)
        summary = comparison_summary(key, cmp.title, cmp.a, cmp.b, runs, study.confidence)
        summary["verdict"] = verdict(summary)
        comparisons.append(summary)
        log.info("%s: %s", key, summary["verdict"])
    payload = {"seeds": study.seeds, "confidence": study.confidence, "variants": variants, "comparisons": comparisons}
    save_figure(
        differences_figure(runs, {n: v["test_accuracy"] for n, v in variants.items()}, comparisons),
        out / "differences.png",
    )
    write_json(out / "summary.json", payload)
    log.info("wrote %s and %s", out / "summary.json", out / "differences.png")
    return payload


main = stage_main(
    __doc__,
    [
        PARAMS,
        path_arg("--runs", "reports/seed_study/runs", "folder of the seed_study@ runs files"),
        path_arg("--out", "reports/seed_study", "output folder"),
    ],
    lambda args: run(args.params, args.runs, args.out),
)


if __name__ == "__main__":
    main()
