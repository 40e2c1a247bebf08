"""Syscalls that describe or tune the process: ids, uname, resource limits, affinity, the thread
pointer (arch_prctl), prctl names, usage counters.

The guest runs inside the jitbt process, so ids, usage and affinity are that process's own (the
guest's single thread is jitbt's main thread, whose tid is the pid). Resource limits are the
guest's: read from the host at start, stored when set, never applied to the host (the guest's
RLIMIT_NOFILE does bound its descriptor table). Fixed-layout structs (sysinfo, rusage, tms,
cpu masks) come straight from the host kernel, whose x86-64 layout is the guest's::

    sys_arch_prctl(m, ARCH_SET_FS, 0x7000)     # translated code now reads %fs:0 at 0x7000
    sys_uname(m, buf)                          # struct utsname: Linux / x86_64
"""
from __future__ import annotations

import ctypes
import errno
import os
import resource
import struct
import threading
from translator.plain import dataclass, field

from .sys_files import host_syscall
from .syscalls import syscall

RLIM_NLIMITS = 16
RLIMIT_NOFILE = 7
RLIM_INFINITY = (1 << 64) - 1
ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
PR_SET_NAME, PR_GET_NAME = 15, 16
CANONICAL_LIMIT = 1 << 47


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


@dataclass
class ProcessInfo:
    """What the guest process has set about itself (kept on the Machine as ``m.process``)."""
    name: bytes = b""
    rlimits: dict = field(default_factory=dict)


def process(m) -> ProcessInfo:
    info = getattr(m, "process", None)
    if info is None:
        path = getattr(getattr(m, "image", None), "path", "") or ""
        info = ProcessInfo(os.fsencode(os.path.basename(path))[:15])
        for r in range(RLIM_NLIMITS):
            try:
                soft, hard = resource.getrlimit(r)
            except (ValueError, OSError):
                continue
            info.rlimits[r] = (soft & RLIM_INFINITY, hard & RLIM_INFINITY)
        m.process = info
    return info


def _own(pid: int) -> None:
    """Only the guest itself (pid 0 or its own pid) can be asked about: ESRCH otherwise."""
    pid = _i32(pid)
    if pid not in (0, os.getpid()):
        raise _err(errno.ESRCH)


# ---- ids ----------------------------------------------------------------------------------------

for _nr, _name, _fn in ((39, "getpid", os.getpid), (110, "getppid", os.getppid),
                        (186, "gettid", threading.get_native_id), (102, "getuid", os.getuid),
                        (107, "geteuid", os.geteuid), (104, "getgid", os.getgid),
                        (108, "getegid", os.getegid), (111, "getpgrp", os.getpgrp)):
    syscall(_nr, _name, "")(lambda m, _fn=_fn: _fn())


