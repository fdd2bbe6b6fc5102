"""The file source: a mounted `flags.json`, followed through kubelet's `..data` swap."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flagops.flags.snapshot import Sink

__all__ = ["FILE_NAME", "FileSource"]

FILE_NAME = "flags.json"

# What identifies one version of the file behind kubelet's symlinks: the real
# path changes on every `..data` swap, inode/mtime/size catch in-place writes.
_Signature = tuple[str, int, int, int, int]


class FileSource:
    """Polls one file and feeds each new version to `sink`.

    `path` is the file or the folder the ConfigMap is mounted at. While paused
    (the relay is live) it still notes every version it sees without feeding it,
    so on resume only versions written after the pause reach the sink.
    """

    def __init__(self, path: str | os.PathLike[str], sink: Sink) -> None:
        given = Path(path)
        self.path = given / FILE_NAME if given.is_dir() else given
        self.label = str(self.path)
        self._sink = sink
        self._lock = threading.Lock()
        self._signature: _Signature | None = None
        self._seen_missing = False
        self._paused = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> bool:
        """Feed the file if it changed. True when the sink took a new document."""
        with self._lock:
            try:
                return self._poll_locked()
            except Exception as exc:  # any surprise here must not reach the app
                self._sink.reject(self.label, f"unexpected {type(exc).__name__}")
                return False

    def set_paused(self, paused: bool) -> None:
        # Under the poll lock: a poll already reading the file finishes before the
        # pause, so it cannot land after (and over) the relay's first document.
        with self._lock:
            self._paused = paused

    def start(self, interval: float) -> None:
        self._thread = threading.Thread(
            target=self._run,
            args=(interval,),
            name=f"flagops-flags-reload[{self.label}]",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _poll_locked(self) -> bool:
        signature = self._stat()
        if signature is None:
            if not self._seen_missing:
                self._seen_missing = True
                self._signature = None
                if not self._paused:
                    self._sink.reject(self.label, "file is missing")
            return False
        self._seen_missing = False
        if signature == self._signature:
            return False
        # Record before reading: a bad version is reported once, not every poll.
        self._signature = signature
        if self._paused:
            return False
        try:
            data = Path(signature[0]).read_bytes()
        except OSError as exc:
            self._sink.reject(self.label, type(exc).__name__)
            return False
        return self._sink.accept(data, self.label)

    def _stat(self) -> _Signature | None:
        try:
            real = os.path.realpath(self.path)
            st = os.stat(real)
        except OSError:
            return None
        return (real, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.poll()
