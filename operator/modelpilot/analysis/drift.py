"""Data drift of one feature between a reference and a current window, from Prometheus bucket or
category counts or from raw samples, and the verdict across a model's features."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from modelpilot.analysis._bins import BinComparison, compare_bins, counts_vector

__all__ = [
    "Correction",
    "DriftVerdict",
    "EffectSize",
    "FeatureDrift",
    "FeatureVerdict",
    "Kind",
    "Outcome",
    "PsiBand",
    "assess_drift",
    "correct_pvalues",
    "drift_from_counts",
    "drift_from_samples",
    "rank_by_effect",
]

Kind = Literal["numerical", "categorical"]
Outcome = Literal["Ok", "InsufficientData", "NoVariation"]
PsiBand = Literal["none", "moderate", "significant"]
Correction = Literal["benjamini-hochberg", "bonferroni", "none"]
EffectSize = Literal["psi", "js", "wasserstein", "ks"]
DriftVerdict = Literal["Drift", "NoDrift", "InsufficientData"]

# scipy's ks_2samp computes the exact p-value up to this size per window.
_KS_EXACT_MAX_N = 10_000


@dataclass(frozen=True)
class FeatureDrift:
    """Drift statistics of one feature.

    ``outcome`` is ``Ok`` when a test ran; ``InsufficientData`` when either window has fewer
    than ``min_samples`` observations (then every statistic is NaN and no verdict may be drawn);
    ``NoVariation`` when both windows hold one and the same value, bucket or category, so there
    is nothing to compare: the distances are 0 and no test runs (``pvalue`` NaN), which is not
    drift. ``pvalue`` is the one that feeds the verdict, from ``test``; ``psi``, ``js`` and the
    chi-square use the ``n_bins`` bins left after merging sparse ones, and ``psi_expected`` is
    PSI's mean under no drift for these sizes and bins. ``ks`` and ``wasserstein`` (in units of
    the reference's standard deviation) are None for categorical features, and so is
    ``ks_pvalue``, the two-sample KS test's p-value, reported beside the chi-square whatever
    test decides (see ``drift_from_counts`` for what it means on bucketed data).
    """

    kind: Kind
    outcome: Outcome
    n_reference: int
    n_current: int
    n_missing_reference: int
    n_missing_current: int
    test: Literal["ks", "chi2", "none"]
    pvalue: float
    psi: float
    psi_expected: float
    psi_band: PsiBand | None
    n_bins: int
    js: float
    chi2: float
    chi2_pvalue: float
    ks: float | None
    wasserstein: float | None
    unseen_categories: tuple[str, ...] = ()
    ks_pvalue: float | None = None


class _Sizes(NamedTuple):
    n_reference: int
    n_current: int
    n_missing_reference: int
    n_missing_current: int


@dataclass(frozen=True)
class _Settings:
    min_samples: int
    min_expected: float
    smoothing: float
    bands: tuple[float, float]

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        if self.min_expected <= 0 or self.smoothing <= 0:
            raise ValueError("min_expected and smoothing must be positive")
        if not 0 < self.bands[0] < self.bands[1]:
            raise ValueError(f"bands must be two ascending positive PSI values, got {self.bands}")

    def too_few(self, sizes: _Sizes) -> bool:
        return min(sizes.n_reference, sizes.n_current) < self.min_samples


def drift_from_counts(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    kind: Kind,
    upper_bounds: ArrayLike | None = None,
    categories: Sequence[str] | None = None,
    min_samples: int = 100,
    min_expected: float = 5.0,
    smoothing: float = 0.5,
    bands: tuple[float, float] = (0.1, 0.25),
) -> FeatureDrift:
    """Drift from per-bucket or per-category counts of two windows (the Prometheus path).

    Numerical: non-cumulative counts per histogram bucket, ``upper_bounds`` their ``le`` edges
    ending with +Inf. Categorical: counts aligned over the union of categories (0 where a window
    lacks one), ``categories`` their names (positions as names when omitted). Counts are
    rounded to whole numbers.

    The verdict's p-value comes from the two-sample chi-square on the bins after merging sparse
    ones (see ``compare_bins``): with every expected count at least ``min_expected`` it holds its
    level, needs no resampling (deterministic, cheap for every feature every interval) and tests
    the whole distribution at bucket resolution. KS D on the bucket CDFs is reported, but its
    p-value at bucket edges is conservative and a multinomial bootstrap would make verdicts
    random and costly. ``ks_pvalue`` is still given for reading beside the chi-square: the
    limiting Kolmogorov distribution at D on the bucket edges, approximate (asymptotic) and
    conservative (D at the edges is at most the D of the values). Wasserstein represents each
    bucket by its midpoint, giving the open first bucket and the +Inf bucket the width of their neighbour, and is divided by the
    reference's spread at those points.
    """
    settings = _Settings(min_samples, min_expected, smoothing, bands)
    ref = counts_vector(reference, "reference")
    cur = counts_vector(current, "current")
    if ref.shape != cur.shape:
        raise ValueError(f"reference and current have {len(ref)} and {len(cur)} bins; align them first")
    sizes = _Sizes(int(ref.sum()), int(cur.sum()), 0, 0)
    if kind == "categorical":
        if upper_bounds is not None:
            raise ValueError("upper_bounds is for numerical features only")
        names = list(categories) if categories is not None else [str(i) for i in range(len(ref))]
        if len(names) != len(ref):
            raise ValueError(f"{len(names)} category names for {len(ref)} counts")
        return _categorical(ref, cur, names, sizes, settings)
    if kind != "numerical":
        raise ValueError(f"kind must be 'numerical' or 'categorical', got {kind!r}")
    if upper_bounds is None:
        raise ValueError("numerical counts need upper_bounds, the buckets' le edges")
    bounds = np.asarray(upper_bounds, dtype=np.float64)
    if bounds.shape != ref.shape or bounds[-1] != math.inf or np.any(np.diff(bounds) <= 0):
        raise ValueError("upper_bounds must be strictly increasing, one per bucket, ending with +Inf")

    if settings.too_few(sizes):
        return _insufficient("numerical", sizes)
    if np.count_nonzero(ref + cur) == 1:
        return _no_variation("numerical", sizes)
    points = _bucket_points(bounds)
    gap = np.abs(np.cumsum(ref) / sizes.n_reference - np.cumsum(cur) / sizes.n_current)
    ks, distance = _cdf_distances(points, gap)
    binned = compare_bins(ref, cur, ordered=True, min_expected=min_expected, smoothing=smoothing)
    return _tested(
        "numerical",
        sizes,
        binned,
        settings,
        test="chi2",
        pvalue=binned.chi2_pvalue,
        ks=ks,
        wasserstein=distance / _spread(points, ref, cur),
        ks_pvalue=_ks_limit_pvalue(sizes.n_reference, sizes.n_current, ks),
    )


def drift_from_samples(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    kind: Kind,
    bins: int = 10,
    min_samples: int = 100,
    min_expected: float = 5.0,
    smoothing: float = 0.5,
    bands: tuple[float, float] = (0.1, 0.25),
) -> FeatureDrift:
    """Drift from raw samples of two windows.

    Numerical: NaN and infinite values are dropped and counted as missing. The verdict comes
    from the two-sample KS test: scipy's exact p-value up to 10,000 per window, the limiting
    Kolmogorov distribution beyond that or when values tie (ties make KS conservative, never
    liberal). When the pooled windows hold no more than ``bins`` distinct values the data are
    discrete and KS far too conservative (about 0.7% alarms at a nominal 5% for a binary
    feature), so the chi-square on the values, merged as in ``drift_from_counts``, decides.
    PSI and JS use ``bins`` reference-quantile bins (inverted-CDF quantiles, so every edge is an
    observed value and tied quantiles collapse into one edge), or the distinct values for
    discrete data. Wasserstein is divided by the reference's standard deviation, or by the
    pooled one when the reference is constant.

    Categorical: values are compared by their ``str``; None and NaN are missing. Then as the
    categorical counts of ``drift_from_counts``.
    """
    settings = _Settings(min_samples, min_expected, smoothing, bands)
    if kind == "categorical":
        ref_names, ref_counts, ref_missing = _category_counts(reference)
        cur_names, cur_counts, cur_missing = _category_counts(current)
        names = np.union1d(ref_names, cur_names)
        ref = np.zeros(len(names))
        cur = np.zeros(len(names))
        ref[np.searchsorted(names, ref_names)] = ref_counts
        cur[np.searchsorted(names, cur_names)] = cur_counts
        sizes = _Sizes(int(ref.sum()), int(cur.sum()), ref_missing, cur_missing)
        return _categorical(ref, cur, names.tolist(), sizes, settings)
    if kind != "numerical":
        raise ValueError(f"kind must be 'numerical' or 'categorical', got {kind!r}")
    if bins < 2:
        raise ValueError("bins must be at least 2")

    x, x_missing = _finite_sorted(reference)
    y, y_missing = _finite_sorted(current)
    sizes = _Sizes(len(x), len(y), x_missing, y_missing)
    if settings.too_few(sizes):
        return _insufficient("numerical", sizes)
    values, gap = _ecdf_gap(x, y)
    if len(values) == 1:
        return _no_variation("numerical", sizes)
    ks, distance = _cdf_distances(values, gap)
    spread = float(np.std(x)) or float(np.std(np.concatenate([x, y])))

    discrete = len(values) <= bins
    if discrete:
        edges = values[:-1]
    else:
        ranks = -(-np.arange(1, bins) * len(x) // bins)  # ceil(k n / bins), in exact integers
        edges = np.unique(x[ranks - 1])
    ref, cur = (np.diff(np.searchsorted(s, edges, side="right"), prepend=0, append=len(s)) for s in (x, y))
    binned = compare_bins(
        ref.astype(np.float64), cur.astype(np.float64), ordered=True, min_expected=min_expected, smoothing=smoothing
    )
    test: Literal["ks", "chi2"]
    ks_pvalue = _ks_pvalue(x, y, ks, tied=len(values) < len(x) + len(y))
    if discrete:
        test, pvalue = "chi2", binned.chi2_pvalue
    else:
        test, pvalue = "ks", ks_pvalue
    return _tested(
        "numerical",
        sizes,
        binned,
        settings,
        test=test,
        pvalue=pvalue,
        ks=ks,
        wasserstein=distance / spread,
        ks_pvalue=ks_pvalue,
    )


def _categorical(ref: np.ndarray, cur: np.ndarray, names: list[str], sizes: _Sizes, settings: _Settings) -> FeatureDrift:
    unseen = tuple(names[i] for i in np.flatnonzero((ref == 0) & (cur > 0)))
    if settings.too_few(sizes):
        return _insufficient("categorical", sizes, unseen)
    if np.count_nonzero(ref + cur) == 1:
        return _no_variation("categorical", sizes)
    binned = compare_bins(ref, cur, ordered=False, min_expected=settings.min_expected, smoothing=settings.smoothing)
    return _tested(
        "categorical",
        sizes,
        binned,
        settings,
        test="chi2",
        pvalue=binned.chi2_pvalue,
        ks=None,
        wasserstein=None,
        unseen=unseen,
    )


def _insufficient(kind: Kind, sizes: _Sizes, unseen: tuple[str, ...] = ()) -> FeatureDrift:
    numerical_only = math.nan if kind == "numerical" else None
    return FeatureDrift(
        kind=kind,
        outcome="InsufficientData",
        **sizes._asdict(),
        test="none",
        pvalue=math.nan,
        psi=math.nan,
        psi_expected=math.nan,
        psi_band=None,
        n_bins=0,
        js=math.nan,
        chi2=math.nan,
        chi2_pvalue=math.nan,
        ks=numerical_only,
        wasserstein=numerical_only,
        unseen_categories=unseen,
        ks_pvalue=numerical_only,
    )


def _no_variation(kind: Kind, sizes: _Sizes) -> FeatureDrift:
    numerical_only = 0.0 if kind == "numerical" else None
    return FeatureDrift(
        kind=kind,
        outcome="NoVariation",
        **sizes._asdict(),
        test="none",
        pvalue=math.nan,
        psi=0.0,
        psi_expected=0.0,
        psi_band="none",
        n_bins=1,
        js=0.0,
        chi2=math.nan,
        chi2_pvalue=math.nan,
        ks=numerical_only,
        wasserstein=numerical_only,
        ks_pvalue=1.0 if kind == "numerical" else None,
    )


def _tested(
    kind: Kind,
    sizes: _Sizes,
    binned: BinComparison,
    settings: _Settings,
    *,
    test: Literal["ks", "chi2"],
    pvalue: float,
    ks: float | None,
    wasserstein: float | None,
    unseen: tuple[str, ...] = (),
    ks_pvalue: float | None = None,
) -> FeatureDrift:
    moderate, significant = settings.bands
    band: PsiBand = "none" if binned.psi < moderate else "moderate" if binned.psi < significant else "significant"
    return FeatureDrift(
        kind=kind,
        outcome="Ok",
        **sizes._asdict(),
        test=test,
        pvalue=pvalue,
        psi=binned.psi,
        psi_expected=binned.psi_expected,
        psi_band=band,
        n_bins=binned.n_bins,
        js=binned.js,
        chi2=binned.chi2,
        chi2_pvalue=binned.chi2_pvalue,
        ks=ks,
        wasserstein=wasserstein,
        unseen_categories=unseen,
        ks_pvalue=ks_pvalue,
    )


def _bucket_points(bounds: np.ndarray) -> np.ndarray:
    """Midpoint of each bucket; the open first and +Inf buckets get their neighbour's width."""
    finite = bounds[:-1]
    # With a single finite edge the spacing is arbitrary: the distance is divided by the
    # spread measured on the same points, so any width gives the same result.
    widths = np.diff(finite) if len(finite) > 1 else np.ones(1)
    lower = np.concatenate([[finite[0] - widths[0]], finite])
    upper = np.concatenate([finite, [finite[-1] + widths[-1]]])
    midpoints: np.ndarray = (lower + upper) / 2
    return midpoints


