"""The replay state of a journal: every record as the journal holds it (storage form, times as
ISO text), indexed the ways the queries need. Writing and replaying both go through `apply`, so
the state after a write is exactly what a later replay of the file builds.

Operations, one per line: `experiment`, `trials` (a batch, each trial with its optional `ttpt`),
`ttpt`, `summary`, `strategy`, `delete`, and `batch` (the operations of one transaction).
"""

from __future__ import annotations

from typing import Any

from tracker import codec

KINDS = ("experiment", "trial", "ttpt")


class JournalState:
    """The records of a journal, replayed."""

    def __init__(self) -> None:
        self.experiments: dict[int, dict[str, Any]] = {}
        self.trials: dict[int, dict[str, Any]] = {}
        self.by_experiment: dict[int, dict[int, int]] = {}  # experiment id -> trial number -> trial id
        self.ttpt: dict[int, dict[str, Any]] = {}
        self.ttpt_by_trial: dict[int, list[int]] = {}
        self.next_ids = dict.fromkeys(KINDS, 1)

    def take_ids(self, header: dict[str, Any]) -> None:
        """Start the id counters where the journal's header says (ids are never reused)."""
        for kind, value in header.get("next_ids", {}).items():
            self.next_ids[kind] = max(self.next_ids[kind], int(value))

    def _seen(self, kind: str, value: int) -> None:
        if value >= self.next_ids[kind]:
            self.next_ids[kind] = value + 1

    def apply(self, op: dict[str, Any]) -> None:
        """Apply one operation; raises KeyError, TypeError or ValueError for a malformed one."""
        kind = op["op"]
        if kind == "experiment":
            record = op["experiment"]
            self.experiments[record["id"]] = record
            self.by_experiment.setdefault(record["id"], {})
            self._seen("experiment", record["id"])
        elif kind == "trials":
            for item in op["trials"]:
                self._add_trial(op["experiment_id"], item)
        elif kind == "ttpt":
            self._add_ttpt(op["ttpt"])
        elif kind == "summary":
            self.experiments[op["experiment_id"]]["summary"] = op["summary"]
        elif kind == "strategy":
            trial = self.trials[op["trial_id"]]
            for key in ("strategy_code", "strategy_template", "generation_method"):
                trial[key] = op[key]
        elif kind == "delete":
            self._delete(op["experiment_id"])
        elif kind == "batch":
            for inner in op["ops"]:
                self.apply(inner)
        else:
            raise KeyError(f"unknown operation {kind!r}")

    def _add_trial(self, experiment_id: int, item: dict[str, Any]) -> None:
        record = {key: value for key, value in item.items() if key != "ttpt"}
        record["experiment_id"] = experiment_id
        record["value"] = codec.number(record.get("value"))  # decoded once: queries sort by it
        self.trials[record["id"]] = record
        self.by_experiment[experiment_id][record["trial_number"]] = record["id"]
        self._seen("trial", record["id"])
        if item.get("ttpt") is not None:
            self._add_ttpt({**item["ttpt"], "trial_id": record["id"]})

    def _add_ttpt(self, item: dict[str, Any]) -> None:
        self.ttpt[item["id"]] = item
        self.ttpt_by_trial.setdefault(item["trial_id"], []).append(item["id"])
        self._seen("ttpt", item["id"])

    def _delete(self, experiment_id: int) -> None:
        del self.experiments[experiment_id]
        for trial_id in self.by_experiment.pop(experiment_id).values():
            del self.trials[trial_id]
            for ttpt_id in self.ttpt_by_trial.pop(trial_id, []):
                del self.ttpt[ttpt_id]

    def snapshot(self) -> list[dict[str, Any]]:
        """Operations that rebuild this state (for compaction): experiments with their trials,
        then TTPT results, in id order."""
        ops: list[dict[str, Any]] = []
        for experiment_id, experiment in self.experiments.items():
            ops.append({"op": "experiment", "experiment": experiment})
            ids = sorted(self.by_experiment[experiment_id].values())
            if ids:
                items = [
                    {
                        **{k: v for k, v in self.trials[i].items() if k != "experiment_id"},
                        "value": _stored(self.trials[i]),
                    }
                    for i in ids
                ]
                ops.append({"op": "trials", "experiment_id": experiment_id, "trials": items})
        ops.extend({"op": "ttpt", "ttpt": record} for record in sorted(self.ttpt.values(), key=lambda r: r["id"]))
        return ops


def _stored(trial: dict[str, Any]) -> Any:
    value = trial["value"]
    return None if value is None else codec.encode(value, "value")
