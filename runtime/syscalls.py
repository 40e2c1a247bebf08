"""The Linux syscall table: one row a syscall, driving dispatch, --strace and the report of what
is unimplemented.

A row is declared on its implementation with ``@syscall(number, name, argument kinds)``. The
implementation receives the machine and the raw argument words and returns the result word (a
negative errno for failure). Argument kinds say how --strace prints them: ``fd``, ``int``,
``hex``, ``ptr``, ``str`` (NUL-terminated guest string), ``buf`` (guest buffer whose length is the
next argument; printed after the call for ``obuf``, whose contents the call produces), and, for
readable --strace lines: ``path`` (a guest path), ``dirfd`` (AT_FDCWD by name), ``off``, ``mode``
(octal), ``oflags``/``fdflags`` (O_* without the access mode)/``prot``/``mflags``/``atflags`` (flag names), ``whence``/``fcntlcmd``/
``clock``/``archcode``/``ioctlcmd``/``madv``/``resource`` (constant names), ``ostat`` (struct stat
the call fills); other kinds starting ``i``/``o`` are struct pointers the call reads/fills (hex).
The rows themselves live in sys_files, sys_memory, sys_process and sys_time, imported at the end::

    @syscall(1, "write", "fd buf size")
    def sys_write(m, fd, buf, count): ...
"""
from __future__ import annotations

import errno
import os
import select
import struct
from translator.plain import dataclass
from collections.abc import Callable     # (not typing: 3 ms of a warm start)

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
    return m.fds.host(_signed(fd))       # OSError(EBADF) for a guest fd that is not open


@syscall(0, "read", "fd obuf size")
def sys_read(m, fd, buf, count):
    h = host_fd(m, fd)
    count = min(count, 1 << 24)
    m.mem._check(buf, count, 2)         # the guest must be able to write the buffer
    if count and os.get_blocking(h):
        _wait_readable(h)               # interruptible by a signal, consuming nothing
    from .signals import committing
    committing(m)
    data = os.read(h, count)
    m.mem.write(buf, data)
    return len(data)


@syscall(1, "write", "fd buf size")
def sys_write(m, fd, buf, count):
    h = host_fd(m, fd)
    data = m.mem.read(buf, min(count, 1 << 24))
    return os.write(h, data)


def _wait_readable(h: int) -> None:
    p = select.poll()
    p.register(h, select.POLLIN | select.POLLPRI)
    p.poll()


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
        call = format_call(m, row, args, result) if row else \
            f"{name}({', '.join(hex(a) for a in args)})"
        m.strace_line(f"{call} = {format_result(result)}")


_KERNEL_NAMES: dict[int, str] | None = None


def syscall_name(nr: int) -> str:
    """The name of a syscall number: from the table, else from the kernel's header on this
    machine (for the ones jitbt does not implement), else the number."""
    global _KERNEL_NAMES
    row = SYSCALLS.get(nr)
    if row is not None:
        return row.name
    if _KERNEL_NAMES is None:
        _KERNEL_NAMES = {}
        try:
            with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == "#define" and parts[1].startswith("__NR_"):
                        _KERNEL_NAMES[int(parts[2])] = parts[1][5:]
        except (OSError, ValueError):
            pass
    return _KERNEL_NAMES.get(nr, f"syscall {nr}")


def format_result(result: int) -> str:
    if -4096 < result < 0:
        name = errno.errorcode.get(-result, "E?")
        return f"-1 {name} ({os.strerror(-result)})"
    return str(result) if result < 1 << 32 else hex(result)


# ---- --strace: how each argument kind is printed ------------------------------------------

def _flags(names, v: int, zero: str = "0") -> str:
    """`names` is ((bit, name), ...); unnamed bits are shown in hex."""
    out, rest = [], v
    for bit, name in names:
        if rest & bit == bit and bit:
            out.append(name)
            rest &= ~bit
    if rest:
        out.append(hex(rest))
    return "|".join(out) or zero


