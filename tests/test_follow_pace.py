"""The metric-poll pace: a lone trial is read every 0.25 s; many trials share a fixed poll budget."""

from __future__ import annotations

import pytest

from manager.loop.follow import POLLS_PER_SECOND, FollowPace


def test_a_few_followed_trials_are_polled_every_poll_interval() -> None:
    pace = FollowPace()
    pace.followed = 1
    assert pace.interval(0.25) == 0.25


def test_past_the_budget_each_trial_is_polled_less_often_so_the_total_stays_fixed() -> None:
    pace = FollowPace(polls_per_second=1000)
    pace.followed = 10_000
    assert pace.interval(0.25) == pytest.approx(10.0)
    assert pace.followed / pace.interval(0.25) == pytest.approx(1000)


def test_the_default_budget_keeps_1000_trials_within_a_second() -> None:
    pace = FollowPace()
    pace.followed = 1000
    assert pace.interval(0.25) <= 1000 / POLLS_PER_SECOND <= 1.0


def test_a_budget_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="polls_per_second must be > 0"):
        FollowPace(polls_per_second=0)
