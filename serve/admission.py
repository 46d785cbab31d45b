"""What the gateway does around each generation: stop sequences, a bounded queue per model, deadlines.

    python -c "from serve.admission import *; s = StopScanner(['\\n\\n']); print(s.feed('a\\n'), s.feed('\\nb'))"

- StopScanner cuts a text stream at the first of the request's `stop` strings (the stop string
  itself is not part of the answer, as in OpenAI's API), holding back a tail that may begin one.
- Admission bounds the requests admitted per model (waiting + running) at `serve.max_queue`;
  beyond it the gateway answers 429 with a Retry-After estimated from recent service times.
"""

from __future__ import annotations

import math
from collections import Counter


class StopScanner:
    """Cuts a stream of text pieces at the first stop string."""

    def __init__(self, stops: list[str] | tuple[str, ...]) -> None:
        self.stops = [stop for stop in stops if stop]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Returns the part of `text` (with what was held back) that is surely before any stop string."""
        if self.stopped or not self.stops:
            return "" if self.stopped else text
        buffer = self.pending + text
        found = [index for index in (buffer.find(stop) for stop in self.stops) if index >= 0]
        if found:
            self.stopped, self.pending = True, ""
            return buffer[:min(found)]
        keep = max((size for stop in self.stops for size in range(1, len(stop)) if buffer.endswith(stop[:size])),
                   default=0)
        self.pending = buffer[len(buffer) - keep:] if keep else ""
        return buffer[:len(buffer) - keep]

    def flush(self) -> str:
        """What was held back, once the stream ended without a stop string."""
        rest, self.pending = self.pending, ""
        return "" if self.stopped else rest


class Admission:
    """A bound on the requests admitted per model, and a Retry-After estimate for the ones refused."""

    def __init__(self, limit: int, concurrency: int = 1) -> None:
        self.limit, self.concurrency = limit, max(1, concurrency)
        self.admitted: Counter = Counter()
        self.service_s: dict[str, float] = {}

    def admit(self, model: str) -> bool:
        """Takes a place in the model's queue; False when it is full."""
        if self.admitted[model] >= self.limit:
            return False
        self.admitted[model] += 1
        return True

    def release(self, model: str, seconds: float | None = None) -> None:
        """Gives the place back; `seconds` (a served request's time) updates the estimate."""
        self.admitted[model] -= 1
        if seconds is not None:
            before = self.service_s.get(model, seconds)
            self.service_s[model] = 0.8 * before + 0.2 * seconds

    def retry_after(self, model: str) -> int:
        """Seconds until a place is likely free: the queue ahead times the recent service time."""
        return max(1, math.ceil(self.admitted[model] * self.service_s.get(model, 1.0) / self.concurrency))
