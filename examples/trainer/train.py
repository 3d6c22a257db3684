"""An example training program that honours modelpilot's retraining contract.

It reads what the RetrainPolicy's Job passes as environment, trains a small softmax classifier
on generated tabular data with a hyperparameter search and early stopping, and logs one MLflow
run: the parameters, the test metrics (accuracy, precision, recall, f1: macro averages), the
model under the artifact path `model`, and the tag the operator looks for (MODELPILOT_RUN_TAG).

Contract (set by the operator): MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, MODELPILOT_MODEL_NAME,
MODELPILOT_RUN_TAG (key=value), MODELPILOT_TRIGGER, MODELPILOT_TRIGGER_REASON,
MODELPILOT_DATA_START/END, MODELPILOT_VALIDATION_SPLIT, MODELPILOT_TEST_SPLIT,
MODELPILOT_HYPERPARAMETERS (JSON: strategy, trials, space), MODELPILOT_EARLY_STOPPING (JSON:
patience, min_delta). Knobs of this example only: TRAINER_ROWS, TRAINER_SEED, TRAINER_LABEL_NOISE
(share of training labels replaced at random: a worse model), TRAINER_FAIL (exit 1 at once, as a
crashing job would).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from modelpilot.analysis import quality_from_confusion

CLASSES = ["legit", "review", "fraud"]


def generated_data(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four features; the class follows a fixed rule plus noise, so a model can learn it."""
    x = rng.normal(0, 1, (rows, 4))
    score = 1.4 * x[:, 0] + 0.9 * x[:, 1] - 0.6 * x[:, 2] + rng.normal(0, 0.6, rows)
    y = np.digitize(score, [1.2, 2.4])  # 0 legit, 1 review, 2 fraud
    return x, y


def train(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, params: dict, stopping: dict, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Mini-batch softmax regression; stops when the validation loss has not improved by
    min_delta for `patience` epochs. Returns the best weights and the epochs run."""
    weights = np.zeros((x.shape[1] + 1, len(CLASSES)))
    design, valid = np.hstack([x, np.ones((len(x), 1))]), np.hstack([xv, np.ones((len(xv), 1))])
    onehot = np.eye(len(CLASSES))[y]
    best, best_loss, waited, epochs = weights.copy(), np.inf, 0, 0
    for epochs in range(1, int(params["epochs"]) + 1):
        order = rng.permutation(len(design))
        for start in range(0, len(order), int(params["batch_size"])):
            batch = order[start : start + int(params["batch_size"])]
            logits = design[batch] @ weights
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            weights -= float(params["learning_rate"]) * design[batch].T @ (probabilities - onehot[batch]) / len(batch)
        logits = valid @ weights
        logits -= logits.max(axis=1, keepdims=True)
        loss = float(np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(yv)), yv]))
        if loss < best_loss - float(stopping["min_delta"]):
            best, best_loss, waited = weights.copy(), loss, 0
        else:
            waited += 1
            if waited >= int(stopping["patience"]):
                break
    return best, epochs


def evaluate(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    predicted = np.argmax(np.hstack([x, np.ones((len(x), 1))]) @ weights, axis=1)
    matrix = np.zeros((len(CLASSES), len(CLASSES)))
    np.add.at(matrix, (y, predicted), 1)
    quality = quality_from_confusion(matrix, CLASSES)
    assert quality is not None
    return {"accuracy": quality.accuracy, "precision": quality.precision_macro, "recall": quality.recall_macro, "f1": quality.f1_macro}


def candidates(search: dict, rng: np.random.Generator) -> list[dict]:
    space = {"learning_rate": [0.1], "epochs": [30], "batch_size": [64], **search.get("space", {})}
    names = sorted(space)
    grid = [dict(zip(names, values)) for values in itertools.product(*(space[n] for n in names))]
    if search.get("strategy", "random") == "grid":
        return grid[: int(search.get("trials", len(grid)))]
    picks = rng.choice(len(grid), size=min(int(search.get("trials", 4)), len(grid)), replace=False)
    return [grid[i] for i in picks]


def main() -> int:
    env = os.environ
    if env.get("TRAINER_FAIL") == "1":
        print("failing on purpose (TRAINER_FAIL=1)", file=sys.stderr)
        return 1
    rng = np.random.default_rng(int(env.get("TRAINER_SEED", "1")))
    x, y = generated_data(int(env.get("TRAINER_ROWS", "6000")), rng)
    noise = float(env.get("TRAINER_LABEL_NOISE", "0"))
    test_share, valid_share = float(env.get("MODELPILOT_TEST_SPLIT", "0.2")), float(env.get("MODELPILOT_VALIDATION_SPLIT", "0.2"))
    n_test, n_valid = int(len(x) * test_share), int(len(x) * valid_share)
    x_test, y_test = x[:n_test], y[:n_test]
    x_valid, y_valid = x[n_test : n_test + n_valid], y[n_test : n_test + n_valid]
    x_train, y_train = x[n_test + n_valid :], y[n_test + n_valid :].copy()
    flip = rng.random(len(y_train)) < noise
    y_train[flip] = rng.integers(0, len(CLASSES), int(flip.sum()))

    search = json.loads(env.get("MODELPILOT_HYPERPARAMETERS", "{}"))
    stopping = json.loads(env.get("MODELPILOT_EARLY_STOPPING", '{"patience": 3, "min_delta": 0}'))
    trials = []
    for params in candidates(search, rng):
        weights, epochs = train(x_train, y_train, x_valid, y_valid, params, stopping, rng)
        trials.append((evaluate(weights, x_valid, y_valid)["f1"], params, weights, epochs))
    _, params, weights, epochs = max(trials, key=lambda t: t[0])
    metrics = evaluate(weights, x_test, y_test)

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    name = env.get("MLFLOW_EXPERIMENT_NAME", "modelpilot-example")
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    key, _, value = env.get("MODELPILOT_RUN_TAG", "modelpilot.dev/retrain-run=manual").partition("=")
    tags = {key: value, "modelpilot.dev/trigger": env.get("MODELPILOT_TRIGGER", ""), "mlflow.note.content": env.get("MODELPILOT_TRIGGER_REASON", "")}
    run = client.create_run(experiment_id, tags=tags)
    run_id = run.info.run_id
    for param, setting in {**params, "epochs_run": epochs, "trials": len(trials), "label_noise": noise}.items():
        client.log_param(run_id, param, setting)
    for metric, score in metrics.items():
        client.log_metric(run_id, metric, score)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        model.mkdir()
        (model / "weights.json").write_text(json.dumps({"classes": CLASSES, "weights": weights.tolist()}))
        (model / "MLmodel").write_text("flavors: {}\nmodelpilot_example: softmax-regression\n")
        client.log_artifacts(run_id, str(model), "model")
    client.set_terminated(run_id)
    print(json.dumps({"run_id": run_id, "params": params, "metrics": metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
