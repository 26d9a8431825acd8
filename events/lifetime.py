"""A child process ends with its parent, however the parent ends.

A parent that is SIGKILLed runs no clean-up: its children (the embedded nats-server, `run
web` and `run workers` under `jobstream up`, the document writer's render processes) would
go on with parent pid 1. Linux lets a child ask for a signal when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), kept across ``exec``. "The parent" is the thread that
started the child: start children from a thread that lives as long as they should (the
main thread, or the event loop's). Elsewhere than Linux these are no-ops.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterator

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(signum: int = signal.SIGTERM, parent: int | None = None) -> None:
    """In a child: be sent ``signum`` when the parent dies. ``parent``, the parent's pid as
    it knew itself, closes the race of a parent that died before this was asked: the
    child then signals itself at once. Usable as a process pool's initializer."""
    prctl = _prctl()
    if prctl is None:
        return
    if prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signum)


def tied_to_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child is sent ``signum`` when the
    calling thread's process dies. Everything is looked up here, before the fork, so the
    forked child only makes the one call."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    number, getppid, kill, pid_of = int(signum), os.getppid, os.kill, os.getpid

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, number, 0, 0, 0)
        if getppid() != parent:
            kill(pid_of(), number)

    return in_child


def pool_worker(parent: int) -> None:
    """A pool worker's initializer: it dies with the process that owns the pool (SIGKILL:
    its work is pure and only ever redone). Started deaf to the terminal (below), it stays so."""
    for terminal in TERMINAL:
        signal.signal(terminal, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL, parent)


TERMINAL = frozenset({signal.SIGINT, signal.SIGHUP})


@contextlib.contextmanager
def deaf_to_the_terminal() -> Iterator[None]:
    """Processes started in this block (on this thread) never hear a terminal's Ctrl-C or
    hang-up, which reach every process in its group: the signals stay blocked in them from
    birth, as multiprocessing does for its resource tracker with SIGINT and SIGTERM. The
    process that started them hears them and stops them in order. (Else a render process,
    or the resource tracker killed by a hang-up, dies under its pool while it stops.)"""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINAL)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
