"""Syscalls on time and randomness: clock_gettime, clock_getres, gettimeofday, time, nanosleep,
clock_nanosleep, getrandom.

Clocks are the host's, except with the knob clock=virtual (`--accuracy cycle`): then every clock
reads the modelled time of runtime/clock.py and the sleeping calls advance that clock instead of
waiting, so that runs are deterministic. Results are written in the kernel's x86-64 layouts:
struct timespec and struct timeval are two signed 64-bit words::

    sys_clock_gettime(m, CLOCK_MONOTONIC, tp)     # tp <- (seconds, nanoseconds)
    sys_getrandom(m, buf, 16, 0)                  # -> 16
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct
import time

from . import clock as vclock
from .sys_files import host_syscall
from .syscalls import syscall

NS = 1_000_000_000
TIMER_ABSTIME = 1
GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _read_timespec(m, addr: int) -> int:
    """A guest struct timespec as nanoseconds (EINVAL for a negative or unnormalised one)."""
    sec, nsec = struct.unpack("<qq", m.mem.read(addr, 16))
    if sec < 0 or not 0 <= nsec < NS:
        raise _err(errno.EINVAL)
    return sec * NS + nsec


def _virtual(m) -> bool:
    return m.knobs.clock == "virtual"


@syscall(228, "clock_gettime", "clock ptr")
def sys_clock_gettime(m, clock, tp):
    if _virtual(m):
        ns = vclock.now_ns(m, _i32(clock))
    else:
        ns = time.clock_gettime_ns(_i32(clock))      # EINVAL for a bad clock, from the host
    m.mem.write(tp, struct.pack("<qq", ns // NS, ns % NS))
    return 0


@syscall(229, "clock_getres", "clock ptr")
def sys_clock_getres(m, clock, res):
    if _virtual(m):
        ns = vclock.resolution_ns(_i32(clock))
        if res:
            m.mem.write(res, vclock.timespec(ns))
        return 0
    cbuf = ctypes.create_string_buffer(16)
    host_syscall(229, _i32(clock), cbuf)
    if res:
        m.mem.write(res, cbuf.raw)
    return 0


@syscall(96, "gettimeofday", "ptr ptr")
def sys_gettimeofday(m, tv, tz):
    ns = vclock.now_ns(m, vclock.CLOCK_REALTIME) if _virtual(m) else \
        time.clock_gettime_ns(time.CLOCK_REALTIME)
    if tv:
        m.mem.write(tv, struct.pack("<qq", ns // NS, ns % NS // 1000))
    if tz:
        m.mem.write(tz, struct.pack("<ii", 0, 0))    # minuteswest, dsttime: UTC as Linux keeps
    return 0


@syscall(201, "time", "ptr")
def sys_time(m, tloc):
    now = (vclock.now_ns(m, vclock.CLOCK_REALTIME) if _virtual(m) else
           time.clock_gettime_ns(time.CLOCK_REALTIME)) // NS
    if tloc:
        m.mem.write(tloc, struct.pack("<q", now))
    return now


def _sleep_until(clock: int, deadline_ns: int) -> None:
    while True:
        left = deadline_ns - time.clock_gettime_ns(clock)
        if left <= 0:
            return
        time.sleep(left / NS)


@syscall(35, "nanosleep", "ptr ptr")
def sys_nanosleep(m, req, rem):
    ns = _read_timespec(m, req)
    if _virtual(m):
        vclock.sleep(m, ns)                          # the clock jumps; nothing waits
        return 0
    _sleep_until(time.CLOCK_MONOTONIC, time.clock_gettime_ns(time.CLOCK_MONOTONIC) + ns)
    return 0          # `rem` is written only when a signal interrupts the sleep


@syscall(230, "clock_nanosleep", "clock int ptr ptr")
def sys_clock_nanosleep(m, clock, flags, req, rem):
    clock = _i32(clock)
    if clock not in (time.CLOCK_REALTIME, time.CLOCK_MONOTONIC, time.CLOCK_BOOTTIME,
                     time.CLOCK_TAI, time.CLOCK_PROCESS_CPUTIME_ID):
        raise _err(errno.ENOTSUP if clock == time.CLOCK_THREAD_CPUTIME_ID else errno.EINVAL)
    ns = _read_timespec(m, req)
    if _virtual(m):
        if flags & TIMER_ABSTIME:
            vclock.sleep_until(m, clock, ns)
        elif clock not in vclock.CPU_CLOCKS:
            vclock.sleep(m, ns)
        return 0
    deadline = ns if flags & TIMER_ABSTIME else time.clock_gettime_ns(clock) + ns
    _sleep_until(clock, deadline)
    return 0


@syscall(318, "getrandom", "obuf size hex")
def sys_getrandom(m, buf, length, flags):
    if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) or \
            flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE:
        raise _err(errno.EINVAL)
    n = min(length, 33554431)        # the kernel's cap for one call
    m.mem._check(buf, n, 2)
    m.mem.write(buf, os.urandom(n))
    return n
