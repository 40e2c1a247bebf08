"""Signal syscalls: dispositions and masks (rt_sigaction, rt_sigprocmask, rt_sigpending), the
alternate stack, sending signals (kill, tkill, tgkill), waiting for them (pause, rt_sigsuspend,
rt_sigtimedwait), rt_sigreturn, and the real-time timer (alarm, setitimer, getitimer).

The state and delivery live in runtime/signals.py; rows here read and write the kernel's x86-64
structures (struct sigaction: handler, flags, restorer, mask; 8-byte sigsets; stack_t; struct
itimerval). Signals the guest sends itself become pending and are delivered right after the
syscall, as the kernel delivers them on the way back to user mode::

    sys_rt_sigaction(m, SIGUSR1, act, 0, 8)     # install a handler
    sys_tgkill(m, pid, pid, SIGUSR1)             # what raise() does: delivered after the call

The guest is alone: kill(0), kill(-1) and kill(-pgrp) reach only the guest itself; kill of another
pid is passed to the host. Timers (alarm, setitimer) are the host's own, whose SIGALRM, SIGVTALRM
and SIGPROF are forwarded to the guest.
"""
from __future__ import annotations

import errno
import os
import signal
import struct
import threading
import time

from . import signals as sg
from .syscalls import syscall

SIGSET_SIZE = 8
STACK_T = struct.Struct("<QI4xQ")
ITIMERVAL = struct.Struct("<qqqq")          # it_interval {sec, usec}, it_value {sec, usec}
TIMESPEC = struct.Struct("<qq")
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
HOW = {SIG_BLOCK: lambda old, new: old | new, SIG_UNBLOCK: lambda old, new: old & ~new,
       SIG_SETMASK: lambda old, new: new}
ITIMERS = {0: signal.ITIMER_REAL, 1: signal.ITIMER_VIRTUAL, 2: signal.ITIMER_PROF}


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _signo(sig: int, allow_zero: bool = False) -> int:
    sig = _i32(sig)
    if not (0 if allow_zero else 1) <= sig <= sg.NSIG:
        raise _err(errno.EINVAL)
    return sig


def _read_set(m, ptr: int) -> int:
    return int.from_bytes(m.mem.read(ptr, SIGSET_SIZE), "little")


def _write_set(m, ptr: int, value: int) -> None:
    m.mem.write(ptr, (value & sg.MASK64).to_bytes(SIGSET_SIZE, "little"))


def _check_setsize(size: int) -> None:
    if size != SIGSET_SIZE:
        raise _err(errno.EINVAL)


# ---- dispositions and masks ---------------------------------------------------------------------

@syscall(13, "rt_sigaction", "int iptr optr size")
def sys_rt_sigaction(m, sig, act, oact, sigsetsize):
    _check_setsize(sigsetsize)
    s = sg.state(m)
    sig = _signo(sig)
    new = sg.Action.unpack(m.mem.read(act, 32)) if act else None
    if new and sig in (sg.SIGKILL, sg.SIGSTOP):
        raise _err(errno.EINVAL)
    old = s.actions[sig]
    if oact:
        m.mem.write(oact, old.pack())
    if new:
        new.mask &= ~sg.UNBLOCKABLE & sg.MASK64
        s.actions[sig] = new
        if s.ignored(sig):            # setting SIG_IGN discards what is pending
            sg.discard(s, sig)
    return 0


@syscall(14, "rt_sigprocmask", "int iptr optr size")
def sys_rt_sigprocmask(m, how, set_, oset, sigsetsize):
    _check_setsize(sigsetsize)
    s = sg.state(m)
    old = s.blocked
    if set_:
        op = HOW.get(_i32(how))
        if op is None:
            raise _err(errno.EINVAL)
        new = _read_set(m, set_)
    if oset:
        _write_set(m, oset, old)
    if set_:
        s.blocked = op(old, new) & ~sg.UNBLOCKABLE & sg.MASK64
    return 0


@syscall(127, "rt_sigpending", "optr size")
def sys_rt_sigpending(m, set_, sigsetsize):
    if sigsetsize > SIGSET_SIZE:
        raise _err(errno.EINVAL)
    s = sg.state(m)
    m.mem.write(set_, (s.pending_mask() & s.blocked).to_bytes(8, "little")[:sigsetsize])
    return 0


@syscall(15, "rt_sigreturn", "")
def sys_rt_sigreturn(m):
    return sg.sigreturn(m)


@syscall(131, "sigaltstack", "iptr optr")
def sys_sigaltstack(m, ss, old_ss):
    s = sg.state(m)
    sp = m.state.gpr[4]
    old = STACK_T.pack(s.alt_sp, s.alt_stack_flags(sp), s.alt_size)
    if ss:
        new_sp, flags, size = STACK_T.unpack(m.mem.read(ss, STACK_T.size))
        if old_ss:
            m.mem._check(old_ss, STACK_T.size, 2)
        failed = s.set_alt_stack(new_sp, flags & 0xFFFFFFFF, size, sp)
        if failed:
            raise _err(failed)
    if old_ss:
        m.mem.write(old_ss, old)
    return 0


