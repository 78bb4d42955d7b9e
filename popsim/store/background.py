"""Writing finished chunks in a background thread while the next chunk is computed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from popsim.progress import Phases


class BackgroundWriter:
    """Writes finished chunks in one background thread while the next chunk is computed.

    At most one write is pending: :meth:`submit` first waits for the previous one (so host memory
    holds at most two chunks of outputs, and chunks reach the file in order), re-raises its error
    if it failed, and reports its patients to ``done``. On leaving the ``with`` block, also after
    an error or Ctrl-C in the main thread, the pending write is finished, so a chunk that was
    computed is on disk and marked done (its write session is all-or-nothing either way). Writing
    (gzip) in parallel with the solve hides its cost on a multi-core machine."""

    def __init__(self, done, phases: Phases | None = None):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="popsim-writer")
        self._pending = None
        self._done = done
        self._phases = phases if phases is not None else Phases()

    def submit(self, write, n: int) -> None:
        self.wait()
        self._pending = (self._pool.submit(write), n)

    def wait(self) -> None:
        if self._pending is not None:
            future, n = self._pending
            self._pending = None
            with self._phases("write_wait"):
                future.result()
            self._done(n)

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        try:
            if kind is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)
        return False
