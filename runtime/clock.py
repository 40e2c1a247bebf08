"""The virtual clock of `--accuracy cycle` (knob clock=virtual): modelled time from modelled cycles.

Translated code adds the modelled cost of every instruction it retires (translator/costs.py) to the
state field ``cycles``; this module turns that count into everything a guest can read as time,
so that two runs of the same guest read the same times::

    from runtime import clock
    clock.tsc(m)                                  # what rdtsc returns
    clock.now_ns(m, clock.CLOCK_MONOTONIC)        # what clock_gettime returns, in nanoseconds
    clock.sleep(m, 1_000_000)                     # nanosleep: the clock jumps 1 ms, no waiting

The model:

- Elapsed cycles = ``state.cycles`` (instructions retired, syscalls included: the ``syscall``
  instruction's cost is a whole round trip through a kernel) + the cycles the guest slept.
  Sleeping syscalls do not wait: they add the requested time, converted to cycles, to the clock.
- Cycles become time at ``costs.NOMINAL_HZ`` (2.6 GHz, the calibration machine's TSC rate):
  ``ns = cycles * 10**9 // NOMINAL_HZ``, rounded down, so every clock is monotonic.
- The process starts at ``EPOCH_NS`` (2026-01-01T00:00:00Z) on CLOCK_REALTIME, and
  ``BOOT_NS`` (100 s) after a modelled boot on CLOCK_MONOTONIC and CLOCK_BOOTTIME (uptime-like
  values, as on a real machine); rdtsc counts from that boot too: ``BOOT_NS`` worth of cycles
  plus the elapsed cycles. CLOCK_TAI is REALTIME + 37 s; the COARSE clocks are the others rounded
  down to a 4 ms tick (CONFIG_HZ=250). CPU-time clocks (process, thread, getrusage, times) count
  only the instructions' cycles: no time passes on them while the guest sleeps.
- Nothing of the host's time leaks in: the same guest with the same input reads the same times.
  A guest that execs a program starts that program's clock at the epoch again.
"""
from __future__ import annotations

import errno
import os
import struct
from translator.plain import dataclass

from translator.costs import NOMINAL_HZ

NS = 1_000_000_000
EPOCH_NS = 1_767_225_600 * NS        # 2026-01-01T00:00:00Z, CLOCK_REALTIME at the first instruction
BOOT_NS = 100 * NS                   # CLOCK_MONOTONIC at the first instruction
TAI_OFFSET_NS = 37 * NS              # TAI - UTC since 2017
COARSE_NS = 4_000_000                # a jiffy at CONFIG_HZ=250: the COARSE clocks' resolution
CLOCK_TICKS = 100                    # sysconf(_SC_CLK_TCK): the unit of times()

(CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
 CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,
 CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM) = range(10)
CLOCK_TAI = 11
CPU_CLOCKS = (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID)
RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD = 0, -1, 1


@dataclass
class VirtualClock:
    """What the clock adds to the retired instructions' cycles."""
    slept: int = 0           # cycles spent in sleeping syscalls


def of(m) -> VirtualClock:
    """The machine's virtual clock (made on first use)."""
    vc = getattr(m, "vclock", None)
    if vc is None:
        vc = m.vclock = VirtualClock()
    return vc


def cycles_to_ns(cycles: int) -> int:
    return cycles * NS // NOMINAL_HZ


def ns_to_cycles(ns: int) -> int:
    """Cycles that last at least `ns` nanoseconds (rounded up: a sleep is never short)."""
    return -(-ns * NOMINAL_HZ // NS)


def cpu_cycles(m) -> int:
    """Cycles of the instructions the guest retired (its CPU time)."""
    return m.state.cycles


def elapsed_cycles(m) -> int:
    """Cycles since the first instruction: the instructions' and the sleeps'."""
    return m.state.cycles + of(m).slept


def tsc(m) -> int:
    """The time-stamp counter: rdtsc and rdtscp read this."""
    return (ns_to_cycles(BOOT_NS) + elapsed_cycles(m)) & ((1 << 64) - 1)


def _cpu_clock(clock: int) -> bool:
    """A CPU-time clock id: the two fixed ones, or a process/thread CPU clock (negative ids,
    made by clock_getcpuclockid and pthread_getcpuclockid) - all of them this one process's."""
    return clock in CPU_CLOCKS or clock < 0


def now_ns(m, clock: int) -> int:
    """The time on `clock` (a clockid_t) in nanoseconds; OSError(EINVAL) for a clock that does
    not exist."""
    if _cpu_clock(clock):
        return cycles_to_ns(cpu_cycles(m))
    elapsed = cycles_to_ns(elapsed_cycles(m))
    if clock in (CLOCK_REALTIME, CLOCK_REALTIME_ALARM):
        return EPOCH_NS + elapsed
    if clock in (CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM):
        return BOOT_NS + elapsed
    if clock == CLOCK_TAI:
        return EPOCH_NS + TAI_OFFSET_NS + elapsed
    if clock == CLOCK_REALTIME_COARSE:
        return (EPOCH_NS + elapsed) // COARSE_NS * COARSE_NS
    if clock == CLOCK_MONOTONIC_COARSE:
        return (BOOT_NS + elapsed) // COARSE_NS * COARSE_NS
    raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))


def resolution_ns(clock: int) -> int:
    """clock_getres: 1 ns (a cycle is shorter), a jiffy for the COARSE clocks."""
    now_ns_valid = _cpu_clock(clock) or 0 <= clock <= CLOCK_BOOTTIME_ALARM or clock == CLOCK_TAI
    if not now_ns_valid:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    return COARSE_NS if clock in (CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE) else 1


def sleep(m, ns: int) -> None:
    """A relative sleep of `ns` nanoseconds: the clock jumps forward, nothing waits."""
    if ns > 0:
        of(m).slept += ns_to_cycles(ns)


def sleep_until(m, clock: int, deadline_ns: int) -> None:
    """An absolute sleep on `clock`. On a CPU-time clock it returns at once: nothing of this
    process runs while it sleeps, so that clock could never reach the deadline."""
    if _cpu_clock(clock):
        return
    sleep(m, deadline_ns - now_ns(m, clock))


def timespec(ns: int) -> bytes:
    return struct.pack("<qq", ns // NS, ns % NS)


def timeval(ns: int) -> bytes:
    return struct.pack("<qq", ns // NS, ns % NS // 1000)


def rusage(m, who: int) -> bytes:
    """struct rusage (144 bytes) for getrusage: user time = the modelled CPU time, no system
    time, no children (their clocks are their own), the other fields zero."""
    if who not in (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    user = cycles_to_ns(cpu_cycles(m)) if who != RUSAGE_CHILDREN else 0
    return timeval(user) + timeval(0) + bytes(144 - 32)


def tms(m) -> tuple[bytes, int]:
    """times(): (struct tms, the return value), in clock ticks: the process's user time and
    the elapsed time since the modelled boot."""
    user = cycles_to_ns(cpu_cycles(m)) * CLOCK_TICKS // NS
    ticks = (BOOT_NS + cycles_to_ns(elapsed_cycles(m))) * CLOCK_TICKS // NS
    return struct.pack("<qqqq", user, 0, 0, 0), ticks
