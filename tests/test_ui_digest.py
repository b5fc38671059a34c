"""The digests' incremental arithmetic against brute force, and the verdict rule."""

from __future__ import annotations

import random

import pytest

from tracker.read.digest import BUCKETS, CheckFeed, Digest, TrialFeed
from tracker.ttpt.verdict import verdict


def brute_steps(trials: list[TrialFeed], maximize: bool) -> list[tuple[int, float]]:
    steps: list[tuple[int, float]] = []
    for t in sorted(trials, key=lambda t: t.trial_number):
        if t.state != "complete" or t.value is None:
            continue
        if not steps or (t.value > steps[-1][1] if maximize else t.value < steps[-1][1]):
            steps.append((t.trial_number, t.value))
    return steps


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_running_best_steps_are_exact_whatever_order_trials_arrive_in(seed: int, direction: str) -> None:
    rng = random.Random(seed)
    trials = [
        TrialFeed(i + 1, 1, n, rng.choice(["complete", "complete", "pruned"]), float(rng.randint(-30, 30)))
        for i, n in enumerate(rng.sample(range(500), 200))
    ]
    digest = Digest(direction)  # type: ignore[arg-type]
    for t in trials:
        digest.add_trial(t)
        seen = trials[: trials.index(t) + 1]
        assert [(n, v) for n, v, _ in digest.steps] == brute_steps(seen, direction == "maximize")
    complete = [t for t in trials if t.state == "complete"]
    order = sorted(complete, key=lambda t: (-t.value if direction == "maximize" else t.value, t.trial_number))  # type: ignore[operator]
    assert [i for _, _, i in digest.top] == [t.id for t in order[:3]]
    assert digest.n_ranked == len(complete)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_improvement_is_compare_experiments_whatever_order_trials_arrive_in(seed: int, direction: str) -> None:
    from tracker.reports.analysis import _improvement

    rng = random.Random(seed)
    numbers = rng.sample(range(3_000), rng.choice([1, 2, 7, 2_500]))  # gaps, and pruned trials between
    trials = [
        TrialFeed(i + 1, 1, n, rng.choice(["complete", "complete", "pruned"]), float(rng.randint(-50, 50)))
        for i, n in enumerate(numbers)
    ]
    digest = Digest(direction)  # type: ignore[arg-type]
    for start in range(0, len(trials), 700):  # arriving in batches, asked in between
        for t in trials[start : start + 700]:
            digest.add_trial(t)
        seen = sorted((t for t in trials[: start + 700] if t.state == "complete"), key=lambda t: t.trial_number)
        assert digest.improvement() == _improvement([t.value for t in seen], direction)  # type: ignore[misc, arg-type]


def test_buckets_stay_bounded_and_keep_each_groups_extremes() -> None:
    digest = Digest("maximize")
    for n in range(BUCKETS * 8):
        digest.add_trial(TrialFeed(n + 1, 1, n, "complete", float(n % 97)))
    assert len(digest.buckets) <= BUCKETS
    assert digest.width == 8
    points, _, _, sampled = digest.history(300)
    assert len(points) <= 300
    assert sampled
    values = {p.value for p in points}
    assert {0.0, 96.0} <= values


def test_a_recheck_replaces_a_trials_latest_outcome_in_the_counts() -> None:
    digest = Digest("maximize")
    digest.add_trial(TrialFeed(1, 1, 0, "complete", 1.0))
    digest.add_check(CheckFeed(1, 1, 1, 0, "complete", 1.0, False, 2))
    assert digest.count(None, "failed") == 1
    digest.add_check(CheckFeed(2, 1, 1, 0, "complete", 1.0, True, 0))
    assert (digest.count(None, "failed"), digest.count(None, "passed"), digest.count(None, "unchecked")) == (0, 1, 0)
    assert (digest.checks, digest.failed_checks) == (2, 1)
    assert digest.check_of(1) is True


@pytest.mark.parametrize(
    ("best", "checks", "failed", "status", "coverage"),
    [
        ([True, True, True], 30, 0, "valid", "best 3 of 150 checked, 30 checks in all"),
        ([True, True, None], 30, 0, "unchecked", "2 of the best 3 of 150 checked, 30 checks in all"),
        ([True, False, True], 30, 1, "look-ahead", "best 3 of 150 checked, 30 checks in all"),
        ([None, None, None], 30, 16, "look-ahead", "0 of the best 3 of 150 checked, 30 checks in all"),
        ([None, None, None], 30, 15, "unchecked", "0 of the best 3 of 150 checked, 30 checks in all"),
        ([True], 1, 0, "valid", "best 1 of 150 checked, 1 check in all"),
        ([], 0, 0, "unchecked", "no complete trial with a value, 0 checks in all"),
    ],
)
def test_the_verdict_rule(best: list[bool | None], checks: int, failed: int, status: str, coverage: str) -> None:
    v = verdict(best, 150, checks, failed)
    assert (v.status, v.coverage) == (status, coverage)
