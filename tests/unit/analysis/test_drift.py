"""Drift statistics against independent computations on raw samples, and their edge cases."""

import dataclasses
import math
import warnings
from collections import Counter

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelpilot.analysis import (
    FeatureDrift,
    assess_drift,
    correct_pvalues,
    drift_from_counts,
    drift_from_samples,
    rank_by_effect,
)

BOUNDS = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, math.inf]


def hand_psi(reference, current, smoothing=0.5):
    """PSI written out term by term."""
    k = len(reference)
    n_ref, n_cur = sum(reference), sum(current)
    total = 0.0
    for r, c in zip(reference, current):
        p = (r + smoothing) / (n_ref + smoothing * k)
        q = (c + smoothing) / (n_cur + smoothing * k)
        total += (q - p) * math.log(q / p)
    return total


def chi2_on(reference, current):
    return stats.chi2_contingency(np.array([reference, current]), correction=False)


def quantile_bins(reference, current, bins):
    """Counts of both samples in right-closed bins between the reference's quantiles."""
    edges = sorted(set(np.quantile(reference, np.arange(1, bins) / bins, method="inverted_cdf")))
    lows, highs = [-math.inf, *edges], [*edges, math.inf]
    return tuple([int(np.sum((x > lo) & (x <= hi))) for lo, hi in zip(lows, highs)] for x in (reference, current))


def expand(counts):
    return np.repeat(np.arange(len(counts)), np.asarray(counts, dtype=int))


# --- raw numerical samples ---------------------------------------------------------------


def test_ks_statistic_and_exact_pvalue_match_scipy():
    rng = np.random.default_rng(1)
    reference, current = rng.normal(size=300), rng.normal(0.05, 1.1, size=450)
    drift = drift_from_samples(reference, current, kind="numerical")
    expected = stats.ks_2samp(reference, current, method="exact")
    assert drift.test == "ks"
    assert drift.ks == pytest.approx(expected.statistic, abs=1e-12)
    assert drift.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("n_ref", "n_cur", "accuracy"), [(12_000, 15_000, 0.02), (20_000, 20_000, 0.001)])
def test_large_window_pvalue_is_close_to_the_exact_one(n_ref, n_cur, accuracy):
    """Beyond 10,000 per window the limiting distribution stands in for the exact p-value."""
    rng = np.random.default_rng(n_ref)
    reference, current = rng.normal(size=n_ref), rng.normal(0.03, size=n_cur)
    drift = drift_from_samples(reference, current, kind="numerical")
    exact = stats.ks_2samp(reference, current, method="exact")
    assert drift.ks == pytest.approx(exact.statistic, abs=1e-12)
    assert drift.pvalue == pytest.approx(exact.pvalue, rel=accuracy)
    assert 1e-4 < exact.pvalue < 0.5


def test_tied_values_get_the_asymptotic_pvalue_without_warnings():
    """The exact p-value assumes continuous data; with ties none is exact, and scipy's fails
    (and warns) when tied windows are nearly equal."""
    rng = np.random.default_rng(12)
    reference, current = rng.poisson(30, size=5000), rng.poisson(30, size=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drift = drift_from_samples(reference, current, kind="numerical")
    d = stats.ks_2samp(reference, current).statistic
    assert drift.test == "ks" and drift.ks == pytest.approx(d)
    assert drift.pvalue == pytest.approx(stats.kstwobign.sf(math.sqrt(2500) * d))


def test_wasserstein_is_scipy_divided_by_reference_std():
    rng = np.random.default_rng(2)
    reference, current = rng.normal(0, 2, size=800), rng.gamma(2.0, size=500)
    drift = drift_from_samples(reference, current, kind="numerical")
    assert drift.wasserstein == pytest.approx(stats.wasserstein_distance(reference, current) / np.std(reference))


def test_psi_js_chi2_use_reference_quantile_bins():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=1000), rng.normal(0.2, size=1200)
    ref, cur = quantile_bins(reference, current, 10)
    drift = drift_from_samples(reference, current, kind="numerical")
    assert drift.n_bins == 10
    assert drift.psi == pytest.approx(hand_psi(ref, cur))
    assert drift.psi_expected == pytest.approx(9 * (1 / 1000 + 1 / 1200))
    assert drift.js == pytest.approx(jensenshannon(np.array(ref) / 1000, np.array(cur) / 1200, base=2))
    assert drift.chi2 == pytest.approx(chi2_on(ref, cur).statistic)
    assert drift.psi_band == ("none" if drift.psi < 0.1 else "moderate" if drift.psi < 0.25 else "significant")


