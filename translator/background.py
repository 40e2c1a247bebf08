"""Background compilation: the optimising tier's -O2 runs on a second thread while the guest goes
on in its cold code (knob ``background``, on by default; HotSpot does the same, and its -Xbatch is
``background=off``).

A hot region costs 20-60 ms of optimisation and code generation, which a cold run used to wait
for (1-2.6 s per benchmark workload). The main thread still decodes and lifts the region (Python,
a few ms); the worker parses the IR in an LLVM context of its own, runs the pass pipeline and
emits object code; the main thread adds that object to its engine when it next gets control (see
``Translator.finished``), after checking that the guest bytes are still the ones compiled::

    bg = Background(opt_level=2)
    bg.submit(key, ir_text)
    ...
    for key, data, error, seconds in bg.take(): ...      # finished jobs, in order

llvmlite serialises every call into LLVM with one process-wide lock. The worker's calls run
without it (it reaches LLVM through translator/llvmraw.py, llvmlite's library without
llvmlite.binding): LLVM allows concurrent work in separate contexts, and the worker's module,
context, target machine and pass builder are its own.

A fork (the guest's fork, runtime/sys_exec.py) waits for the job in flight, so the child never
inherits a thread half way through LLVM (or llvmlite's lock held); the child starts a worker of
its own for the jobs still queued.
"""
from __future__ import annotations

import atexit
import collections
import os
import threading
import time
import weakref

from . import llvmraw

_LIVE: "weakref.WeakSet[Background]" = weakref.WeakSet()


