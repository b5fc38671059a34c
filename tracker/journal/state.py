"""The replay state of a journal: every record as the journal holds it (storage form, times as
ISO text), indexed the ways the queries need. Writing and replaying both go through `apply`, so
the state after a write is exactly what a later replay of the file builds.

Operations, one per line: `experiment`, `trials` (a batch, each trial with its optional `ttpt`),
`ttpt`, `summary`, `strategy`, `delete`, `tags`, `note`, `steps`, `artifact`, `returns` (a trial's
returns series: the SHA-256 of its values file and of its index file, and its length), `text` (a strategy
code, once per distinct text; trials refer to it by SHA-256) and `batch` (the operations of one
transaction). Version 1 journals held strategy code inline in each trial: replaying one moves it
into `texts` the same way.
"""

from __future__ import annotations

from typing import Any

from tracker.store import blobs, codec

KINDS = ("experiment", "trial", "ttpt")


class JournalState:
    """The records of a journal, replayed."""

    def __init__(self) -> None:
        self.experiments: dict[int, dict[str, Any]] = {}
        self.trials: dict[int, dict[str, Any]] = {}
        self.by_experiment: dict[int, dict[int, int]] = {}  # experiment id -> trial number -> trial id
        self.ttpt: dict[int, dict[str, Any]] = {}
        self.ttpt_by_trial: dict[int, list[int]] = {}
        self.texts: dict[str, str] = {}  # strategy code by SHA-256
        self.steps: dict[int, dict[tuple[str, int], Any]] = {}  # trial id -> (key, step) -> stored value
        self.artifacts: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}  # owner -> name -> artifact
        self.returns: dict[int, dict[str, Any]] = {}  # trial id -> the `returns` operation
        self.next_ids = dict.fromkeys(KINDS, 1)

    def take_ids(self, header: dict[str, Any]) -> None:
        """Start the id counters where the journal's header says (ids are never reused)."""
        for kind, value in header.get("next_ids", {}).items():
            self.next_ids[kind] = max(self.next_ids[kind], int(value))

    def _seen(self, kind: str, value: int) -> None:
        if value >= self.next_ids[kind]:
            self.next_ids[kind] = value + 1

    def owner(self, kind: str, owner_id: int) -> dict[str, Any]:
        """The stored experiment or trial; raises KeyError."""
        return (self.experiments if kind == "experiment" else self.trials)[owner_id]

    def apply(self, op: dict[str, Any]) -> None:
        """Apply one operation; raises KeyError, TypeError or ValueError for a malformed one."""
        kind = op["op"]
        if kind == "experiment":
            record = {**op["experiment"]}
            record.setdefault("tags", {})
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
            trial["strategy_code_sha256"] = self._code(op)
            trial["strategy_template"], trial["generation_method"] = op["strategy_template"], op["generation_method"]
        elif kind == "text":
            self.texts[_sha(op["sha256"])] = op["text"]
        elif kind == "tags":
            tags = self.owner(op["kind"], op["id"])["tags"] = dict(self.owner(op["kind"], op["id"])["tags"])
            for key, value in op["tags"].items():
                if value is None:
                    tags.pop(key, None)
                else:
                    tags[key] = value
        elif kind == "note":
            self.owner(op["kind"], op["id"])["note"] = op["note"]
        elif kind == "steps":
            steps = self.steps.setdefault(op["trial_id"], {})
            for step, key, value in op["metrics"]:
                steps[(key, step)] = value
        elif kind == "artifact":
            _sha(op["sha256"])
            item = {k: v for k, v in op.items() if k != "op"}
            self.artifacts.setdefault((op["kind"], op["id"]), {})[op["name"]] = item
        elif kind == "returns":
            self.trials[op["trial_id"]]
            self.returns[op["trial_id"]] = op
        elif kind == "delete":
            self._delete(op["experiment_id"])
        elif kind == "batch":
            for inner in op["ops"]:
                self.apply(inner)
        else:
            raise KeyError(f"unknown operation {kind!r}")

    def _code(self, item: dict[str, Any]) -> str | None:
        """The SHA-256 of an item's strategy code (a version 1 item holds the text itself)."""
        if "strategy_code" in item:
            text = item["strategy_code"]
            if text is None:
                return None
            sha = blobs.name_of(text)
            self.texts[sha] = text
            return sha
        stored = item.get("strategy_code_sha256")
        return None if stored is None else _sha(stored)

    def _add_trial(self, experiment_id: int, item: dict[str, Any]) -> None:
        record = {key: value for key, value in item.items() if key not in ("ttpt", "strategy_code")}
        record["strategy_code_sha256"] = self._code(item)
        record["experiment_id"] = experiment_id
        record["value"] = codec.number(record.get("value"))  # decoded once: queries sort by it
        record.setdefault("tags", {})
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
        self.artifacts.pop(("experiment", experiment_id), None)
        for trial_id in self.by_experiment.pop(experiment_id).values():
            del self.trials[trial_id]
            self.steps.pop(trial_id, None)
            self.returns.pop(trial_id, None)
            self.artifacts.pop(("trial", trial_id), None)
            for ttpt_id in self.ttpt_by_trial.pop(trial_id, []):
                del self.ttpt[ttpt_id]

    def referenced_blobs(self) -> set[str]:
        """The SHA-256 of every artifact, returns values file and index still referred to
        (compaction keeps these files)."""
        found = {item["sha256"] for named in self.artifacts.values() for item in named.values()}
        found.update(op["values"] for op in self.returns.values())
        found.update(op["index"] for op in self.returns.values() if op["index"] is not None)
        return found

    def snapshot(self) -> list[dict[str, Any]]:
        """Operations that rebuild this state (for compaction), with only the strategy code texts
        that trials still refer to."""
        used = {t["strategy_code_sha256"] for t in self.trials.values() if t["strategy_code_sha256"]}
        ops: list[dict[str, Any]] = [{"op": "text", "sha256": sha, "text": self.texts[sha]} for sha in sorted(used)]
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
        for trial_id, steps in sorted(self.steps.items()):
            metrics = [[step, key, value] for (key, step), value in sorted(steps.items())]
            ops.append({"op": "steps", "trial_id": trial_id, "metrics": metrics})
        for _owner, named in sorted(self.artifacts.items()):
            ops.extend({"op": "artifact", **named[name]} for name in sorted(named))
        ops.extend(self.returns[trial_id] for trial_id in sorted(self.returns))
        return ops


def _sha(value: Any) -> str:
    """A content name from a journal line: 64 lowercase hex digits, never a path; raises
    ValueError (the line is corrupt) otherwise."""
    if not blobs.is_sha256(value):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, got {str(value)[:80]!r}")
    return str(value)


def _stored(trial: dict[str, Any]) -> Any:
    value = trial["value"]
    return None if value is None else codec.encode(value, "value")


def _without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}
