"""How a load-test user paces its requests: a Poisson process, as independent people send them.

locust's constant_throughput(r) starts a user's tasks 1/r seconds apart, like a metronome. With
many such users the starts do not stay spread out: one slow answer delays every user waiting on
it, they all go again the moment it is answered, and from then on they tick together, so the
server sees bursts of one request per user every 1/r seconds instead of a steady stream. (Measured
on the web UI: 50 users at 6 requests/s each, p50 44 ms with the metronome against 8 ms with
Poisson starts, at the same mean rate.) Independent people do not coordinate: the time between
one person's requests is random, and the sum of many such streams is a Poisson process.

PoissonPacing(r) is a locust wait_time: each user's task starts are scheduled a random,
exponentially distributed interval (mean 1/r) after the previous scheduled start, so the users
together offer users x r requests per second, in no lockstep. A user whose answer came after its
next start was due goes at once, without catching up on the starts it missed: a slow system then
gets less than it is offered, and the figures show that.
"""

from __future__ import annotations

import random
import time


class PoissonPacing:
    """A locust wait time: `pacing(user)` is how long `user` waits before its next start, so that
    its starts form a Poisson process of `rate` per second. The schedule lives on the user."""

    def __init__(self, rate: float, rng: random.Random | None = None, clock=time.monotonic):
        if not rate > 0:
            raise ValueError(f"rate must be above 0 requests/s, got {rate!r}")
        self.rate = rate
        self._rng = rng or random.Random()
        self._clock = clock

    def __call__(self, user) -> float:
        now = self._clock()
        previous = getattr(user, "_paced_start", now)
        start = max(previous + self._rng.expovariate(self.rate), now)
        user._paced_start = start
        return start - now