def test_tied_quantiles_collapse_into_fewer_bins():
    rng = np.random.default_rng(4)
    reference = np.where(rng.random(1000) < 0.45, 0.0, rng.normal(size=1000))
    current = np.where(rng.random(1000) < 0.30, 0.0, rng.normal(size=1000))
    ref, cur = quantile_bins(reference, current, 10)
    drift = drift_from_samples(reference, current, kind="numerical")
    assert drift.n_bins == len(ref) < 10
    assert drift.psi == pytest.approx(hand_psi(ref, cur))
    assert drift.ks == pytest.approx(stats.ks_2samp(reference, current).statistic)


def test_discrete_values_are_tested_with_chi_square():
    """KS is far too conservative on ties; few distinct values get the chi-square on values."""
    rng = np.random.default_rng(5)
    reference = rng.choice([0, 1, 2, 3], p=[0.4, 0.3, 0.2, 0.1], size=600)
    current = rng.choice([0, 1, 2, 3], p=[0.35, 0.3, 0.2, 0.15], size=700)
    drift = drift_from_samples(reference, current, kind="numerical")
    ref, cur = np.bincount(reference), np.bincount(current)
    assert drift.test == "chi2"
    assert drift.n_bins == 4
    assert drift.pvalue == pytest.approx(chi2_on(ref, cur).pvalue)
    assert drift.psi == pytest.approx(hand_psi(ref, cur))
    assert drift.ks == pytest.approx(stats.ks_2samp(reference, current).statistic)


def test_nan_and_infinite_values_are_dropped_and_counted():
    rng = np.random.default_rng(6)
    reference, current = rng.normal(size=500), rng.normal(size=400)
    dirty = current.copy()
    dirty[:30] = np.nan
    dirty[30:32] = [np.inf, -np.inf]
    drift = drift_from_samples(reference, dirty, kind="numerical")
    clean = drift_from_samples(reference, current[32:], kind="numerical")
    assert (drift.n_current, drift.n_missing_current, drift.n_missing_reference) == (368, 32, 0)
    assert (drift.pvalue, drift.psi, drift.wasserstein) == (clean.pvalue, clean.psi, clean.wasserstein)


@pytest.mark.parametrize(("n_ref", "n_cur"), [(99, 500), (500, 99), (500, 0)])
def test_too_few_samples_give_insufficient_data_and_no_verdict(n_ref, n_cur):
    rng = np.random.default_rng(7)
    drift = drift_from_samples(rng.normal(size=n_ref), rng.normal(5, size=n_cur), kind="numerical")
    assert drift.outcome == "InsufficientData"
    assert (drift.n_reference, drift.n_current) == (n_ref, n_cur)
    assert drift.test == "none" and drift.psi_band is None
    assert all(math.isnan(v) for v in (drift.pvalue, drift.psi, drift.js, drift.chi2, drift.ks, drift.wasserstein))
    verdict = assess_drift({"f": drift})["f"]
    assert verdict.verdict == "InsufficientData" and verdict.drifted is None


def test_all_nan_current_window_is_insufficient_data():
    drift = drift_from_samples(np.arange(200.0), np.full(300, np.nan), kind="numerical")
    assert drift.outcome == "InsufficientData"
    assert (drift.n_current, drift.n_missing_current) == (0, 300)


def test_same_constant_in_both_windows_is_no_variation_not_drift():
    drift = drift_from_samples(np.full(500, 3.0), np.full(800, 3.0), kind="numerical")
    assert drift.outcome == "NoVariation"
    assert drift.test == "none" and math.isnan(drift.pvalue)
    assert (drift.psi, drift.js, drift.ks, drift.wasserstein, drift.psi_band) == (0.0, 0.0, 0.0, 0.0, "none")
    verdict = assess_drift({"f": drift})["f"]
    assert verdict.verdict == "NoDrift" and verdict.drifted is False


def test_a_constant_that_moves_is_drift():
    drift = drift_from_samples(np.full(500, 3.0), np.full(500, 4.0), kind="numerical")
    assert drift.outcome == "Ok" and drift.pvalue < 1e-100
    # The reference has no spread: the distance is measured in the pooled standard deviation.
    assert drift.wasserstein == pytest.approx(1.0 / np.std(np.r_[np.full(500, 3.0), np.full(500, 4.0)]))
    assert assess_drift({"f": drift})["f"].drifted


