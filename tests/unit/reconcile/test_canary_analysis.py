"""Each metric's verdict from the candidate's and the stable's answers over the same window."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from modelpilot.api.canary import AnalysisMetric, AnalysisSpec, ThresholdRange
from modelpilot.reconcile.canary import MetricAnswer
from modelpilot.reconcile.canary.analysis import judge_metric, metric_queries, worst
from modelpilot.reconcile.queries import QueryFailed, QueryOutcome, Sample
from tests.support.canary_world import START, Behaviour, feedback_samples, latency_samples, requests_samples

ANALYSIS = AnalysisSpec.model_validate({"prometheus": {"url": "http://prometheus:9090"}, "minSamples": 50})
ERRORS = AnalysisMetric(name="errors", builtin="error-rate", threshold_range={"max": 0.05})
LATENCY = AnalysisMetric(name="latency", builtin="latency", threshold_range={"max": 0.5})
ACCURACY = AnalysisMetric(name="accuracy", builtin="accuracy", threshold_range={"min": 0.8})


HEALTHY = Behaviour()


def answer(make, candidate: Behaviour, n_candidate: float, stable: Behaviour = HEALTHY, n_stable: float = 2000) -> MetricAnswer:
    return MetricAnswer(
        QueryOutcome("c", samples=tuple(make(n_candidate, candidate))), QueryOutcome("s", samples=tuple(make(n_stable, stable)))
    )


def judge(metric: AnalysisMetric, given: MetricAnswer, thresholds_only: bool = False):
    return judge_metric(metric, ANALYSIS, given, thresholds_only=thresholds_only, now=START)


def test_queries_select_each_version_over_the_same_window() -> None:
    custom = AnalysisMetric(name="p50", query="histogram_quantile(0.5, sum by (le) (rate(x_bucket{$selector}[$window])))")
    queries = metric_queries(
        [ERRORS, LATENCY, ACCURACY, custom],
        model="fraud",
        stable="3",
        candidate="4",
        namespace="ml",
        window=timedelta(seconds=95),
    )
    assert queries["errors"].candidate == 'sum by (status) (increase(model_requests_total{model="fraud",version="4"}[1m35s]))'
    assert queries["errors"].stable == queries["errors"].candidate.replace('version="4"', 'version="3"')
    assert "model_request_duration_seconds_bucket" in queries["latency"].candidate
    assert "model_feedback_total" in queries["accuracy"].stable
    assert queries["p50"].candidate == 'histogram_quantile(0.5, sum by (le) (rate(x_bucket{model="fraud",version="4"}[1m35s])))'


def test_same_error_rate_passes_and_a_higher_one_fails_on_threshold_and_baseline() -> None:
    same = judge(ERRORS, answer(requests_samples, Behaviour(error_rate=0.01), 2000, Behaviour(error_rate=0.01)))
    assert same.verdict == "Pass" and same.value == pytest.approx(0.01) and same.baseline == pytest.approx(0.01)
    worse = judge(ERRORS, answer(requests_samples, Behaviour(error_rate=0.2), 200))
    assert worse.verdict == "Fail" and worse.threshold == 0.05 and "above the maximum" in worse.message
    # Within the threshold, yet clearly worse than stable by more than the tolerance (0.01).
    lenient = ERRORS.model_copy(update={"threshold_range": None})
    drift = judge(lenient, answer(requests_samples, Behaviour(error_rate=0.04), 4000))
    assert drift.verdict == "Fail" and drift.threshold == 0.01 and drift.pvalue < 0.05 and drift.effect == pytest.approx(0.04)


def test_too_few_samples_are_inconclusive_then_thresholds_decide() -> None:
    few = answer(requests_samples, Behaviour(error_rate=0.0), 20)
    assert judge(ERRORS, few).verdict == "Inconclusive"
    enough_for_thresholds = answer(requests_samples, Behaviour(error_rate=0.0), 60)
    assert judge(ERRORS, enough_for_thresholds).verdict == "Inconclusive"  # the test against stable needs more
    decided = judge(ERRORS, enough_for_thresholds, thresholds_only=True)
    assert decided.verdict == "Pass" and decided.pvalue is None and "decided on thresholds" in decided.message


def test_slower_latency_distribution_fails_with_p99_under_the_limit() -> None:
    record = judge(LATENCY, answer(latency_samples, Behaviour(latency=0.045), 300, Behaviour(latency=0.02)))
    assert record.value is not None and record.value < 0.5 and record.baseline is not None
    assert record.verdict == "Fail" and record.effect > 0.3 and record.threshold == 0.1
    assert "Mann-Whitney" in record.message
    assert judge(LATENCY, answer(latency_samples, Behaviour(latency=0.02), 300)).verdict == "Pass"


def test_latency_buckets_are_compared_on_the_bounds_both_sides_have() -> None:
    candidate = [s for s in latency_samples(300, Behaviour()) if s.labels["le"] != "0.3"]
    given = MetricAnswer(
        QueryOutcome("c", samples=tuple(candidate)), QueryOutcome("s", samples=tuple(latency_samples(2000, Behaviour())))
    )
    assert judge(LATENCY, given).verdict == "Pass"


def test_lower_accuracy_fails_against_stable_even_above_the_threshold() -> None:
    lenient = ACCURACY.model_copy(update={"threshold_range": ThresholdRange(min=0.5)})
    record = judge(lenient, answer(feedback_samples, Behaviour(accuracy=0.75), 400))
    assert record.verdict == "Fail" and record.value == pytest.approx(0.75) and record.baseline == pytest.approx(0.95)
    assert record.effect == pytest.approx(0.2)


def test_no_data_query_error_and_a_silent_stable_are_told_apart() -> None:
    empty = MetricAnswer(QueryOutcome("c"), QueryOutcome("s", samples=tuple(requests_samples(100, Behaviour()))))
    assert judge(ERRORS, empty).verdict == "NoData"
    failed = QueryFailed("Unreachable", "cannot connect to Prometheus", "c")
    down = MetricAnswer(QueryOutcome("c", error=failed), QueryOutcome("s", error=failed))
    record = judge(ERRORS, down)
    assert record.verdict == "QueryError" and "cannot connect" in record.message
    silent_stable = MetricAnswer(QueryOutcome("c", samples=tuple(requests_samples(100, Behaviour()))), QueryOutcome("s"))
    only_thresholds = judge(ERRORS, silent_stable)
    assert only_thresholds.verdict == "Pass" and "no data to compare" in only_thresholds.message


def test_custom_query_is_judged_on_its_thresholds_with_the_stable_value_beside_it() -> None:
    metric = AnalysisMetric(name="queue", query="max(queue_depth{$selector})", threshold_range={"max": 10})
    over = MetricAnswer(QueryOutcome("c", samples=(Sample({}, 12.0),)), QueryOutcome("s", samples=(Sample({}, 3.0),)))
    record = judge(metric, over)
    assert record.verdict == "Fail" and record.value == 12.0 and record.baseline == 3.0 and record.threshold == 10
    under = MetricAnswer(QueryOutcome("c", samples=(Sample({}, 4.0),)), QueryOutcome("s", samples=(Sample({}, 3.0),)))
    assert judge(metric, under).verdict == "Pass"


def test_a_check_takes_its_worst_verdict() -> None:
    assert worst(["Pass", "Inconclusive", "QueryError"]) == "QueryError"
    assert worst(["NoData", "Fail"]) == "Fail"
    assert worst([]) == "Pass"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_custom_metric_that_answers_no_number_has_no_data(value: float) -> None:
    metric = AnalysisMetric(name="queue", query="max(queue_depth{$selector})", threshold_range={"max": 10})
    record = judge(metric, MetricAnswer(QueryOutcome("c", samples=(Sample({}, value),)), QueryOutcome("s")))
    assert record.verdict == "NoData"  # spec.analysis.noData then says which side it falls to
    assert record.value is None


@pytest.mark.parametrize(
    ("metric", "bad"),
    [
        (ERRORS, Sample({"status": "success"}, math.inf)),
        (ERRORS, Sample({"status": "error"}, -5.0)),
        (ACCURACY, Sample({"predicted": "a", "actual": "a"}, math.nan)),
        (LATENCY, Sample({"le": "0.1"}, math.inf)),
    ],
)
def test_a_candidate_answer_that_cannot_be_counted_has_no_data(metric: AnalysisMetric, bad: Sample) -> None:
    make = {"errors": requests_samples, "accuracy": feedback_samples, "latency": latency_samples}[metric.name]
    healthy = answer(make, Behaviour(), 2000)
    broken = MetricAnswer(QueryOutcome("c", samples=(*healthy.candidate.samples, bad)), healthy.stable)
    assert judge(metric, healthy).verdict == "Pass"
    assert judge(metric, broken).verdict == "NoData"


def test_a_bucket_bound_that_is_not_a_number_has_no_data() -> None:
    healthy = answer(latency_samples, Behaviour(), 2000)
    fast = Sample({"le": "fast"}, 10.0)
    both = MetricAnswer(
        QueryOutcome("c", samples=(*healthy.candidate.samples, fast)), QueryOutcome("s", samples=(*healthy.stable.samples, fast))
    )
    assert judge(LATENCY, both).verdict == "NoData"
