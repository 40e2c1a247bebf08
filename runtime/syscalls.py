"""The Linux syscall table: one row a syscall, driving dispatch, --strace and the report of what
is unimplemented.

A row is declared on its implementation with ``@syscall(number, name, argument kinds)``. The
implementation receives the machine and the raw argument words and returns the result word (a
negative errno for failure). Argument kinds say how --strace prints them: ``fd``, ``int``,
``hex``, ``ptr``, ``str`` (NUL-terminated guest string), ``buf`` (guest buffer whose length is the
next argument; printed after the call for ``obuf``, whose contents the call produces)::

    @syscall(1, "write", "fd buf size")
    def sys_write(m, fd, buf, count): ...
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Callable

from translator.state import PAGE_SIZE, PERM_R, PERM_W

from .memory import GuestFault, page_ceil

MASK64 = (1 << 64) - 1


class GuestExit(Exception):
    """The guest asked to end the process (exit / exit_group)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status & 0xFF


@dataclass(frozen=True)
class Syscall:
    number: int
    name: str
    kinds: tuple
    fn: Callable


SYSCALLS: dict[int, Syscall] = {}


def syscall(number: int, name: str, kinds: str = ""):
    def register(fn):
        if number in SYSCALLS:
            raise ValueError(f"syscall {number} declared twice")
        SYSCALLS[number] = Syscall(number, name, tuple(kinds.split()), fn)
        return fn
    return register


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


# ---- files and descriptors ---------------------------------------------------------------

def host_fd(m, fd: int) -> int:
    fd = _signed(fd)
    host = m.fds.get(fd)
    if host is None:
        raise OSError(errno.EBADF, "bad file descriptor")
    return host


@syscall(0, "read", "fd obuf size")
def sys_read(m, fd, buf, count):
    h = host_fd(m, fd)
    count = min(count, 1 << 24)
    m.mem._check(buf, count, 2)         # the guest must be able to write the buffer
    data = os.read(h, count)
    m.mem.write(buf, data)
    return len(data)


@syscall(1, "write", "fd buf size")
def sys_write(m, fd, buf, count):
    h = host_fd(m, fd)
    data = m.mem.read(buf, min(count, 1 << 24))
    return os.write(h, data)


# ---- memory -------------------------------------------------------------------------------

@syscall(12, "brk", "hex")
def sys_brk(m, addr):
    """Linux semantics: brk(0) or a bad request returns the current break; the break itself is
    kept exact (unaligned), the mapping covers whole pages."""
    if addr < m.brk_start or addr > m.brk_limit:
        return m.brk
    old_end, new_end = page_ceil(m.brk), page_ceil(addr)
    if new_end > old_end:
        if any(m.mem.is_mapped(p) for p in range(old_end, new_end, PAGE_SIZE)):
            return m.brk           # would run into another mapping
        m.mem.map(old_end, new_end - old_end, PERM_R | PERM_W)
    elif new_end < old_end:
        m.mem.unmap(new_end, old_end - new_end)
    m.brk = addr
    return addr


# ---- processes ----------------------------------------------------------------------------

@syscall(60, "exit", "int")
def sys_exit(m, status):
    raise GuestExit(status)


@syscall(231, "exit_group", "int")
def sys_exit_group(m, status):
    raise GuestExit(status)


# ---- dispatch -----------------------------------------------------------------------------

ARG_REGS = (7, 6, 2, 10, 8, 9)     # rdi, rsi, rdx, r10, r8, r9


def do_syscall(m) -> None:
    """Serve the syscall the guest is making (number in rax); the result goes to rax."""
    st = m.state
    nr = st.gpr[0]
    args = [st.gpr[r] for r in ARG_REGS]
    row = SYSCALLS.get(nr)
    if row is None:
        m.unimplemented_syscall(nr)
        result = -errno.ENOSYS
    else:
        try:
            result = row.fn(m, *args[:len(row.kinds)])
        except GuestFault:
            result = -errno.EFAULT
        except OSError as e:
            result = -(e.errno or errno.EIO)
        except GuestExit:
            if m.strace:
                m.strace_line(f"{format_call(m, row, args)} = ?")
            raise
    st.gpr[0] = result & MASK64
    if m.strace:
        name = row.name if row else f"syscall_{nr}"
        call = format_call(m, row, args) if row else f"{name}({', '.join(hex(a) for a in args)})"
        m.strace_line(f"{call} = {format_result(result)}")


def format_result(result: int) -> str:
    if -4096 < result < 0:
        name = errno.errorcode.get(-result, "E?")
        return f"-1 {name} ({os.strerror(-result)})"
    return str(result) if result < 1 << 32 else hex(result)


def format_call(m, row: Syscall, args) -> str:
    out = []
    for i, kind in enumerate(row.kinds):
        v = args[i]
        if kind in ("fd", "int"):
            out.append(str(_signed(v)))
        elif kind == "str":
            try:
                out.append(repr(m.mem.read_cstring(v, 256))[1:])
            except GuestFault:
                out.append(hex(v))
        elif kind in ("buf", "obuf"):
            n = min(args[i + 1], 32)
            try:
                data = m.mem.read(v, n)
                more = "..." if args[i + 1] > 32 else ""
                out.append(repr(data)[1:] + more)
            except GuestFault:
                out.append(hex(v))
        elif kind == "size":
            out.append(str(v))
        else:
            out.append(hex(v))
    return f"{row.name}({', '.join(out)})"