def test_constant_reference_normalises_by_pooled_spread():
    rng = np.random.default_rng(8)
    reference, current = np.zeros(300), rng.normal(size=300)
    drift = drift_from_samples(reference, current, kind="numerical")
    pooled = np.concatenate([reference, current])
    assert drift.wasserstein == pytest.approx(stats.wasserstein_distance(reference, current) / np.std(pooled))


def test_custom_bands():
    rng = np.random.default_rng(9)
    reference, current = rng.normal(size=2000), rng.normal(0.15, size=2000)
    drift = drift_from_samples(reference, current, kind="numerical", bands=(0.005, 0.01))
    assert drift.psi > 0.01 and drift.psi_band == "significant"


@pytest.mark.parametrize(
    "arguments",
    [
        {"kind": "ordinal"},
        {"kind": "numerical", "bins": 1},
        {"kind": "numerical", "bands": (0.25, 0.1)},
        {"kind": "numerical", "smoothing": 0.0},
        {"kind": "numerical", "min_samples": 0},
    ],
)
def test_invalid_settings_are_rejected(arguments):
    with pytest.raises(ValueError):
        drift_from_samples(np.arange(200.0), np.arange(200.0), **arguments)


# --- bucket counts ---------------------------------------------------------------------


def test_sparse_buckets_are_merged_before_chi_square_and_psi():
    reference = [0, 3, 40, 100, 60, 20, 2]
    current = [1, 2, 30, 110, 70, 10, 0]
    # 225 and 223 observations: a merged bucket needs a pooled count of 5 * 448 / 223 = 10.04,
    # so the first three buckets merge (76) and the sparse last one joins its neighbour.
    merged_ref, merged_cur = [43, 100, 60, 22], [33, 110, 70, 10]
    drift = drift_from_counts(reference, current, kind="numerical", upper_bounds=BOUNDS)
    expected = chi2_on(merged_ref, merged_cur)
    assert drift.test == "chi2" and drift.n_bins == 4
    assert drift.chi2 == pytest.approx(expected.statistic)
    assert drift.pvalue == drift.chi2_pvalue == pytest.approx(expected.pvalue)
    assert drift.psi == pytest.approx(hand_psi(merged_ref, merged_cur))
    assert drift.psi_expected == pytest.approx(3 * (1 / 225 + 1 / 223))
    assert drift.js == pytest.approx(jensenshannon(np.divide(merged_ref, 225), np.divide(merged_cur, 223), base=2))


def test_bucket_ks_is_the_ks_of_the_expanded_samples():
    reference, current = [5, 30, 80, 60, 20, 4, 1], [2, 20, 60, 90, 30, 8, 3]
    drift = drift_from_counts(reference, current, kind="numerical", upper_bounds=BOUNDS)
    assert drift.ks == pytest.approx(stats.ks_2samp(expand(reference), expand(current)).statistic)


def test_bucket_wasserstein_uses_midpoints_and_neighbour_widths_for_open_buckets():
    reference, current = [10, 50, 80, 40, 20], [5, 30, 70, 60, 50]
    bounds = [1.0, 2.0, 4.0, 8.0, math.inf]
    # (0, 1] gets the width of (1, 2]; (8, inf) the width of (4, 8].
    points = np.array([0.5, 1.5, 3.0, 6.0, 10.0])
    mean = np.average(points, weights=reference)
    spread = math.sqrt(np.average((points - mean) ** 2, weights=reference))
    distance = stats.wasserstein_distance(points, points, reference, current)
    drift = drift_from_counts(reference, current, kind="numerical", upper_bounds=bounds)
    assert drift.wasserstein == pytest.approx(distance / spread)


def test_fractional_counts_are_rounded():
    bounds = [1, 2, 4, 8, math.inf]
    rounded = drift_from_counts([10, 50, 80, 40, 20], [5, 30, 70, 61, 50], kind="numerical", upper_bounds=bounds)
    extrapolated = drift_from_counts(
        [10.2, 49.6, 80.4, 40.0, 19.9], [5.3, 29.5, 70.1, 60.7, 50.0], kind="numerical", upper_bounds=bounds
    )
    assert extrapolated == rounded


def test_empty_buckets_change_nothing_but_the_bin_layout():
    with_gap = drift_from_counts([30, 0, 50, 40, 0], [20, 0, 60, 45, 0], kind="numerical", upper_bounds=[1, 2, 3, 4, math.inf])
    without = drift_from_counts([30, 50, 40], [20, 60, 45], kind="numerical", upper_bounds=[1, 3, math.inf])
    assert (with_gap.pvalue, with_gap.psi, with_gap.ks, with_gap.n_bins) == (without.pvalue, without.psi, without.ks, 3)


