"""Realistic data for the dashboard's tests and bench: a one-shot search log and a big experiment.

``write_search_log`` writes the folder of DESIGN.md ("Search log") as a DARTS search of two cells
would: ``search_space.json``, ``graph.json`` (the format documented in manager/views/searchlog.py),
``weights.jsonl`` with softmaxed architecture weights that drift towards one candidate per
choice, ``metrics.jsonl`` and, when finished, ``architecture.json``. ``make_experiment`` fills a
daemon home with a DONE experiment of N trials and M intermediate results each, written straight
into the store's tables (10,000 x 100 takes a few seconds), whose metrics depend on the chosen
ops so that "which ops matter" has an answer.
"""

from __future__ import annotations

import json
import math
import random
import string
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, update

from manager.store import Store, now_ms
from manager.store.schema import ExperimentRow, MetricRow, TrialRow

OPS = ["maxpool", "avgpool", "skipconnect", "sepconv3x3", "sepconv5x5", "dilconv3x3", "dilconv5x5"]


def darts_space(nodes: int = 3, cells: tuple[str, ...] = ("normal", "reduce")) -> dict[str, Any]:
    """DARTS keys: ``<cell>_n<d>_p<i>`` (one op per earlier node) and ``<cell>_n<d>_switch`` (pick 2)."""
    space: dict[str, Any] = {}
    for cell in cells:
        for d in range(2, nodes + 2):
            ops = [f"{cell}_n{d}_p{i}" for i in range(d)]
            for key in ops:
                space[key] = {"_type": "layer_choice", "_value": list(OPS)}
            space[f"{cell}_n{d}_switch"] = {
                "_type": "input_choice",
                "_value": {"candidates": ops, "n_chosen": 2},
            }
    return space


def darts_graph(space: dict[str, Any], nodes: int = 3, cells: tuple[str, ...] = ("normal", "reduce")) -> dict:
    """The super-net of :func:`darts_space` in graph.json form: stem, cells as scopes, classifier."""
    graph_nodes: list[dict[str, Any]] = [
        {"id": "input", "type": "input", "label": "image"},
        {"id": "stem", "type": "module", "label": "stem conv3x3"},
    ]
    edges: list[dict[str, str]] = [{"source": "input", "target": "stem"}]
    previous = ["stem", "stem"]
    for cell in cells:
        graph_nodes.append({"id": cell, "type": "scope", "label": f"{cell} cell"})
        states = [f"{cell}/s0", f"{cell}/s1"]
        for i, state in enumerate(states):
            graph_nodes.append({"id": state, "type": "module", "label": f"preproc{i}", "parent": cell})
            edges.append({"source": previous[i], "target": state})
        for d in range(2, nodes + 2):
            ops = [f"{cell}_n{d}_p{i}" for i in range(d)]
            for i, key in enumerate(ops):
                graph_nodes.append(
                    {
                        "id": key,
                        "type": "layer_choice",
                        "key": key,
                        "candidates": space[key]["_value"],
                        "parent": cell,
                    }
                )
                edges.append({"source": states[i], "target": key})
            switch = f"{cell}_n{d}_switch"
            graph_nodes.append(
                {
                    "id": switch,
                    "type": "input_choice",
                    "key": switch,
                    "candidates": ops,
                    "n_chosen": 2,
                    "parent": cell,
                }
            )
            edges.extend({"source": key, "target": switch} for key in ops)
            states.append(switch)
        concat = f"{cell}/concat"
        graph_nodes.append({"id": concat, "type": "module", "label": "concat", "parent": cell})
        edges.extend({"source": s, "target": concat} for s in states[2:])
        previous = [previous[1], concat]
    graph_nodes += [
        {"id": "classifier", "type": "module", "label": "pool + linear"},
        {"id": "output", "type": "output", "label": "logits"},
    ]
    edges += [{"source": previous[1], "target": "classifier"}, {"source": "classifier", "target": "output"}]
    return {"nodes": graph_nodes, "edges": edges}


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [round(e / total, 6) for e in exps]