O_FLAGS = ((0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
           (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"),
           (0o20000, "O_ASYNC"), (0o40000, "O_DIRECT"), (0o100000, "O_LARGEFILE"),
           (0o200000, "O_DIRECTORY"), (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"),
           (0o2000000, "O_CLOEXEC"), (0o4010000, "O_SYNC"), (0o10000000, "O_PATH"),
           (0o20200000, "O_TMPFILE"))
PROT_FLAGS = ((1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC"))
MAP_FLAGS = ((3, "MAP_SHARED_VALIDATE"), (1, "MAP_SHARED"), (2, "MAP_PRIVATE"),
             (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x100, "MAP_GROWSDOWN"),
             (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"), (0x20000, "MAP_STACK"),
             (0x100000, "MAP_FIXED_NOREPLACE"))
AT_FLAGS = ((0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
            (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"))
FLAG_KINDS = {"fdflags": O_FLAGS, "prot": PROT_FLAGS, "mflags": MAP_FLAGS, "atflags": AT_FLAGS}
ACCMODES = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR", 3: "O_ACCMODE"}

ENUM_KINDS = {
    "whence": {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"},
    "fcntlcmd": {0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL",
                 1030: "F_DUPFD_CLOEXEC"},
    "clock": {0: "CLOCK_REALTIME", 1: "CLOCK_MONOTONIC", 2: "CLOCK_PROCESS_CPUTIME_ID",
              3: "CLOCK_THREAD_CPUTIME_ID", 4: "CLOCK_MONOTONIC_RAW", 5: "CLOCK_REALTIME_COARSE",
              6: "CLOCK_MONOTONIC_COARSE", 7: "CLOCK_BOOTTIME"},
    "archcode": {0x1001: "ARCH_SET_GS", 0x1002: "ARCH_SET_FS", 0x1003: "ARCH_GET_FS",
                 0x1004: "ARCH_GET_GS"},
    "ioctlcmd": {0x5401: "TCGETS", 0x5413: "TIOCGWINSZ", 0x541B: "FIONREAD", 0x5450: "FIONCLEX",
                 0x5451: "FIOCLEX"},
    "madv": {0: "MADV_NORMAL", 1: "MADV_RANDOM", 2: "MADV_SEQUENTIAL", 3: "MADV_WILLNEED",
             4: "MADV_DONTNEED", 8: "MADV_FREE"},
    "resource": {0: "RLIMIT_CPU", 1: "RLIMIT_FSIZE", 2: "RLIMIT_DATA", 3: "RLIMIT_STACK",
                 4: "RLIMIT_CORE", 7: "RLIMIT_NOFILE", 9: "RLIMIT_AS"},
}


def _fmt_oflags(v: int) -> str:
    acc = ACCMODES[v & 3]
    rest = _flags(O_FLAGS, v & ~3, "")
    return f"{acc}|{rest}" if rest else acc


def _fmt_str(m, v: int) -> str:
    if v == 0:
        return "NULL"
    try:
        return repr(m.mem.read_cstring(v, 256))[1:]
    except GuestFault:
        return hex(v)


def _fmt_buf(m, v: int, n: int) -> str:
    try:
        data = m.mem.read(v, min(n, 32))
        return repr(data)[1:] + ("..." if n > 32 else "")
    except GuestFault:
        return hex(v)


def _fmt_stat(m, v: int) -> str:
    """struct stat (x86-64 layout) after the call: the fields strace shows in short form."""
    try:
        mode, = struct.unpack_from("<I", m.mem.read(v + 24, 4))
        size, = struct.unpack_from("<q", m.mem.read(v + 48, 8))
    except GuestFault:
        return hex(v)
    kind = {0o040000: "S_IFDIR", 0o100000: "S_IFREG", 0o120000: "S_IFLNK", 0o020000: "S_IFCHR",
            0o010000: "S_IFIFO", 0o140000: "S_IFSOCK", 0o060000: "S_IFBLK"}.get(mode & 0o170000,
                                                                               "0")
    return f"{{st_mode={kind}|0{mode & 0o7777:o}, st_size={size}, ...}}"


def format_arg(m, kind: str, i: int, args, result: int | None = None) -> str:
    v = args[i]
    if kind in ("fd", "int", "off"):
        return str(_signed(v))
    if kind == "dirfd":
        return "AT_FDCWD" if _signed(v) & 0xFFFFFFFF == 0xFFFFFF9C else str(_signed(v))
    if kind in ("str", "path"):
        return _fmt_str(m, v)
    if kind == "buf":
        return _fmt_buf(m, v, args[i + 1])
    if kind == "obuf":        # what the call produced: `result` bytes, as strace shows them
        if result is None:
            return _fmt_buf(m, v, args[i + 1])
        return _fmt_buf(m, v, min(result, args[i + 1])) if result >= 0 else hex(v)
    if kind == "size":
        return str(v)
    if kind == "mode":
        return f"0{v:o}"
    if kind == "oflags":
        return _fmt_oflags(v)
    if kind in FLAG_KINDS:
        return _flags(FLAG_KINDS[kind], v)
    if kind in ENUM_KINDS:
        return ENUM_KINDS[kind].get(_signed(v), hex(v))
    if kind == "ostat":
        return _fmt_stat(m, v) if v and result == 0 else (hex(v) if v else "NULL")
    if kind == "ptr" or kind.startswith(("o", "i")):
        return hex(v) if v else "NULL"     # other struct pointers (in or out)
    return hex(v)


def format_call(m, row: Syscall, args, result: int | None = None) -> str:
    """`result` (when the call has returned) lets output arguments show what the call wrote."""
    out = [format_arg(m, kind, i, args, result) for i, kind in enumerate(row.kinds)]
    return f"{row.name}({', '.join(out)})"


from . import sys_files, sys_memory, sys_process, sys_signal, sys_time  # noqa: E402,F401  (registers their rows)
from . import sys_exec  # noqa: E402,F401  (fork, clone, execve, wait4)