def test_bucket_empty_in_reference_gives_finite_psi():
    reference, current = [100, 100, 0], [60, 90, 50]
    drift = drift_from_counts(reference, current, kind="numerical", upper_bounds=[1, 2, math.inf])
    assert drift.psi == pytest.approx(hand_psi(reference, current))
    assert drift.chi2 == pytest.approx(chi2_on(reference, current).statistic)


def test_everything_in_one_bucket_is_no_variation():
    drift = drift_from_counts([0, 300, 0], [0, 250, 0], kind="numerical", upper_bounds=[1, 2, math.inf])
    assert drift.outcome == "NoVariation" and math.isnan(drift.pvalue)


def test_empty_current_window_counts_are_insufficient_data():
    drift = drift_from_counts([100, 200, 50], [0, 0, 0], kind="numerical", upper_bounds=[1, 2, math.inf])
    assert drift.outcome == "InsufficientData" and drift.n_current == 0


@pytest.mark.parametrize(
    ("reference", "current", "bounds"),
    [
        ([10, -1, 5], [1, 2, 3], [1, 2, math.inf]),
        ([10, math.nan, 5], [1, 2, 3], [1, 2, math.inf]),
        ([10, 1, 5], [1, 2], [1, 2, math.inf]),
        ([10, 1, 5], [1, 2, 3], [1, 2, 3]),
        ([10, 1, 5], [1, 2, 3], [2, 1, math.inf]),
        ([10, 1, 5], [1, 2, 3], None),
    ],
)
def test_malformed_counts_are_rejected(reference, current, bounds):
    with pytest.raises(ValueError):
        drift_from_counts(reference, current, kind="numerical", upper_bounds=bounds)


# --- categories --------------------------------------------------------------------------


def test_unseen_category_is_reported_and_tested():
    names = ["cat", "dog", "emu"]
    drift = drift_from_counts([300, 200, 0], [250, 180, 90], kind="categorical", categories=names)
    assert drift.unseen_categories == ("emu",)
    assert drift.ks is None and drift.wasserstein is None
    assert drift.chi2 == pytest.approx(chi2_on([300, 200, 0], [250, 180, 90]).statistic)
    assert drift.psi == pytest.approx(hand_psi([300, 200, 0], [250, 180, 90]))
    assert assess_drift({"pet": drift})["pet"].drifted


def test_rare_categories_merge_into_other():
    reference = [500, 300, 4, 2, 150, 1]
    current = [480, 320, 1, 3, 160, 9]
    # 957 and 973: a group needs 5 * 1930 / 957 = 10.08 pooled; the three rarest (5, 5 and 10)
    # each fall short and together make "other" (20).
    drift = drift_from_counts(reference, current, kind="categorical")
    merged_ref, merged_cur = [500, 300, 150, 7], [480, 320, 160, 13]
    assert drift.n_bins == 4
    assert drift.chi2 == pytest.approx(chi2_on(merged_ref, merged_cur).statistic)
    assert drift.psi == pytest.approx(hand_psi(merged_ref, merged_cur))


def test_other_group_takes_categories_until_it_is_dense_enough():
    # 758 and 757: a group needs 5 * 1515 / 757 = 10.007 pooled; "other" starts with the 3
    # pooled of the rarest and must take the next category (12) too, though that one is enough.
    drift = drift_from_counts([500, 250, 6, 2], [500, 250, 6, 1], kind="categorical")
    assert drift.n_bins == 3
    assert drift.chi2 == pytest.approx(chi2_on([500, 250, 8], [500, 250, 7]).statistic)


def test_sparse_other_group_is_kept_apart_from_the_mode():
    """Merging never leaves a single group: the mode stays apart from the rest."""
    drift = drift_from_counts([490, 5, 5], [495, 3, 2], kind="categorical")
    assert drift.n_bins == 2
    assert drift.chi2 == pytest.approx(chi2_on([490, 10], [495, 5]).statistic)


def test_sparse_buckets_around_the_mode_are_kept_apart_from_it():
    drift = drift_from_counts([0, 495, 3, 2], [0, 497, 2, 1], kind="numerical", upper_bounds=[1, 2, 3, math.inf])
    assert drift.n_bins == 2
    assert drift.chi2 == pytest.approx(chi2_on([495, 5], [497, 3]).statistic)


