"""One daemon per state directory: an exclusive `flock` on ``<state_dir>/lock`` held for the
process's life. The kernel drops it when the process dies (even by SIGKILL), so a crash never
leaves a stale lock. The file holds the holder's pid, for the refusal message."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class StateDirBusy(Exception):
    def __init__(self, state_dir: Path, pid: str) -> None:
        super().__init__(f"{state_dir} is in use by another focusguard daemon (pid {pid or 'unknown'}); "
                         "give each daemon its own state_dir")
        self.state_dir, self.pid = state_dir, pid


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise StateDirBusy (naming the holder's pid); OSError if unusable."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StateDirBusy(self.path.parent, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
