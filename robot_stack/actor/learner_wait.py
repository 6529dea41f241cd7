"""At start-up the actor takes no step until a learner subscribes to its step records (steps
published before DDS discovery completes are lost to the learner), but at most a while."""
from __future__ import annotations

import time


class LearnerWait:
    """``ready(subscribers)``: True once a subscriber exists or ``timeout_s`` has passed
    (0: never wait). ``state`` says what changed at the last call ('found', 'timeout', 'waiting')."""

    def __init__(self, timeout_s: float, skip: bool = False, clock=time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._start = clock()
        self.over = skip or timeout_s <= 0
        self.state = ""

    @property
    def waited_s(self) -> float:
        return self._clock() - self._start

    def ready(self, subscribers: int) -> bool:
        if self.over:
            self.state = ""
            return True
        if subscribers > 0:
            self.over, self.state = True, "found"
            return True
        if self.waited_s >= self.timeout_s:
            self.over, self.state = True, "timeout"
            return True
        self.state = "waiting"
        return False
