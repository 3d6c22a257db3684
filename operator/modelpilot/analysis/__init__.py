"""Pure statistics on arrays and counts: data drift, classification quality, trends, canary
comparisons and resource recommendations. Imports nothing else of modelpilot and does no I/O."""

from modelpilot.analysis.adwin import AdwinChange, adwin, adwin_batches
from modelpilot.analysis.compare import Comparison, compare_binned, compare_proportions
from modelpilot.analysis.drift import (
    FeatureDrift,
    FeatureVerdict,
    assess_drift,
    correct_pvalues,
    drift_from_counts,
    drift_from_samples,
    rank_by_effect,
)
from modelpilot.analysis.histogram import BucketCounts, bucket_counts, buckets_from_cumulative, histogram_quantile
from modelpilot.analysis.quality import ClassQuality, Quality, confusion_from_counts, quality_from_confusion
from modelpilot.analysis.resources import SeriesSummary, cpu_request, memory_request, summarise
from modelpilot.analysis.trend import Trend, mann_kendall, page_hinkley

__all__ = [
    "AdwinChange",
    "adwin",
    "adwin_batches",
    "BucketCounts",
    "ClassQuality",
    "Comparison",
    "FeatureDrift",
    "FeatureVerdict",
    "Quality",
    "SeriesSummary",
    "Trend",
    "assess_drift",
    "bucket_counts",
    "buckets_from_cumulative",
    "compare_binned",
    "compare_proportions",
    "confusion_from_counts",
    "cpu_request",
    "correct_pvalues",
    "drift_from_counts",
    "drift_from_samples",
    "histogram_quantile",
    "mann_kendall",
    "memory_request",
    "page_hinkley",
    "quality_from_confusion",
    "rank_by_effect",
    "summarise",
]
