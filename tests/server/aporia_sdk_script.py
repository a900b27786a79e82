"""Drive the real Aporia v1 SDK (PyPI ``aporia[training]==1.0.96``) against a live
``labelwatch serve``, and write what it sent as JSON for the test to compare.

Run by ``tests/server/test_aporia.py`` with the interpreter of ``.venv-aporia`` (made by
``tools/aporia_sdk/setup.sh``; the SDK pins numpy<2 and pandas<2):

    .venv-aporia/bin/python tests/server/aporia_sdk_script.py --port 8765 --token T --out sent.json

A multi-label version with two dict fields; 300 predictions (seeded) logged one by one,
in batches and once more (a resend), actuals inline, one by one, in batches and some
before their predictions, 20 left unlabeled; raw inputs; a training set; flush; shutdown.
Only interface facts of the SDK are used (its public calls), none of its code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from typing import Any

import aporia
import numpy as np
import pandas as pd

MODEL_ID = "movies-aporia"
VERSION = "v1"
ENVIRONMENT = "production"
FIELDS = {"genres": ["action", "comedy", "drama", "horror"], "moods": ["dark", "light", "tense"]}
FEATURES = {"year": "numeric", "runtime": "numeric", "language": "categorical"}
N, N_TRAIN = 300, 400
UNLABELED = range(250, 270)  # never get actuals
EARLY = range(270, N)  # actuals logged (and flushed) before their predictions
T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)


def simulate(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Features, 0/1 labels and scores (a sigmoid of a noisy signal) per field."""
    out: dict[str, Any] = {
        "year": rng.integers(1950, 2021, n),
        "runtime": np.round(rng.normal(110, 20, n), 1),
        "language": rng.integers(0, 5, n),
    }
    for field, labels in FIELDS.items():
        prevalence = rng.uniform(0.15, 0.5, len(labels))
        y = rng.random((n, len(labels))) < prevalence
        logits = rng.normal(0, 1.2, y.shape) + np.where(y, 1.2, -1.2)
        out[field] = (y.astype(int), 1 / (1 + np.exp(-logits)))
    return out


def as_dicts(matrix: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    return [dict(zip(labels, row.tolist(), strict=True)) for row in matrix]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )

    rng = np.random.default_rng(args.seed)
    data = simulate(rng, N)
    # ids: a few ints (the SDK sends them as JSON numbers), the rest str
    ids: list[Any] = [9000 + i if i < 5 else f"m-{i:04d}" for i in range(N)]
    scores = {f: as_dicts(data[f][1], labels) for f, labels in FIELDS.items()}
    truth = {f: as_dicts(data[f][0], labels) for f, labels in FIELDS.items()}
    stamps = [T0 + dt.timedelta(minutes=2 * i) for i in range(N)]
    records = [
        {
            "id": ids[i],
            "features": {
                "year": data["year"][i],  # numpy ints and floats, as user code has them
                "runtime": data["runtime"][i],
                "language": int(data["language"][i]),
            },
            "predictions": {f: scores[f][i] for f in FIELDS},
            "occurred_at": stamps[i],
        }
        for i in range(N)
    ]
    actuals = {i: {f: truth[f][i] for f in FIELDS} for i in range(N) if i not in UNLABELED}

    aporia.init(
        token=args.token,
        host="http://127.0.0.1",
        port=args.port,
        environment=ENVIRONMENT,
        throw_errors=True,
    )
    create = {
        "model_id": MODEL_ID,
        "model_version": VERSION,
        "model_type": "multi-label",
        "features": FEATURES,
        "predictions": {f: "dict" for f in FIELDS},
        "raw_inputs": {"title": "text"},
    }
    model = aporia.create_model_version(**create)
    again = aporia.create_model_version(**create)  # an unchanged script run twice
    assert model is not None and again is not None, "create_model_version failed"

    # actuals before their predictions, stored first
    model.log_batch_actuals([{"id": ids[i], "actuals": actuals[i]} for i in EARLY])
    assert model.flush() == 0
    for i in range(25):  # one by one; the first 10 with their actuals inline
        model.log_prediction(**records[i], actuals=actuals[i] if i < 10 else None)
    for start in range(25, N, 100):
        model.log_batch_prediction(records[start : start + 100])
    model.log_batch_prediction(records[25:75])  # a resend: the same ids and values
    assert model.flush() == 0
    for i in range(10, 60):
        model.log_actuals(id=ids[i], actuals=actuals[i])
    model.log_batch_actuals([{"id": ids[i], "actuals": actuals[i]} for i in range(60, 250)])
    for i in range(5):
        model.log_raw_inputs(id=ids[i], raw_inputs={"title": f"film {i}"})

    train = simulate(rng, N_TRAIN)
    train_features = pd.DataFrame({name: train[name] for name in FEATURES})
    train_features["language"] = train_features["language"].astype("category")
    train_labels = pd.DataFrame({f: as_dicts(train[f][0], labels) for f, labels in FIELDS.items()})
    model.log_training_set(features=train_features, labels=train_labels)
    unfinished = model.flush()
    aporia.shutdown()

    sent = {
        "model_id": MODEL_ID,
        "version": VERSION,
        "environment": ENVIRONMENT,
        "fields": FIELDS,
        "flush": unfinished,
        "predictions": [
            {
                "id": str(r["id"]),
                "features": {
                    k: v.item() if hasattr(v, "item") else v for k, v in r["features"].items()
                },
                "predictions": r["predictions"],
                "timestamp": r["occurred_at"].isoformat(),
                "actuals": actuals.get(i),
                "raw_inputs": {"title": f"film {i}"} if i < 5 else None,
            }
            for i, r in enumerate(records)
        ],
        "training": {
            "features": {name: train[name].tolist() for name in FEATURES},
            "labels": {f: train[f][0].tolist() for f in FIELDS},
        },
    }
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(sent, fh)
    print("done: flush ->", unfinished)


if __name__ == "__main__":
    main()
