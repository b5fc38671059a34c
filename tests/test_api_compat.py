"""The public API keeps every method name and keyword of the in-house ExperimentTracker."""

from __future__ import annotations

import inspect

import pytest

from tracker import ExperimentTracker

IN_HOUSE = {
    "create_experiment": ["name", "template", "mode", "config"],
    "log_trial": ["experiment_id", "trial_number", "params", "performance"],
    "log_ttpt_result": ["trial_id", "passed", "num_violations", "metrics"],
    "log_strategy_metadata": ["trial_id", "strategy_code", "template", "generation_method"],
    "log_experiment_summary": ["experiment_id", "summary"],
    "get_experiment": ["experiment_id"],
    "list_experiments": [],
    "get_trials": ["experiment_id"],
    "filter_experiments": ["max_violation_rate"],
    "get_performance_improvement": ["experiment_id"],
    "compare_experiments": ["experiment_ids"],
    "export_to_dataframe": ["experiment_id"],
}


@pytest.mark.parametrize(("method", "arguments"), sorted(IN_HOUSE.items()))
def test_in_house_methods_keep_their_positional_parameters(method: str, arguments: list[str]) -> None:
    signature = inspect.signature(getattr(ExperimentTracker, method))
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name != "self"
    ]
    assert positional[: len(arguments)] == arguments
    extra = positional[len(arguments) :]
    assert all(signature.parameters[name].default is not inspect.Parameter.empty for name in extra)


def test_the_constructor_takes_the_in_house_keywords() -> None:
    parameters = inspect.signature(ExperimentTracker).parameters
    assert {"db_path", "backend"} <= set(parameters)


def test_in_house_keyword_form_selects_the_backend(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path)) / "nested" / "folder"
    with ExperimentTracker(db_path=folder / "x.db") as t:
        assert (t.backend, t.db_path) == ("sqlite", str(folder / "x.db"))
    with ExperimentTracker(backend="json", db_path=folder / "x.json") as t:
        assert (t.backend, t.db_path) == ("json", str(folder / "x.json"))
    with ExperimentTracker(str(folder / "y.jsonl")) as t:
        assert t.backend == "json"
    with ExperimentTracker(f"json://{folder / 'z.jsonl'}") as t:
        assert (t.backend, t.db_path) == ("json", str(folder / "z.jsonl"))


def test_default_store_is_experiments_db_in_the_working_directory(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("TRACKER_URL", raising=False)
    with ExperimentTracker() as t:
        assert (t.backend, t.db_path) == ("sqlite", "experiments.db")
    monkeypatch.setenv("TRACKER_URL", "other.jsonl")
    with ExperimentTracker() as t:
        assert t.backend == "json"


def test_import_tracker_does_not_import_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tracker; heavy = [m for m in ('pandas', 'optuna', 'alembic', 'matplotlib', 'sqlalchemy') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
