"""Fair sharing of the one interpreter among cameras: round-robin turns, FIFO within a camera.

A plain `threading.Lock` around `classify` is not FIFO: under load a thread that releases
the lock and asks again at once often wins it again, and a camera that submits many
inferences per frame (`preprocess: tiles`) would hold everyone else back for all of them.
`RoundRobinTurns` grants one turn at a time; waiting callers are served camera by camera in
a fixed ring (the order cameras first asked), each camera's own requests in arrival order.
With N cameras waiting, a request waits for at most N - 1 inferences of other cameras
(plus the one running). With a pool of K interpreters (`model.interpreters`) K turns run at once,
each on its own interpreter: bench/RESULTS_cascade.md measured two 1-thread interpreters above
one 2-thread interpreter for many cameras (more inferences/s, less CPU per inference). The caller
runs the inference in its own thread when its turn
comes: no extra worker thread, nothing to shut down.

`FairClassifier(classifier).for_camera(name)` gives each camera a classifier-like proxy
(`labels`, `classify`) whose calls take turns; `waits(name)` exposes per-camera queueing
statistics (count, total and longest wait in seconds) for benchmarks and metrics.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


class ClassifierLike(Protocol):
    @property
    def labels(self) -> Sequence[str]: ...

    def classify(self, rgb448: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...


@dataclass
class WaitStats:
    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0


class RoundRobinTurns:
    """Mutual exclusion whose waiters are served round-robin by key (camera), FIFO per key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, capacity: int = 1) -> None:
        self.capacity = capacity  # turns that may run at once (one per interpreter of the pool)
        self._lock = threading.Lock()
        self._queues: dict[str, deque[threading.Event]] = {}
        self._ring: list[str] = []
        self._next = 0  # ring position where the search for the next turn starts
        self._running = 0
        self._clock = clock
        self.stats: dict[str, WaitStats] = {}

    def waiting(self, key: str) -> int:
        with self._lock:
            return len(self._queues.get(key, ()))

    @contextmanager
    def turn(self, key: str) -> Iterator[None]:
        """Block until it is `key`'s turn; the body runs alone."""
        ticket = threading.Event()
        asked = self._clock()
        with self._lock:
            if key not in self._queues:
                self._queues[key] = deque()
                self._ring.append(key)
                self.stats[key] = WaitStats()
            self._queues[key].append(ticket)
            self._grant_next()
        try:
            ticket.wait()
        except BaseException:  # interrupted while queued: give the turn back or leave the queue
            with self._lock:
                if ticket.is_set():
                    self._running -= 1
                    self._grant_next()
                else:
                    self._queues[key].remove(ticket)
            raise
        waited = self._clock() - asked
        with self._lock:
            stats = self.stats[key]
            stats.count += 1
            stats.total_s += waited
            stats.max_s = max(stats.max_s, waited)
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._grant_next()

    def _grant_next(self) -> None:
        """Give a free turn to the oldest request of the next camera in the ring that waits (lock held)."""
        if self._running >= self.capacity:
            return
        count = len(self._ring)
        for step in range(count):
            position = (self._next + step) % count
            queue = self._queues[self._ring[position]]
            if queue:
                self._running += 1
                self._next = (position + 1) % count
                queue.popleft().set()
                return


class _CameraClassifier:
    """One camera's view of the shared classifier: same labels, calls take turns."""

    def __init__(self, fair: FairClassifier, camera: str) -> None:
        self._fair, self.camera = fair, camera

    @property
    def labels(self) -> Sequence[str]:
        return self._fair.classifier.labels

    def classify(self, rgb448: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        with self._fair.turns.turn(self.camera), self._fair.interpreter() as classifier:
            return classifier.classify(rgb448)


class FairClassifier:
    """Wraps the shared classifier (and any more interpreters of the same model: `pool`) so that
    cameras take turns round-robin, as many at once as there are interpreters."""

    def __init__(self, classifier: ClassifierLike, clock: Callable[[], float] = time.monotonic,
                 pool: Sequence[ClassifierLike] = ()) -> None:
        self.classifier = classifier
        self.pool = [classifier, *pool]
        self._free = list(range(len(self.pool)))
        self._free_lock = threading.Lock()
        self.turns = RoundRobinTurns(clock, capacity=len(self.pool))

    @contextmanager
    def interpreter(self) -> Iterator[ClassifierLike]:
        """A free interpreter of the pool (called inside a turn: there always is one)."""
        with self._free_lock:
            index = self._free.pop()
        try:
            yield self.pool[index]
        finally:
            with self._free_lock:
                self._free.append(index)

    @property
    def labels(self) -> Sequence[str]:
        return self.classifier.labels

    def for_camera(self, camera: str) -> _CameraClassifier:
        return _CameraClassifier(self, camera)

    def waits(self, camera: str) -> WaitStats:
        return self.turns.stats.get(camera, WaitStats())