# ---- sending ------------------------------------------------------------------------------------

@syscall(62, "kill", "int int")
def sys_kill(m, pid, sig):
    pid, sig = _i32(pid), _signo(sig, allow_zero=True)
    me = os.getpid()
    if pid in (me, 0, -1, -os.getpgrp()):
        if sig:
            sg.queue(m, sig, sg.SI_USER, me, os.getuid())
        return 0
    os.kill(pid, sig)               # another process: the host's business (ESRCH, EPERM)
    return 0


def _own_thread(m, tid: int, sig: int) -> int:
    if _i32(tid) <= 0:
        raise _err(errno.EINVAL)
    sig = _signo(sig, allow_zero=True)
    if _i32(tid) != threading.get_native_id():
        raise _err(errno.ESRCH)
    if sig:
        sg.queue(m, sig, sg.SI_TKILL, os.getpid(), os.getuid())
    return 0


@syscall(200, "tkill", "int int")
def sys_tkill(m, tid, sig):
    return _own_thread(m, tid, sig)


@syscall(234, "tgkill", "int int int")
def sys_tgkill(m, tgid, tid, sig):
    if _i32(tgid) <= 0:
        raise _err(errno.EINVAL)
    if _i32(tgid) != os.getpid():
        _signo(sig, allow_zero=True)
        raise _err(errno.ESRCH)
    return _own_thread(m, tid, sig)


# ---- waiting ------------------------------------------------------------------------------------

@syscall(34, "pause", "")
def sys_pause(m):
    sg.wait_for_signal(m)
    raise _err(errno.EINTR)


@syscall(130, "rt_sigsuspend", "iptr size")
def sys_rt_sigsuspend(m, mask, sigsetsize):
    _check_setsize(sigsetsize)
    s = sg.state(m)
    new = _read_set(m, mask)
    s.saved_mask = s.blocked          # the handler's frame saves this; restored after it
    s.blocked = new & ~sg.UNBLOCKABLE & sg.MASK64
    sg.wait_for_signal(m)
    raise _err(errno.EINTR)


@syscall(128, "rt_sigtimedwait", "iptr optr iptr size")
def sys_rt_sigtimedwait(m, set_, info, timeout, sigsetsize):
    _check_setsize(sigsetsize)
    s = sg.state(m)
    wanted = _read_set(m, set_) & ~sg.UNBLOCKABLE
    deadline = None
    if timeout:
        sec, nsec = TIMESPEC.unpack(m.mem.read(timeout, TIMESPEC.size))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise _err(errno.EINVAL)
        deadline = time.monotonic() + sec + nsec / 1e9
    if not sg.wait_for_signal(m, deadline, wanted):
        raise _err(errno.EAGAIN)
    ready = sorted(x for x in s.pending if wanted & sg.bit(x))
    if not ready:
        raise _err(errno.EINTR)       # another signal came: its handler runs
    got = sg._take(s, ready[0])
    if info:
        m.mem.write(info, got.pack())
    return got.signo


# ---- timers -------------------------------------------------------------------------------------

@syscall(37, "alarm", "int")
def sys_alarm(m, seconds):
    return signal.alarm(seconds & 0xFFFFFFFF)


def _itimer(which: int) -> int:
    host = ITIMERS.get(_i32(which))
    if host is None:
        raise _err(errno.EINVAL)
    return host


def _pack_itimer(value: float, interval: float) -> bytes:
    def split(t):
        us = round(t * 1_000_000)
        return us // 1_000_000, us % 1_000_000
    return ITIMERVAL.pack(*split(interval), *split(value))


@syscall(38, "setitimer", "int iptr optr")
def sys_setitimer(m, which, new, old):
    host = _itimer(which)
    value, interval = 0.0, 0.0
    if new:
        isec, iusec, vsec, vusec = ITIMERVAL.unpack(m.mem.read(new, ITIMERVAL.size))
        if min(isec, iusec, vsec, vusec) < 0 or iusec >= 1_000_000 or vusec >= 1_000_000:
            raise _err(errno.EINVAL)
        value, interval = vsec + vusec / 1e6, isec + iusec / 1e6
    if old:
        m.mem._check(old, ITIMERVAL.size, 2)
    prev = signal.setitimer(host, value, interval) if new else signal.getitimer(host)
    if old:
        m.mem.write(old, _pack_itimer(*prev))
    return 0


@syscall(36, "getitimer", "int optr")
def sys_getitimer(m, which, cur):
    m.mem.write(cur, _pack_itimer(*signal.getitimer(_itimer(which))))
    return 0
