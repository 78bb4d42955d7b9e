"""What a user sees during long work, on a terminal or in a log. Imports no JAX.

* :func:`console`: a rich console for tables. On a terminal it has the terminal's width; when the
  output is a pipe, a file or a CI log it is wide enough that no table is truncated or wrapped in
  the middle of a word.
* :class:`Phases`: wall time spent in the named phases of a task (``popsim run --profile``).
* :class:`Progress`: the progress of one long task. On a terminal, a rich bar with a phase
  (``compiling`` while XLA compiles, with its elapsed seconds), a count, a rate and an ETA. When
  the stream is not a terminal, one plain line every :data:`PLAIN_INTERVAL` seconds and at each
  phase change, so a log never goes silent for minutes.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

PLAIN_INTERVAL = 10.0  # seconds between plain progress lines when not on a terminal
WIDE = 1000  # console width when not on a terminal: tables keep their natural width


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console(stderr: bool = False):
    """A rich console on stdout (or stderr) that never truncates tables when not on a
    terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if _isatty(stream):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=WIDE, soft_wrap=False)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Phases:
    """Wall seconds spent in named phases of a task: ``with phases("write"): ...`` adds the
    block's wall time to ``"write"``. Thread-safe; phases timed in different threads at once
    overlap (their sum can exceed the task's wall time)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` more in phase ``name``."""
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.counts[name] = self.counts.get(name, 0) + 1

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def as_dict(self) -> dict[str, float]:
        """Phase -> seconds (rounded to ms), in the order the phases were first entered."""
        with self._lock:
            return {k: round(v, 3) for k, v in self.seconds.items()}


class Progress:
    """Progress of one task (a context manager).

    Args:
        description: what is being done (``"simulating"``).
        total: how many units the task has (``None``: unknown).
        unit: the units counted (``"patients"``).
        enabled: ``False`` shows nothing.
        stream: where to show it (default: stderr, so tables on stdout stay clean).
        interval: seconds between plain lines when ``stream`` is not a terminal.

    Use :meth:`phase` to name what happens before counting starts (``"compiling"``) and
    :meth:`advance` to count; :meth:`phase` with ``None`` returns to counting.
    """

    def __init__(self, description: str, total: int | None = None, unit: str = "",
                 enabled: bool = True, stream=None, interval: float = PLAIN_INTERVAL):
        self.description, self.total, self.unit = description, total, unit
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self.done = 0
        self.note = ""
        self._phase: str | None = None
        self._phase_start = self._start = time.perf_counter()
        self._counting_start: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rich = None
        self._thread: threading.Thread | None = None

    # --- public ---------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        self._start = self._phase_start = time.perf_counter()
        if not self.enabled:
            return self
        if _isatty(self.stream):
            self._start_rich()
        else:
            self._thread = threading.Thread(target=self._plain_loop, daemon=True,
                                            name="popsim-progress")
            self._thread.start()
        return self

    def __exit__(self, kind, *exc) -> bool:
        if not self.enabled:
            return False
        self._stop.set()
        if self._rich is not None:
            self._update_rich()
            self._rich.stop()
        if self._thread is not None:
            self._thread.join()
            if kind is None:
                self._line(final=True)
        return False

    def phase(self, name: str | None) -> None:
        """Enter a named phase (shown with its elapsed seconds), or ``None`` to count."""
        with self._lock:
            self._phase = name
            self._phase_start = time.perf_counter()
        if self._rich is not None:
            self._update_rich()
        elif self._thread is not None:
            self._line()

    def advance(self, k: int = 1, note: str | None = None) -> None:
        """Count ``k`` more units done (leaves any phase); ``note`` (e.g. ``"loss 0.031"``) is
        shown after the count until replaced."""
        with self._lock:
            if self._counting_start is None:
                self._counting_start = time.perf_counter()
            self.done += k
            self._phase = None
            if note is not None:
                self.note = note
        if self._rich is not None:
            self._update_rich()

    def __call__(self, k: int = 1) -> None:  # a Progress is also an ``advance`` callback
        self.advance(k)

    # --- text -----------------------------------------------------------------------------
    def _rate(self) -> float | None:
        if self._counting_start is None or not self.done:
            return None
        return self.done / max(time.perf_counter() - self._counting_start, 1e-9)

    def status_text(self) -> str:
        """One line saying where the task is (the plain line, and the rich description)."""
        now = time.perf_counter()
        with self._lock:
            phase, done, start = self._phase, self.done, self._phase_start
        if phase is not None:
            return f"{self.description}: {phase}… {now - start:.0f} s"
        total = f"/{self.total:,}" if self.total is not None else ""
        text = f"{self.description}: {done:,}{total} {self.unit}".rstrip()
        if self.note:
            text += f", {self.note}"
        rate = self._rate()
        if rate:
            text += f", {rate:,.1f} {self.unit}/s" if rate < 10 else f", {rate:,.0f} {self.unit}/s"
        text += f", {_clock(now - self._start)} elapsed"
        if rate and self.total is not None and done < self.total:
            text += f", eta {_clock((self.total - done) / rate)}"
        return text

    def _line(self, final: bool = False) -> None:
        text = self.status_text() + (" (done)" if final else "")
        print(text, file=self.stream, flush=True)

    def _plain_loop(self) -> None:
        self._line()
        while not self._stop.wait(self.interval):
            self._line()

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        columns = [TextColumn("{task.fields[text]}"), BarColumn()]
        if self.total is not None:
            columns.append(MofNCompleteColumn())
        columns.append(TimeElapsedColumn())
        self._rich = RichProgress(*columns, console=Console(file=self.stream),
                                  refresh_per_second=4)
        self._rich.start()
        self._task = self._rich.add_task(self.description, total=self.total,
                                         text=self.status_text())
        self._ticker = threading.Thread(target=self._rich_loop, daemon=True)
        self._ticker.start()

    def _rich_loop(self) -> None:
        while not self._stop.wait(1.0):
            self._update_rich()

    def _update_rich(self) -> None:
        if self._rich is None:
            return
        self._rich.update(self._task, completed=self.done, text=self.status_text())
