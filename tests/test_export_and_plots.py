"""Export files read back to the same values; plots have the expected axes and series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tracker import ExperimentTracker, ValidationError
from tracker.reports import plots
from tracker.reports.export import read_export


@pytest.fixture
def filled(tracker: ExperimentTracker) -> tuple[ExperimentTracker, int, int]:
    a = tracker.create_experiment("alpha", "Momentum", "tpe")
    b = tracker.create_experiment("beta", "MeanRev", "tpe", objective="loss", direction="minimize")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(6):
        t = tracker.log_trial(
            a,
            n,
            {"lookback": 10 + n, "kind": "ema" if n % 2 else "sma"},
            {"sharpe": [0.1, float("nan"), 0.5, float("inf"), 0.3, -0.2][n], "turnover": n},
            started_at=start + timedelta(minutes=n),
            completed_at=start + timedelta(minutes=n, seconds=30),
        )
        tracker.log_ttpt_result(t, n % 3 != 0, 0 if n % 3 else 2, {"signal_correlation": 1.0 - n / 10})
        tracker.log_trial(b, n, {"lr": 0.1 * (n + 1)}, {"loss": 5.0 - n})
    return tracker, a, b


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx", ".json"])
def test_exported_files_read_back_to_the_same_values(
    filled: tuple[ExperimentTracker, int, int], tmp_path: Path, suffix: str
) -> None:
    tracker, a, b = filled
    path = tracker.export([a, b], tmp_path / f"out{suffix}")
    original = tracker.trials_dataframe([a, b])
    back = read_export(path)
    assert len(back) == len(original) == 12
    assert list(back["trial_number"]) == list(original["trial_number"])
    assert list(back["params.lookback"].fillna(-1)) == list(original["params.lookback"].astype("float").fillna(-1))
    sharpe = list(back["performance.sharpe"])
    if suffix == ".xlsx":  # Excel holds neither NaN nor inf: empty cell and the text "inf"
        assert pd.isna(sharpe[1])
        assert str(sharpe[3]) == "inf"
    else:
        assert math.isnan(sharpe[1])
        assert sharpe[3] == math.inf
    assert sharpe[0] == 0.1
    assert list(back["experiment_name"]) == ["alpha"] * 6 + ["beta"] * 6
    gap = abs(back["created_at"].iloc[0] - original["created_at"].iloc[0])
    assert gap < pd.Timedelta(milliseconds=1) if suffix == ".xlsx" else gap == pd.Timedelta(0)  # Excel keeps ms
    assert list(back["ttpt.passed"].iloc[:6].astype(bool)) == [False, True, True, False, True, True]


def test_excel_export_has_a_trials_and_an_experiments_sheet(
    filled: tuple[ExperimentTracker, int, int], tmp_path: Path
) -> None:
    tracker, a, b = filled
    path = tracker.export([a, b], tmp_path / "book.xlsx")
    sheets = pd.read_excel(path, sheet_name=None)
    assert set(sheets) == {"trials", "experiments"}
    assert list(sheets["experiments"]["name"]) == ["alpha", "beta"]


def test_an_unknown_export_format_is_refused(filled: tuple[ExperimentTracker, int, int], tmp_path: Path) -> None:
    tracker, a, _ = filled
    with pytest.raises(ValidationError, match="unknown export format"):
        tracker.export([a], tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


def test_history_plot_has_trials_and_running_best(filled: tuple[ExperimentTracker, int, int]) -> None:
    tracker, a, _ = filled
    figure = plots.plot(tracker, [a], "history")
    [ax] = figure.axes
    assert ax.get_ylabel() == "sharpe (maximize)"
    assert ax.get_xlabel() == "trial number"
    assert "alpha" in ax.get_title()
    [step] = ax.get_lines()
    assert list(step.get_ydata()) == [0.1, 0.5, math.inf, math.inf, math.inf]
    assert len(ax.collections[0].get_offsets()) == 5


def test_ttpt_plot_marks_pass_and_fail(filled: tuple[ExperimentTracker, int, int]) -> None:
    tracker, a, _ = filled
    [ax] = plots.plot(tracker, [a], "ttpt").axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["passed: 4", "failed (look-ahead found): 2"]
    assert len(ax.patches) == 6


def test_params_plot_has_one_axis_per_parameter(filled: tuple[ExperimentTracker, int, int]) -> None:
    tracker, a, _ = filled
    figure = plots.plot(tracker, [a], "params")
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert sorted(ax.get_xlabel() for ax in visible) == ["kind", "lookback"]
    assert all(ax.get_ylabel() == "sharpe (maximize)" for ax in visible)


def test_compare_plot_draws_one_curve_per_experiment(
    filled: tuple[ExperimentTracker, int, int], tmp_path: Path
) -> None:
    tracker, a, b = filled
    figure = plots.plot(tracker, [a, b], "compare")
    [ax] = figure.axes
    assert [line.get_label() for line in ax.get_lines()] == [f"{a}: alpha", f"{b}: beta"]
    assert "alpha vs beta" in ax.get_title()
    plots.save(figure, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValidationError, match="one experiment"):
        plots.plot(tracker, [a, b], "history")


@pytest.mark.parametrize("kind", ["history", "ttpt", "compare"])
def test_the_legend_covers_no_data_and_trial_numbers_are_whole(
    filled: tuple[ExperimentTracker, int, int], kind: str
) -> None:
    tracker, a, b = filled
    figure = plots.plot(tracker, [a, b] if kind == "compare" else [a], kind)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # lay the figure out, so that the boxes are final
    renderer = canvas.get_renderer()
    [ax] = figure.axes
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))  # outside the plotting area
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks
    assert all(float(t).is_integer() for t in ticks), ticks


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        ("history", "Optimisation history: alpha"),
        ("ttpt", "TTPT look-ahead checks: alpha"),
        ("params", "Parameters vs sharpe: alpha"),
    ],
)
def test_a_plot_is_titled_by_its_kind(filled: tuple[ExperimentTracker, int, int], kind: str, title: str) -> None:
    tracker, a, b = filled
    figure = plots.plot(tracker, [a], kind)
    shown = figure.get_suptitle() or figure.axes[0].get_title()
    assert shown == title
    assert plots.plot(tracker, [a, b], "compare").axes[0].get_title() == "Comparison: alpha vs beta"
