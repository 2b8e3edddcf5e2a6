"""The Poisson pacing of make bench's users (mnist_loadtest.pacing), on a fake clock."""

from __future__ import annotations

import random
import statistics

import pytest

from mnist_loadtest.pacing import PoissonPacing


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class User:
    """What locust hands a wait_time: any object the schedule can live on."""


def run_user(pacing: PoissonPacing, clock: FakeClock, user, requests: int, answer_seconds: float) -> list[float]:
    """Start times of `requests` tasks, each answered after answer_seconds, waiting as told."""
    starts = []
    for _ in range(requests):
        starts.append(clock.now)
        clock.now += answer_seconds
        clock.now += pacing(user)
    return starts


def test_starts_are_a_poisson_process_of_the_rate():
    clock = FakeClock()
    pacing = PoissonPacing(6.0, rng=random.Random(7), clock=clock)
    starts = run_user(pacing, clock, User(), 6000, answer_seconds=0.01)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # Mean 1/6 s; exponential gaps have a standard deviation equal to their mean (a metronome: 0).
    assert statistics.mean(gaps) == pytest.approx(1 / 6, rel=0.05)
    assert statistics.pstdev([g for g in gaps if g > 0.01]) == pytest.approx(1 / 6, rel=0.15)
    assert min(gaps) >= 0.01 - 1e-9  # a start never comes before the previous answer


def test_users_keep_their_own_schedules():
    clock = FakeClock()
    pacing = PoissonPacing(2.0, rng=random.Random(1), clock=clock)
    first, second = User(), User()
    wait_first = pacing(first)
    clock.now += 0.3
    wait_second = pacing(second)
    # Each schedule counts from that user's own start, not from the other's.
    assert first._paced_start == pytest.approx(100.0 + wait_first)
    assert second._paced_start == pytest.approx(100.3 + wait_second)


def test_a_late_user_goes_at_once_and_does_not_catch_up():
    clock = FakeClock()
    pacing = PoissonPacing(10.0, rng=random.Random(3), clock=clock)
    user = User()
    # Answers that take 1 s against a schedule of 10 starts a second: always late.
    starts = run_user(pacing, clock, user, 20, answer_seconds=1.0)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # The first wait counts from the first answer (locust asks after the task), a random phase;
    # from then on every start is due before the answer comes, and the user goes at once, with
    # no burst of the starts it missed.
    assert gaps[0] >= 1.0
    assert gaps[1:] == pytest.approx([1.0] * 18)
    # Back to fast answers, it is paced from now on, not from the old schedule.
    fast = run_user(pacing, clock, user, 2000, answer_seconds=0.0)
    assert (fast[-1] - fast[0]) / 1999 == pytest.approx(0.1, rel=0.07)


@pytest.mark.parametrize("rate", [0, -1.0, float("nan")])
def test_a_rate_that_is_not_positive_is_refused(rate):
    with pytest.raises(ValueError, match="rate must be above 0"):
        PoissonPacing(rate)
