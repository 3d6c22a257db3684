"""PromQL for each model server preset, and rendering templates for one model and window.

Every query aggregates across features or classes in one request (``sum by (feature, le)``),
so an evaluation costs the same number of queries whatever the number of features. Each query
returns fixed labels, which is the contract a user's override must keep:

| query | labels of the result |
| --- | --- |
| latencyBuckets | le (cumulative, as histogram buckets are) |
| latencySum | none (seconds spent, summed) |
| requests | status: `success`, anything else counts as an error |
| predictions | class |
| feedback | predicted, actual |
| featureBuckets | feature, le |
| featureCategories | feature, category |
| batchSize | none (mean batch size) |
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from modelpilot.api import format_duration
from modelpilot.api.monitor import QUERY_NAMES

__all__ = ["PRESETS", "Preset", "QUERY_NAMES", "escape_label_value", "render"]


# Quality and drift come from the modelpilot instrumentation, whatever serves the model.
_MODEL_DATA = {
    "predictions": "sum by (class) (increase(model_predictions_total{$selector}[$window]))",
    "feedback": "sum by (predicted, actual) (increase(model_feedback_total{$selector}[$window]))",
    "featureBuckets": "sum by (feature, le) (increase(model_feature_value_bucket{$selector}[$window]))",
    "featureCategories": "sum by (feature, category) (increase(model_feature_category_total{$selector}[$window]))",
}


@dataclass(frozen=True)
class Preset:
    """Metric names and label matchers of one model server."""

    name: str
    selector: str
    with_version: str
    queries: Mapping[str, str] = field(default_factory=dict)
    latency_unit: float = 1.0
    reports_errors: bool = True


PRESETS: dict[str, Preset] = {
    "generic": Preset(
        name="generic",
        selector='model="$model"',
        with_version=',version="$version"',
        queries={
            "latencyBuckets": "sum by (le) (increase(model_request_duration_seconds_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(model_request_duration_seconds_sum{$selector}[$window]))",
            "requests": "sum by (status) (increase(model_requests_total{$selector}[$window]))",
            "batchSize": (
                "sum(increase(model_batch_size_sum{$selector}[$window]))"
                " / sum(increase(model_batch_size_count{$selector}[$window]))"
            ),
            **_MODEL_DATA,
        },
    ),
    "tfserving": Preset(
        name="tfserving",
        selector='model_name="$model"',
        with_version="",
        latency_unit=1e-6,
        queries={
            "latencyBuckets": "sum by (le) (increase(:tensorflow:serving:request_latency_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(:tensorflow:serving:request_latency_sum{$selector}[$window])) / 1e6",
            "requests": (
                "sum by (status) (label_replace(increase(:tensorflow:serving:request_count{$selector}[$window]),"
                ' "status", "success", "status", "OK"))'
            ),
            "batchSize": (
                "sum(increase(:tensorflow:serving:batching_session:processed_batch_size_sum{$selector}[$window]))"
                " / sum(increase(:tensorflow:serving:batching_session:processed_batch_size_count{$selector}[$window]))"
            ),
            **_MODEL_DATA,
        },
    ),
    "triton": Preset(
        name="triton",
        selector='model="$model"',
        with_version=',version="$version"',
        queries={
            # Triton exports no latency histogram by default; its summed durations give the mean.
            "latencyBuckets": "sum by (le) (increase(nv_inference_request_duration_us_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(nv_inference_request_duration_us{$selector}[$window])) / 1e6",
            "requests": (
                'label_replace(sum(increase(nv_inference_request_success{$selector}[$window])), "status", "success", "", "")'
                ' or label_replace(sum(increase(nv_inference_request_failure{$selector}[$window])), "status", "error", "", "")'
            ),
            "batchSize": (
                "sum(increase(nv_inference_count{$selector}[$window]))"
                " / sum(increase(nv_inference_exec_count{$selector}[$window]))"
            ),
            **_MODEL_DATA,
        },
        latency_unit=1e-6,
    ),
    "kserve": Preset(
        name="kserve",
        selector='model_name="$model"',
        with_version="",
        reports_errors=False,
        queries={
            "latencyBuckets": "sum by (le) (increase(request_predict_seconds_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(request_predict_seconds_sum{$selector}[$window]))",
            "requests": (
                'label_replace(sum(increase(request_predict_seconds_count{$selector}[$window])), "status", "success", "", "")'
            ),
            **_MODEL_DATA,
        },
    ),
}


def render(
    preset: Preset,
    name: str,
    *,
    model: str,
    version: str | None,
    namespace: str,
    window: timedelta,
    overrides: Mapping[str, str] | None = None,
) -> str | None:
    """The PromQL of query ``name`` for one model and window; None when the preset has none."""
    template = (overrides or {}).get(name) or preset.queries.get(name)
    if template is None:
        return None
    # Values go inside double-quoted PromQL strings: escaped, a crafted version cannot end the string.
    values = {
        "model": escape_label_value(model),
        "version": escape_label_value(version or ""),
        "namespace": escape_label_value(namespace),
        "window": format_duration(window),
    }
    selector = string.Template(preset.selector + (preset.with_version if version else "")).substitute(values)
    return string.Template(template).substitute({**values, "selector": selector})


def escape_label_value(value: str) -> str:
    """``value`` as the inside of a double-quoted PromQL string (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
