"""The schemas of the files the analysis stages write: comparisons (compare@), the seed-study
summary (seed_study_summary) and the class-wise norms (classwise_norms). Checked by their producers
before writing and by the report on reading (:mod:`pipeline.report.schemas`)."""

# No ``from __future__ import annotations`` here: TypedDict sees NotRequired[...] only in
# evaluated annotations (with strings it counts every key as required on Python 3.11).
from typing import TypedDict

from pipeline.core.schemas import Fraction, NonNegative, Points, SeedRuns


class ComparedVariant(TypedDict):
    variant: str
    test_accuracy: Fraction
    test_loss: NonNegative
    parameters: int


class McNemar(TypedDict):
    """Both variants' predictions on the same test images, paired image by image."""

    images: int
    a_only_correct: int  # images a classifies right and b wrong
    b_only_correct: int  # and the reverse; the images both get right or wrong say nothing about a - b
    p_value: Fraction  # exact two-sided McNemar: binomial test of a_only_correct in the discordant images at 1/2


class Comparison(TypedDict):
    """``comparisons/<key>.json`` (compare@<key>): a vs b, measured."""

    title: str
    a: ComparedVariant
    b: ComparedVariant
    accuracy_diff_points: Points
    test_loss_diff: float
    parameter_ratio: float
    fair: bool  # a and b differ in the comparison's factor only (the random seed aside)
    confounds: list[str]  # every other param they differ in, "path: a-value vs b-value"
    mcnemar: McNemar
    verdict: str


class PairedDifference(TypedDict):
    """One comparison of the seed study: a - b over the same random seeds, with its t-interval."""

    key: str
    a: str
    b: str
    n: int
    seeds: list[int]
    differences_points: list[float]
    mean_points: float
    std_points: float
    ci_low_points: float
    ci_high_points: float
    confidence: float
    a_ahead: int
    b_ahead: int
    ties: int
    distinguishable: bool  # the t-interval excludes 0
    sign_test_p: float | None  # exact two-sided sign test on the seeds that are not tied; None if all are
    sign_test_min_p: float  # the smallest p a sign test can reach with these seeds (every seed one way)
    fair: bool
    confounds: list[str]
    verdict: str


class SeedStudySummary(TypedDict):
    """``seed_study/summary.json`` (seed_study_summary)."""

    seeds: int
    confidence: float
    alpha: float  # params verdicts.alpha: the sign test's level
    comparisons: list[PairedDifference]
    variants: dict[str, SeedRuns]


class NormSummary(TypedDict):
    filters: int
    mean_cv: float
    median_cv: float
    max_cv: float
    cv_threshold: float
    class_specific_filters: int
    dead_filters: int


class FilterNorm(TypedDict):
    cv: float
    argmax_class: int
    mean_norm: float


class LayerNorms(TypedDict):
    """One conv block of ``<variant>/classwise_norms/classwise_norms.json``."""

    summary: NormSummary
    per_filter: dict[str, FilterNorm]