def _spread(points: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> float:
    """Standard deviation of the reference at the bucket points, pooled if it is constant."""
    for weights in (ref, ref + cur):
        mean = np.average(points, weights=weights)
        spread = math.sqrt(np.average((points - mean) ** 2, weights=weights))
        if spread > 0:
            return spread
    raise AssertionError("callers rule out a single occupied bucket")


def _cdf_distances(points: np.ndarray, gap: np.ndarray) -> tuple[float, float]:
    """KS D and the (unnormalised) Wasserstein-1 distance of two step CDFs.

    ``gap`` is the absolute difference of the CDFs at ``points`` (ascending, distinct); both
    CDFs are constant between points, so the Wasserstein integral is a sum of rectangles.
    """
    return float(gap.max()), float(gap[:-1] @ np.diff(points))


def _finite_sorted(values: ArrayLike) -> tuple[np.ndarray, int]:
    """The finite values, sorted, as float64, and the number of NaN or infinite ones."""
    data = np.asarray(values).ravel()
    if data.dtype.kind != "f":
        data = data.astype(np.float64)
    # Sorting in the input's own precision is cheaper for float32; NaN sorts last, after +inf,
    # so the finite values are one slice of the sorted array.
    data = np.sort(data)
    first = int(np.searchsorted(data, -np.inf, side="right"))
    end = int(np.searchsorted(data, np.inf, side="left"))
    return data[first:end].astype(np.float64, copy=False), len(data) - (end - first)


def _ecdf_gap(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pooled values of two sorted samples and |F_x - F_y| at each of them."""
    pooled = np.concatenate([x, y])
    # Two presorted runs: the stable sort (timsort) merges them in linear time.
    order = np.argsort(pooled, kind="stable")
    merged = pooled[order]
    # Walking the merged values, each x lifts F_x - F_y by 1/n and each y lowers it by 1/m;
    # in place, because at a million samples per window these passes are the cost.
    gap = (order < len(x)) * (1 / len(x) + 1 / len(y))
    gap -= 1 / len(y)
    np.cumsum(gap, out=gap)
    np.abs(gap, out=gap)
    last_of_value = np.empty(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=last_of_value[:-1])
    last_of_value[-1] = True
    if last_of_value.all():
        return merged, gap
    return merged[last_of_value], gap[last_of_value]


def _ks_pvalue(x: np.ndarray, y: np.ndarray, d: float, *, tied: bool) -> float:
    n, m = len(x), len(y)
    # scipy's exact p-value assumes continuous data, so with ties it is no more exact than the
    # asymptotic one, and for nearly equal tied windows it fails (p rounding above 1) and warns.
    if max(n, m) <= _KS_EXACT_MAX_N and not tied:
        return float(stats.ks_2samp(x, y).pvalue)
    return _ks_limit_pvalue(n, m, d)


def _ks_limit_pvalue(n: int, m: int, d: float) -> float:
    # The limiting Kolmogorov distribution: within about 1% of the exact p-value beyond 10,000
    # per window (closer than scipy's kstwo at the effective size when the windows are equal),
    # and microseconds where kstwo.sf takes up to a second in the far tail.
    return float(stats.kstwobign.sf(math.sqrt(n * m / (n + m)) * d))


def _category_counts(values: ArrayLike) -> tuple[np.ndarray, np.ndarray, int]:
    """Category names (as str), their counts, and the number of missing values."""
    data = np.asarray(values).ravel()
    if data.dtype.kind == "f":
        missing = np.isnan(data)
    elif data.dtype.kind == "O":
        # Elementwise: None, and NaN, the one value unequal to itself.
        missing = (data == None) | (data != data)  # noqa: E711
    else:
        missing = np.zeros(len(data), dtype=bool)
    n_missing = int(np.count_nonzero(missing))
    kept = data[~missing] if n_missing else data
    names, counts = np.unique(kept.astype(str) if kept.dtype.kind == "O" else kept, return_counts=True)
    return names.astype(str), counts.astype(np.float64), n_missing


def correct_pvalues(pvalues: ArrayLike, method: Correction = "benjamini-hochberg") -> np.ndarray:
    """Multiple-testing adjusted p-values, in input order.

    NaN (no test ran) stays NaN and does not count toward the number of tests m.
    Benjamini-Hochberg controls the false discovery rate; Bonferroni the family-wise error rate.
    """
    if method not in ("benjamini-hochberg", "bonferroni", "none"):
        raise ValueError(f"method must be benjamini-hochberg, bonferroni or none, got {method!r}")
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    tested = ~np.isnan(p)
    if np.any((p[tested] < 0) | (p[tested] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    adjusted = p.copy()
    m = int(np.count_nonzero(tested))
    if method == "bonferroni":
        adjusted[tested] = np.minimum(p[tested] * m, 1.0)
    elif method == "benjamini-hochberg" and m:
        order = np.argsort(p[tested])
        scaled = p[tested][order] * m / np.arange(1, m + 1)
        # Step-up: each adjusted value is the smallest scaled value at its rank or above.
        stepped = np.minimum.accumulate(scaled[::-1])[::-1]
        ranked = np.empty(m)
        ranked[order] = np.minimum(stepped, 1.0)
        adjusted[tested] = ranked
    return adjusted


@dataclass(frozen=True)
class FeatureVerdict:
    """A feature's drift verdict after correction and the effect-size gate.

    ``drifted`` is None exactly when the verdict is ``InsufficientData``; ``effect`` is the value
    of ``effect_metric`` that met or missed ``effect_threshold``.
    """

    verdict: DriftVerdict
    drifted: bool | None
    pvalue: float
    corrected_pvalue: float
    effect: float
    effect_metric: EffectSize
    effect_threshold: float
    reason: str


def assess_drift(
    features: Mapping[str, FeatureDrift],
    *,
    alpha: float = 0.05,
    correction: Correction = "benjamini-hochberg",
    effect_size: EffectSize = "psi",
    effect_threshold: float = 0.1,
    categorical_threshold: float = 0.1,
) -> dict[str, FeatureVerdict]:
    """Verdict per feature: drift when the corrected p-value is below ``alpha`` AND the effect
    size reaches ``effect_threshold``, so huge windows do not flag shifts too small to matter.
    PSI is gated on its excess over its no-drift expectation, so small windows are not flagged
    for noise; ``FeatureVerdict.effect`` is that excess.

    The correction runs over the features that were tested. Categorical features have no KS or
    Wasserstein distance; when the gate is one of those they are gated on PSI at
    ``categorical_threshold`` instead.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie strictly between 0 and 1")
    if effect_size not in ("psi", "js", "wasserstein", "ks"):
        raise ValueError(f"effect_size must be psi, js, wasserstein or ks, got {effect_size!r}")
    names = list(features)
    corrected = correct_pvalues([features[name].pvalue for name in names], correction)
    verdicts = {}
    for name, adjusted in zip(names, corrected):
        drift = features[name]
        metric: EffectSize = effect_size
        threshold = effect_threshold
        if getattr(drift, metric) is None:
            metric, threshold = "psi", categorical_threshold
        effect = float(getattr(drift, metric))
        if metric == "psi" and math.isfinite(drift.psi_expected):
            # PSI grows with sampling noise alone (about (bins - 1)(1/n + 1/m) without drift): a
            # gate on raw PSI near its own noise floor would call small windows drifted.
            effect = max(effect - drift.psi_expected, 0.0)
        verdict: DriftVerdict
        drifted: bool | None
        if drift.outcome == "InsufficientData":
            verdict, drifted = "InsufficientData", None
            reason = f"insufficient data: {drift.n_reference} reference and {drift.n_current} current samples"
        elif drift.outcome == "NoVariation":
            verdict, drifted = "NoDrift", False
            reason = "no variation: one value in both windows"
        else:
            significant, large = bool(adjusted < alpha), bool(effect >= threshold)
            drifted = significant and large
            verdict = "Drift" if drifted else "NoDrift"
            test = f"{drift.test} corrected p={adjusted:.3g} {'<' if significant else '>='} {alpha:g}"
            shown = f"psi beyond its no-drift {drift.psi_expected:.3g}" if metric == "psi" else metric
            gate = f"{shown}={effect:.3g} {'>=' if large else '<'} {threshold:g}"
            if not significant:
                reason = test
            elif large:
                reason = f"{test} and {gate}"
            else:
                reason = f"{test} but {gate}: too small to matter"
        verdicts[name] = FeatureVerdict(
            verdict=verdict,
            drifted=drifted,
            pvalue=drift.pvalue,
            corrected_pvalue=float(adjusted),
            effect=effect,
            effect_metric=metric,
            effect_threshold=threshold,
            reason=reason,
        )
    return verdicts


def rank_by_effect(verdicts: Mapping[str, FeatureVerdict]) -> list[str]:
    """Drifted features, largest effect first (ties by name): where to look for a root cause."""
    drifted = [name for name, verdict in verdicts.items() if verdict.drifted]
    return sorted(drifted, key=lambda name: (-verdicts[name].effect, name))