@syscall(115, "getgroups", "int ptr")
def sys_getgroups(m, size, lst):
    groups = os.getgroups()
    size = _i32(size)
    if size < 0:
        raise _err(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise _err(errno.EINVAL)
    m.mem.write(lst, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


@syscall(218, "set_tid_address", "ptr")
def sys_set_tid_address(m, tidptr):
    return threading.get_native_id()


@syscall(273, "set_robust_list", "ptr size")
def sys_set_robust_list(m, head, size):
    if size != 24:
        raise _err(errno.EINVAL)
    return 0


@syscall(334, "rseq", "ptr size int int")
def sys_rseq(m, rseq, size, flags, sig):
    raise _err(errno.ENOSYS)      # restartable sequences are not modelled; libcs carry on without


@syscall(24, "sched_yield", "")
def sys_sched_yield(m):
    os.sched_yield()
    return 0


@syscall(204, "sched_getaffinity", "int size ptr")
def sys_sched_getaffinity(m, pid, size, mask):
    _own(pid)
    buf = ctypes.create_string_buffer(max(min(size, 1 << 16), 1))
    n = host_syscall(204, 0, min(size, 1 << 16), buf)
    m.mem.write(mask, buf.raw[:n])
    return n


# ---- names and the machine ---------------------------------------------------------------------

def _utsfield(text: str) -> bytes:
    return os.fsencode(text)[:64].ljust(65, b"\0")


def _domainname() -> str:
    try:
        with open("/proc/sys/kernel/domainname") as f:
            return f.read().strip()
    except OSError:
        return "(none)"


@syscall(63, "uname", "ptr")
def sys_uname(m, buf):
    u = os.uname()
    fields = ("Linux", u.nodename, u.release, u.version, "x86_64", _domainname())
    m.mem.write(buf, b"".join(_utsfield(f) for f in fields))
    return 0


def _prctl_set_name(m, arg):
    process(m).name = m.mem.read_cstring(arg, 1 << 12)[:15]
    return 0


def _prctl_get_name(m, arg):
    m.mem.write(arg, process(m).name.ljust(16, b"\0"))
    return 0


PRCTL = {PR_SET_NAME: _prctl_set_name, PR_GET_NAME: _prctl_get_name}


@syscall(157, "prctl", "int hex hex hex hex")
def sys_prctl(m, option, arg2, arg3, arg4, arg5):
    op = PRCTL.get(_i32(option))
    if op is None:
        raise _err(errno.EINVAL)
    return op(m, arg2)


def _set_base(field_name):
    def op(m, addr):
        if addr >= CANONICAL_LIMIT:
            raise _err(errno.EPERM)
        setattr(m.state, field_name, addr)
        return 0
    return op


def _get_base(field_name):
    def op(m, addr):
        m.mem.write(addr, struct.pack("<Q", getattr(m.state, field_name)))
        return 0
    return op


ARCH_PRCTL = {ARCH_SET_FS: _set_base("fs_base"), ARCH_SET_GS: _set_base("gs_base"),
              ARCH_GET_FS: _get_base("fs_base"), ARCH_GET_GS: _get_base("gs_base")}


@syscall(158, "arch_prctl", "archcode hex")
def sys_arch_prctl(m, code, addr):
    op = ARCH_PRCTL.get(_i32(code))
    if op is None:
        raise _err(errno.EINVAL)
    return op(m, addr)


# ---- resource limits and usage ------------------------------------------------------------------

def _rlimit(m, which: int) -> tuple[int, int]:
    limits = process(m).rlimits
    if which not in limits:
        raise _err(errno.EINVAL)
    return limits[which]


def _set_rlimit(m, which: int, soft: int, hard: int) -> None:
    old_soft, old_hard = _rlimit(m, which)
    if soft > hard or (hard > old_hard and os.geteuid() != 0):
        raise _err(errno.EINVAL if soft > hard else errno.EPERM)
    if which == RLIMIT_NOFILE:
        if hard > 1 << 20:
            raise _err(errno.EPERM)
        m.fds.limit = soft
    process(m).rlimits[which] = (soft, hard)


@syscall(302, "prlimit64", "int resource ptr ptr")
def sys_prlimit64(m, pid, which, new, old):
    _own(pid)
    which = _i32(which)
    cur = _rlimit(m, which)
    if new:
        soft, hard = struct.unpack("<QQ", m.mem.read(new, 16))
        if old:
            m.mem._check(old, 16, 2)
        _set_rlimit(m, which, soft, hard)
    if old:
        m.mem.write(old, struct.pack("<QQ", *cur))
    return 0


@syscall(97, "getrlimit", "resource ptr")
def sys_getrlimit(m, which, out):
    m.mem.write(out, struct.pack("<QQ", *_rlimit(m, _i32(which))))
    return 0


@syscall(160, "setrlimit", "resource ptr")
def sys_setrlimit(m, which, new):
    soft, hard = struct.unpack("<QQ", m.mem.read(new, 16))
    _set_rlimit(m, _i32(which), soft, hard)
    return 0


def _host_struct(nr: int, size: int, *args):
    """A host syscall that fills one struct: returns (result, bytes)."""
    buf = ctypes.create_string_buffer(size)
    r = host_syscall(nr, *args, buf)
    return r, buf.raw


@syscall(99, "sysinfo", "ptr")
def sys_sysinfo(m, info):
    r, data = _host_struct(99, 112)
    m.mem.write(info, data)
    return r


@syscall(98, "getrusage", "int ptr")
def sys_getrusage(m, who, usage):
    r, data = _host_struct(98, 144, _i32(who))     # EINVAL for a bad `who` from the host
    if r == 0 and m.knobs.clock == "virtual":      # CPU time from the modelled clock
        from . import clock
        data = clock.rusage(m, _i32(who))
    m.mem.write(usage, data)
    return r


@syscall(100, "times", "ptr")
def sys_times(m, buf):
    r, data = _host_struct(100, 32)
    if m.knobs.clock == "virtual":
        from . import clock
        data, r = clock.tms(m)
    if buf:
        m.mem.write(buf, data)
    return r
