"""The bench's goals read their bound from their text (bench/goals.py): each text states one, and
the check holds on its side of it only."""

from __future__ import annotations

import pytest

from bench.goals import GOALS, Goal


@pytest.mark.parametrize("goal", GOALS, ids=[goal.id for goal in GOALS])
def test_every_goal_states_a_bound_its_check_follows(goal: Goal) -> None:
    goal.check(0.0)  # raises if the text states no bound


@pytest.mark.parametrize(
    ("goal_id", "met", "missed"),
    [
        ("hop_grpc_vs_httpx", 5.0, 4.99),
        ("hop_grpc_vs_aiohttp_large", 1.01, 1.0),
        ("e2e_share", 0.2, 0.19),
        ("e2e_p99", 49.9, 50.0),
        ("e2e_cpu", 2.5, 2.51),
        ("short_poll_mean", 650.0, 651.0),
        ("cross_replica_max", 999.0, 1000.0),  # "worst < 1 s", measured in ms
    ],
)
def test_a_goal_is_met_on_its_side_of_the_bound_only(goal_id: str, met: float, missed: float) -> None:
    goal = next(g for g in GOALS if g.id == goal_id)
    assert goal.check(met)
    assert not goal.check(missed)