def test_category_names_default_to_positions():
    drift = drift_from_counts([200, 0], [150, 60], kind="categorical")
    assert drift.unseen_categories == ("1",)


def test_single_category_in_both_windows_is_no_variation():
    drift = drift_from_samples(["a"] * 300, ["a"] * 200, kind="categorical")
    assert drift.outcome == "NoVariation" and drift.n_bins == 1 and drift.ks is None


def test_category_samples_count_missing_and_match_counts():
    rng = np.random.default_rng(10)
    reference = list(rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=600))
    current = list(rng.choice(["red", "green", "blue", "teal"], p=[0.4, 0.3, 0.2, 0.1], size=500))
    current += [None, float("nan"), None]
    drift = drift_from_samples(np.array(reference, dtype=object), np.array(current, dtype=object), kind="categorical")
    names = ["blue", "green", "red", "teal"]
    counted_ref, counted_cur = Counter(reference), Counter(current)
    expected = drift_from_counts(
        [counted_ref[n] for n in names], [counted_cur[n] for n in names], kind="categorical", categories=names
    )
    assert (drift.n_missing_current, drift.n_missing_reference) == (3, 0)
    assert drift == FeatureDrift(**{**expected.__dict__, "n_missing_current": 3})
    assert drift.unseen_categories == ("teal",)


def test_categories_compare_by_their_string():
    codes, labels = np.array([1, 2] * 100), np.array(["1", "2", "3"] * 100, dtype=object)
    drift = drift_from_samples(codes, labels, kind="categorical")
    assert drift.unseen_categories == ("3",)


# --- multiple testing and the verdict ----------------------------------------------------


def hand_benjamini_hochberg(pvalues):
    m = len(pvalues)
    ranks = {i: sorted(pvalues).index(p) + 1 for i, p in enumerate(pvalues)}
    ordered = sorted(pvalues)
    return [min(1.0, min(ordered[j] * m / (j + 1) for j in range(ranks[i] - 1, m))) for i in range(m)]


def test_benjamini_hochberg_matches_its_definition():
    pvalues = list(np.random.default_rng(11).uniform(0, 0.2, size=25))
    assert correct_pvalues(pvalues) == pytest.approx(hand_benjamini_hochberg(pvalues))


def test_nan_stays_nan_and_does_not_count_toward_m():
    adjusted = correct_pvalues([0.01, math.nan, 0.04], "bonferroni")
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.08)
    assert correct_pvalues([0.01, math.nan, 0.04]) == pytest.approx([0.02, math.nan, 0.04], nan_ok=True)
    assert correct_pvalues([0.3, 0.01], "none") == pytest.approx([0.3, 0.01])
    assert correct_pvalues([0.6, 0.7], "bonferroni") == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize(("pvalues", "method"), [([0.1], "holm"), ([1.2], "none"), ([-0.1], "bonferroni")])
def test_invalid_corrections_are_rejected(pvalues, method):
    with pytest.raises(ValueError):
        correct_pvalues(pvalues, method)


def feature(pvalue, psi, *, kind="numerical", outcome="Ok", js=0.0, wasserstein=0.0):
    numerical = kind == "numerical"
    return FeatureDrift(
        kind=kind,
        outcome=outcome,
        n_reference=1000,
        n_current=1000,
        n_missing_reference=0,
        n_missing_current=0,
        test="ks" if numerical else "chi2",
        pvalue=pvalue,
        psi=psi,
        psi_expected=0.018,
        psi_band="none",
        n_bins=10,
        js=js,
        chi2=1.0,
        chi2_pvalue=pvalue,
        ks=0.1 if numerical else None,
        wasserstein=wasserstein if numerical else None,
    )


def test_drift_needs_significance_and_effect():
    verdicts = assess_drift(
        {
            "both": feature(1e-6, 0.3),
            "tiny-shift": feature(1e-6, 0.01),
            "noisy": feature(0.3, 0.5),
        }
    )
    assert {name: v.verdict for name, v in verdicts.items()} == {
        "both": "Drift",
        "tiny-shift": "NoDrift",
        "noisy": "NoDrift",
    }
    assert "too small to matter" in verdicts["tiny-shift"].reason
    assert verdicts["both"].corrected_pvalue == pytest.approx(1.5e-6)
    # PSI is gated on its excess over the no-drift expectation (0.018 for these windows).
    assert verdicts["both"].effect == pytest.approx(0.3 - 0.018) and verdicts["both"].effect_metric == "psi"