def write_search_log(
    folder: Path, steps: int = 120, nodes: int = 3, finished: bool = True, seed: int = 0, graph: bool = True
) -> Path:
    """A DARTS-like search log with ``steps`` logged steps; returns the folder."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    space = darts_space(nodes)
    (folder / "search_space.json").write_text(json.dumps(space, indent=2, sort_keys=True))
    if graph:
        (folder / "graph.json").write_text(json.dumps(darts_graph(space, nodes)))
    favourite = {key: rng.randrange(len(_names(entry))) for key, entry in space.items()}
    drift = {key: [rng.gauss(0, 0.4) for _ in _names(entry)] for key, entry in space.items()}
    steps_per_epoch = 10
    final: dict[str, list[float]] = {}
    with open(folder / "weights.jsonl", "w") as weights, open(folder / "metrics.jsonl", "w") as metrics:
        for step in range(steps):
            progress = step / max(1, steps - 1)
            record: dict[str, list[float]] = {}
            for key, entry in space.items():
                logits = [
                    drift[key][i] * progress
                    + (2.5 * progress if i == favourite[key] else 0)
                    + rng.gauss(0, 0.05)
                    for i in range(len(_names(entry)))
                ]
                record[key] = _softmax(logits)
            final = record
            line = {"step": step * 50, "epoch": step // steps_per_epoch, "weights": record}
            weights.write(json.dumps(line) + "\n")
            loss = 2.3 * math.exp(-3 * progress) + 0.1 + rng.gauss(0, 0.03)
            accuracy = min(0.99, 0.1 + 0.85 * (1 - math.exp(-4 * progress)) + rng.gauss(0, 0.01))
            metrics.write(
                json.dumps(
                    {
                        "step": step * 50,
                        "epoch": step // steps_per_epoch,
                        "train_loss": loss,
                        "val_acc": accuracy,
                    }
                )
                + "\n"
            )
    if finished:
        architecture = {}
        for key, entry in space.items():
            names = _names(entry)
            ranked = sorted(range(len(names)), key=lambda i: -final[key][i])
            if entry["_type"] == "layer_choice":
                architecture[key] = {"_value": names[ranked[0]], "_idx": ranked[0]}
            else:
                chosen = sorted(ranked[:2])
                architecture[key] = {"_value": [names[i] for i in chosen], "_idx": chosen}
        (folder / "architecture.json").write_text(json.dumps(architecture, indent=2))
    return folder


def _names(entry: dict[str, Any]) -> list[str]:
    value = entry["_value"]
    return list(value["candidates"]) if isinstance(value, dict) else list(value)


# -- a big classic experiment ---------------------------------------------------------------------

#: A digits-like space: which ops matter is planted in :data:`OP_BONUS`.
CLASSIC_SPACE: dict[str, Any] = {
    "conv1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3"]},
    "conv2": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["conv1"], "n_chosen": None}},
    "lr": {"_type": "choice", "_value": [0.1, 0.01, 0.001]},
}
OP_BONUS = {"conv3x3": 0.03, "conv5x5": 0.05, "sepconv3x3": 0.07, "maxpool3x3": -0.08}


def _trial_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        tid = rng.choice(string.ascii_letters) + "".join(
            rng.choices(string.ascii_letters + string.digits, k=4)
        )
        if tid not in taken:
            taken.add(tid)
            return tid


def make_experiment(
    home: Path, trials: int = 10_000, intermediates: int = 100, seed: int = 0, name: str = "big-random"
) -> str:
    """A DONE experiment of ``trials`` trials with ``intermediates`` results each; returns its id."""
    rng = random.Random(seed)
    home.mkdir(parents=True, exist_ok=True)
    store = Store.open(home)
    try:
        record = store.create_experiment(
            name=name,
            config={"experimentName": name, "trialCommand": "python model.py", "searchSpace": CLASSIC_SPACE},
            search_space=CLASSIC_SPACE,
            trial_concurrency=4,
            max_trial_number=trials,
            max_experiment_duration=None,
            optimize_mode="maximize",
            tuner_name="Random",
            experiments_root=home / "experiments",
        )
        db_url = store.db_url
    finally:
        store.close()
    start = now_ms() - trials * 1000
    taken: set[str] = set()
    trial_rows, metric_rows = [], []
    for seq in range(trials):
        tid = _trial_id(rng, taken)
        ops = [rng.randrange(4), rng.randrange(4)]
        skip = rng.random() < 0.5
        lr = rng.randrange(3)
        names = CLASSIC_SPACE["conv1"]["_value"]
        parameters = {
            "conv1": {"_value": names[ops[0]], "_idx": ops[0]},
            "conv2": {"_value": names[ops[1]], "_idx": ops[1]},
            "skip": {"_value": ["conv1"] if skip else [], "_idx": [0] if skip else []},
            "lr": CLASSIC_SPACE["lr"]["_value"][lr],
        }
        quality = (
            0.8 + sum(OP_BONUS[names[i]] for i in ops) + (0.02 if skip else 0) + (0.01 if lr == 1 else 0)
        )
        final = max(0.0, min(1.0, quality + rng.gauss(0, 0.02)))
        status = "FAILED" if rng.random() < 0.03 else "SUCCEEDED"
        begin = start + seq * 1000
        end = begin + rng.randint(2000, 9000)
        trial_rows.append(
            {
                "id": tid,
                "experiment_id": record.id,
                "sequence_id": seq,
                "parameter_id": seq,
                "parameters": parameters,
                "status": status,
                "created_at": begin,
                "start_time": begin,
                "end_time": end,
                "exit_code": 0 if status == "SUCCEEDED" else 1,
                "reason": None if status == "SUCCEEDED" else "exit code 1",
                "final_metric": final if status == "SUCCEEDED" else None,
                "final_metric_data": final if status == "SUCCEEDED" else None,
                "gpus": [],
                "trial_dir": str(record.experiment_dir / "trials" / tid),
                "metrics_offset": 0,
            }
        )
        for step in range(intermediates):
            value = final * (1 - math.exp(-4 * (step + 1) / intermediates))
            metric_rows.append(
                {
                    "experiment_id": record.id,
                    "trial_id": tid,
                    "type": "PERIODICAL",
                    "sequence": step,
                    "value": value,
                    "default_value": value,
                    "time": begin + step * 10,
                }
            )
        if status == "SUCCEEDED":
            metric_rows.append(
                {
                    "experiment_id": record.id,
                    "trial_id": tid,
                    "type": "FINAL",
                    "sequence": 0,
                    "value": final,
                    "default_value": final,
                    "time": end,
                }
            )
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(TrialRow.__table__.insert(), trial_rows)
            for i in range(0, len(metric_rows), 50_000):
                connection.execute(MetricRow.__table__.insert(), metric_rows[i : i + 50_000])
            connection.execute(
                update(ExperimentRow)
                .where(ExperimentRow.id == record.id)
                .values(
                    status="DONE",
                    start_time=start,
                    end_time=start + trials * 1000 + 9000,
                    next_sequence_id=trials,
                )
            )
    finally:
        engine.dispose()
    return record.id
