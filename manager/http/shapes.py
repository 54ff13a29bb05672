"""The JSON shapes of docs/rest.md: an experiment, a trial, a metric (camelCase, one place each)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from manager.store import ExperimentRecord, FailureSummary, MetricRecord, Store, TrialRecord
from trials.metrics import metric_default
from trials.status import TrialStatus


def experiment_json(
    record: ExperimentRecord,
    counts: Mapping[TrialStatus, int],
    best: TrialRecord | None,
    failures: FailureSummary | None = None,
) -> dict[str, Any]:
    """The experiment; ``failures`` (none when omitted) says why its FAILED trials failed."""
    config = dict(record.config)
    config.update(
        trialConcurrency=record.trial_concurrency,
        maxTrialNumber=record.max_trial_number,
        maxExperimentDuration=record.max_experiment_duration,
    )
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status.value,
        "createdAt": record.created_at,
        "startTime": record.start_time,
        "endTime": record.end_time,
        "trialConcurrency": record.trial_concurrency,
        "maxTrialNumber": record.max_trial_number,
        "maxExperimentDuration": record.max_experiment_duration,
        "optimizeMode": record.optimize_mode,
        "tuner": record.tuner_name,
        "trialCounts": {status.value: counts.get(status, 0) for status in TrialStatus},
        "trialsStarted": record.trials_started,
        "bestTrialId": best.id if best is not None else None,
        "bestMetric": final_metric(best) if best is not None else None,
        "error": record.error,
        **failures_json(failures or FailureSummary()),
        "experimentDir": str(record.experiment_dir),
        "config": config,
    }


def describe_experiment(store: Store, record: ExperimentRecord) -> dict[str, Any]:
    """:func:`experiment_json` with the experiment's trial counts and best trial read from ``store``."""
    counts = store.trial_counts([record.id])[record.id]
    best = store.best_trials(record.id, 1, record.optimize_mode)
    failures = store.failure_summaries([record.id])[record.id]
    return experiment_json(record, counts, best[0] if best else None, failures)


def failures_json(failures: FailureSummary) -> dict[str, Any]:
    """``failureReasons`` (the commonest first, at most 3) and ``otherFailures`` (FAILED for other reasons).

    The counts add up to ``trialCounts.FAILED``; the full reason text is here, cut only where shown.
    """
    return {
        "failureReasons": [
            {"reason": r.reason, "count": r.count, "trialId": r.trial_id} for r in failures.reasons
        ],
        "otherFailures": failures.others,
    }


def final_metric(trial: TrialRecord) -> float | None:
    """The trial's final result as one number (its ``default`` key when it reported a dict).

    A multi-objective result may be a dict of its metrics with no ``default``: it has no one
    number, so the stored column (None unless the store chose one) stands for it."""
    data = trial.final_metric_data
    if data is None:
        return None
    if isinstance(data, Mapping) and "default" not in data:
        return trial.final_metric
    return metric_default(data)


def trial_json(trial: TrialRecord, now: int | None = None) -> dict[str, Any]:
    return {
        "id": trial.id,
        "experimentId": trial.experiment_id,
        "sequenceId": trial.sequence_id,
        "status": trial.status.value,
        "parameterId": trial.parameter_id,
        "parameters": trial.parameters,
        "startTime": trial.start_time,
        "endTime": trial.end_time,
        "duration": trial.duration(now),
        "exitCode": trial.exit_code,
        "signal": trial.signal,
        "reason": trial.reason,
        "stopStep": trial.stop_step,
        "waitingReason": trial.waiting_reason,
        "finalMetric": final_metric(trial),
        "finalMetricData": trial.final_metric_data,
        "gpus": list(trial.gpus),
        "trialDir": str(trial.trial_dir),
        "launch": trial.launch,
    }


def metric_json(metric: MetricRecord) -> dict[str, Any]:
    default = metric.default_value
    if default is None:  # NaN (or inf) is stored as NULL in the float column; the JSON keeps it
        default = metric_default(metric.value)
    return {
        "id": metric.id,
        "trialId": metric.trial_id,
        "type": metric.type,
        "sequence": metric.sequence,
        "value": metric.value,
        "defaultValue": default,
        "time": metric.time,
    }