def test_psi_at_its_own_noise_floor_is_not_drift() -> None:
    # 10 bins and 200 samples a window: PSI expects about 0.09 without any drift. A gate of 0.1
    # on raw PSI sits at that floor; on the excess, 0.15 raw is 0.06 of shift: too small.
    floor = 9 * (1 / 200 + 1 / 200)
    small = dataclasses.replace(feature(1e-4, 0.15), psi_expected=floor)
    large = dataclasses.replace(feature(1e-4, 0.3), psi_expected=floor)
    verdicts = assess_drift({"small": small, "large": large})
    assert verdicts["small"].verdict == "NoDrift" and verdicts["small"].effect == pytest.approx(0.15 - floor)
    assert verdicts["large"].verdict == "Drift"


def test_features_without_a_test_do_not_dilute_the_correction():
    tested = assess_drift({"a": feature(0.02, 0.3), "b": feature(0.5, 0.3)})
    padded = assess_drift(
        {
            "a": feature(0.02, 0.3),
            "b": feature(0.5, 0.3),
            "short": feature(math.nan, math.nan, outcome="InsufficientData"),
            "flat": feature(math.nan, 0.0, outcome="NoVariation"),
        }
    )
    assert padded["a"].corrected_pvalue == tested["a"].corrected_pvalue == pytest.approx(0.04)
    assert padded["a"].drifted and padded["short"].drifted is None and padded["flat"].drifted is False


def test_bonferroni_is_stricter_than_benjamini_hochberg():
    features = {"a": feature(0.02, 0.3), "b": feature(0.03, 0.3), "c": feature(0.04, 0.3)}
    assert all(v.drifted for v in assess_drift(features).values())
    assert not any(v.drifted for v in assess_drift(features, correction="bonferroni").values())


def test_effect_gate_metric_and_categorical_fallback():
    features = {"num": feature(1e-9, 0.01, wasserstein=0.4), "cat": feature(1e-9, 0.3, kind="categorical")}
    verdicts = assess_drift(features, effect_size="wasserstein", effect_threshold=0.2)
    assert verdicts["num"].drifted and verdicts["num"].effect == 0.4
    assert verdicts["cat"].effect_metric == "psi" and verdicts["cat"].effect_threshold == 0.1
    assert verdicts["cat"].drifted


def test_rank_by_effect_lists_drifted_features_largest_first():
    verdicts = assess_drift({"a": feature(1e-6, 0.2), "b": feature(1e-6, 0.9), "c": feature(1e-6, 0.01), "d": feature(1e-6, 0.2)})
    assert rank_by_effect(verdicts) == ["b", "a", "d"]


def test_ks_pvalue_beside_the_chi_square_from_counts_is_the_kolmogorov_limit_at_the_bucket_edges():
    rng = np.random.default_rng(5)
    bounds = np.array([-1.0, 0.0, 1.0, 2.0, np.inf])
    reference = rng.multinomial(2000, [0.16, 0.34, 0.34, 0.14, 0.02]).astype(float)
    current = rng.multinomial(1500, [0.10, 0.30, 0.38, 0.18, 0.04]).astype(float)
    drift = drift_from_counts(reference, current, kind="numerical", upper_bounds=bounds)
    d = np.max(np.abs(np.cumsum(reference) / 2000 - np.cumsum(current) / 1500))
    assert drift.test == "chi2"  # the verdict's test stays the chi-square
    assert drift.ks_pvalue == pytest.approx(stats.kstwobign.sf(np.sqrt(2000 * 1500 / 3500) * d))


def test_ks_pvalue_from_bucketed_counts_is_conservative_under_no_drift():
    rng = np.random.default_rng(6)
    probabilities = [0.1, 0.2, 0.3, 0.25, 0.15]
    bounds = [-1.0, 0.0, 1.0, 2.0, np.inf]
    pvalues = [
        drift_from_counts(
            rng.multinomial(500, probabilities), rng.multinomial(500, probabilities), kind="numerical", upper_bounds=bounds
        ).ks_pvalue
        for _ in range(800)
    ]
    assert np.mean(np.array(pvalues) < 0.05) <= 0.05


def test_ks_pvalue_from_samples_is_scipys():
    rng = np.random.default_rng(7)
    x, y = rng.normal(0, 1, 300), rng.normal(0.2, 1, 250)
    drift = drift_from_samples(x, y, kind="numerical")
    assert drift.ks_pvalue == pytest.approx(stats.ks_2samp(x, y).pvalue) == drift.pvalue
    assert drift_from_samples(["a"] * 200, ["b"] * 200, kind="categorical").ks_pvalue is None
