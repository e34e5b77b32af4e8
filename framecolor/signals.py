"""Interruption: SIGTERM and SIGHUP end a command exactly as Ctrl-C does, and what a killed run left is
found again.

A signal handler raises :class:`Interrupted` (a KeyboardInterrupt) in the main thread, so the same
cleanup runs as for Ctrl-C (every writer removes its temporary file on any exception); the command
exits with 128 + the signal number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), the shell's convention.

SIGKILL cannot be caught: the hidden temporary files of a killed run (``.NAME.framecolor-tmp-PID...``)
stay. :func:`remove_stale_temporaries` removes those whose process is no longer alive; every run calls it
on the folders it writes into.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
from pathlib import Path

from .io.paths import TMP_MARK

log = logging.getLogger("framecolor")

CAUGHT = (signal.SIGTERM, signal.SIGHUP)
# hidden video temporaries: .NAME.framecolor-tmp-PID.EXT; frame folder temporaries: .NAME.EXT.framecolor-tmp-PID
_TMP_NAME = re.compile(r"^\..+" + re.escape(TMP_MARK) + r"-(\d+)(\.[^.]+)?$")


class Interrupted(KeyboardInterrupt):
    """A run ended by a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def exit_code_of(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for a caught signal N."""
    return getattr(exc, "exit_code", 128 + signal.SIGINT)


def _raise_interrupted(signum, frame):
    # Cleanup must not be cut short by a second TERM/HUP (a service manager may send several): ignore them
    # from now on. SIGKILL still ends a stuck cleanup.
    for sig in CAUGHT:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible():
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread; the previous
    handlers come back afterwards (a no-op outside the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in CAUGHT:
        old = signal.getsignal(sig)
        if old is signal.SIG_IGN and sig == signal.SIGHUP:
            continue  # started under nohup: the user asked for the run to survive the terminal closing
        previous[sig] = old
        signal.signal(sig, _raise_interrupted)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return True
    return True


def stale_temporaries(folder) -> list[Path]:
    """Hidden framecolor temporaries in ``folder`` whose writing process is not alive on this machine."""
    folder = Path(folder)
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for e in entries:
        m = _TMP_NAME.match(e.name)
        if m and not _alive(int(m.group(1))):
            try:
                if e.is_file(follow_symlinks=False):
                    found.append(Path(e.path))
            except OSError:
                pass
    return sorted(found)


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove what killed runs (SIGKILL, power loss) left in ``folder``, saying so in the log.

    Only this machine's processes can be checked: a temporary of a live process on another machine that
    shares the folder carries a process number that is free here, and would be taken for stale; runs on
    shared storage from several machines should write into different folders (``--ray`` does)."""
    removed = []
    for path in stale_temporaries(folder):
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:
            continue
        removed.append(path)
        log.warning("%s: removed a temporary file left by a run that was killed (%d bytes)", path, size)
    return removed