class Background:
    def __init__(self, opt_level: int, on_done=None, whole: bool = False, runs=None):
        """`on_done()`: called on the worker when a job is finished (the runtime asks the
        guest's code to come back to it, which then takes the job's object at once).
        `whole`: LLVM's default module pipeline (llvmraw.PassBuilder). `runs(address)`: how
        often the guest's block there has run (the dispatcher's count), for the order jobs
        are taken in (see _next); None: first in, first out."""
        self.opt_level, self.whole = opt_level, whole
        self.on_done = on_done
        self.runs = runs
        self._cv = threading.Condition()
        # (key, ir text, its blocks' addresses, their runs when the last job was submitted)
        self._todo: collections.deque = collections.deque()
        self._done: collections.deque = collections.deque()    # (key, object, error, seconds)
        self._thread: threading.Thread | None = None
        self._busy = False
        self._paused = False
        self._stopped = False
        self.seconds = 0.0          # spent compiling on the worker (parse, optimise, emit)
        self.seconds_start = 0.0    # ... and starting LLVM there (its target machine, ...)
        self.jobs = 0
        _LIVE.add(self)

    # ---- main thread -------------------------------------------------------------------------
    def submit(self, key: str, ir_text: str, blocks: tuple = ()) -> None:
        """Queue the module `ir_text` (`blocks`: the guest addresses of the blocks it holds)."""
        with self._cv:
            if self.runs is not None:
                self._todo = collections.deque((k, t, b, self._ran(b)) for k, t, b, _ in self._todo)
            self._todo.append((key, ir_text, blocks, None))
            self._start()
            self._cv.notify_all()

    def _ran(self, blocks: tuple) -> int:
        """How often the blocks at these addresses have run, together."""
        runs = self.runs
        return sum(runs(a) for a in blocks)

    def queued(self, key: str) -> bool:
        """Is the job `key` waiting for the worker (not started)?"""
        with self._cv:
            return any(job[0] == key for job in self._todo)

    def cancel(self, key: str) -> bool:
        """Drop the job `key` if the worker has not started it; did it?"""
        with self._cv:
            for job in self._todo:
                if job[0] == key:
                    self._todo.remove(job)
                    return True
        return False

    def _start(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._work, name="jitbt-compile", daemon=True)
            self._thread.start()

    def ready(self) -> bool:
        """Are there finished jobs to take? (A cheap test for the dispatcher loop.)"""
        return bool(self._done)

    def take(self) -> list[tuple]:
        """The finished jobs: (key, object code or None, error text or None, seconds)."""
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def wait(self) -> None:
        """Until every submitted job is finished (tests; background=off never submits)."""
        with self._cv:
            while self._todo or self._busy:
                self._cv.wait()

    def close(self, wait: bool = True) -> list[tuple]:
        """Drop the jobs not started and wait for the one in flight (an LLVM call cannot be
        interrupted, and the process must not exit under it); the finished jobs. `wait` False:
        leave it to end on its own, for a run that keeps nothing (no persistent store) and
        whose process ends now (the `jitbt` command leaves with os._exit, which takes the
        thread with it; an interpreter that exits normally still waits for it, see the atexit
        hook below). (A cold run of the benchmark's recursion waited 0.3-0.5 s at its exit
        for a region that would never run.)"""
        with self._cv:
            self._stopped = True
            self._todo.clear()
            self._cv.notify_all()
            while wait and self._busy:
                self._cv.wait()
        return self.take()

    def _pause(self) -> None:
        self._cv.acquire()
        while self._busy:
            self._cv.wait()

    def _resume(self) -> None:
        self._cv.release()

    def _forked(self) -> None:
        """In a forked child: the worker thread did not come along; start another if needed."""
        self._cv = threading.Condition()
        self._busy = False
        self._thread = None
        if self._todo:
            self._start()

    # ---- worker thread -----------------------------------------------------------------------
    def _work(self) -> None:
        with self._cv:
            self._busy = True           # (a fork waits while the worker is inside LLVM)
        setup = tm = pb = None
        t0 = time.perf_counter()
        try:
            tm = llvmraw.TargetMachine(self.opt_level)    # (LLVM starts when first needed)
            pb = llvmraw.PassBuilder(tm, self.opt_level, self.whole) if self.opt_level else None
        except Exception as e:          # every job fails with it (reported by the main thread)
            setup = f"starting LLVM on the compile thread: {e}"
        with self._cv:
            self.seconds_start += time.perf_counter() - t0
            self._busy = False
            self._cv.notify_all()
        while True:
            with self._cv:
                while not self._todo and not self._stopped:
                    self._cv.wait()
                if self._stopped:
                    return
                key, text = self._next()
                self._busy = True
            t0 = time.perf_counter()
            data = error = None
            try:
                if setup is not None:
                    raise RuntimeError(setup)
                data = self._compile(text, tm, pb)
            except Exception as e:          # a translator bug: reported by the main thread
                error = str(e)
            seconds = time.perf_counter() - t0
            with self._cv:
                self.seconds += seconds
                self.jobs += 1
                self._done.append((key, data, error, seconds))
                self._busy = False
                self._cv.notify_all()
            if self.on_done is not None:
                self.on_done()

    def _next(self) -> tuple[str, str]:
        """The job to compile next (the lock held): the first whose code has run since the last
        job was submitted (any of its blocks: a loop nest's head may run once in a long
        while), else the first. A job queued behind another whose loop the guest has
        left in the meantime goes first: crc32's checksum loop turns hot 7 ms after the loop
        that fills its buffer, which has ended by the time the worker has LLVM loaded and takes
        a job; first in, first out, the checksum loop ran interpreted 25 ms longer, waiting for
        code that never ran. (All jobs taken newest first, as tried in the fifteenth round, put
        strings' small inner loops ahead of its main loop, which was still running.)"""
        todo, runs = self._todo, self.runs
        pick = 0
        if runs is not None and len(todo) > 1:
            for i, (_, _, blocks, mark) in enumerate(todo):
                if not blocks or mark is None or self._ran(blocks) != mark:
                    pick = i
                    break
        key, text, _, _ = todo[pick]
        del todo[pick]
        return key, text

    def _compile(self, text: str, tm, pb) -> bytes:
        return llvmraw.emit_object(text, tm, pb)


def _each(method: str):
    """Call `method` of every live Background (fork and exit hooks)."""
    return lambda: [getattr(bg, method)() for bg in list(_LIVE)]


# A fork waits for the job in flight; an exiting interpreter too (no worker may still be inside
# LLVM when it tears down).
os.register_at_fork(before=_each("_pause"), after_in_parent=_each("_resume"),
                    after_in_child=_each("_forked"))
atexit.register(_each("close"))
