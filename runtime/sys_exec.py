"""Processes: fork, vfork, clone (without shared memory), execve and wait4.

jitbt is an ordinary host process, so a guest fork is a fork of jitbt itself: the child inherits
guest memory (a private mapping, copied on write), the CPU state, the translations and the
descriptor table, and returns 0 from the syscall. execve replaces the process with a new jitbt
that runs the new program, so a child the guest starts never runs natively. Before it, the host
descriptors are laid out as the guest's (guest fd N becomes host fd N; close-on-exec ones are
closed), the environment given is the guest's, and `#!` scripts go to their interpreter, as the
kernel does::

    @syscall(57, "fork", "")
    def sys_fork(m): ...            # -> child pid in the parent, 0 in the child

Threads (clone with CLONE_VM and without CLONE_VFORK, or CLONE_THREAD) are not supported: -ENOSYS,
reported once. vfork and clone(CLONE_VM | CLONE_VFORK) (posix_spawn) run as fork: the parent does
not wait for the child to exec, and the child's stores are not seen by the parent, which the
programs that use them for spawning do not rely on.
"""
from __future__ import annotations

import errno
import os
import struct
import sys

from .memory import GuestFault
from .signals import committing, state
from .syscalls import syscall

SIGCHLD = 17
WALL, WNOTHREAD = 0x40000000, 0x20000000
CLONE_VM, CLONE_VFORK, CLONE_THREAD = 0x100, 0x4000, 0x10000
CLONE_SETTLS, CLONE_PARENT_SETTID = 0x80000, 0x100000
CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID = 0x200000, 0x1000000
ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_reported: set[str] = set()
MAX_ARGS = 1 << 16
MAX_INTERPRETER_DEPTH = 4


def _fork(m, flags: int = SIGCHLD, stack: int = 0, ptid: int = 0, ctid: int = 0, tls: int = 0):
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        if flags & CLONE_CHILD_SETTID and ctid:
            m.mem.write(ctid, struct.pack("<i", os.getpid()))
        if flags & CLONE_SETTLS:
            m.state.fs_base = tls
        if stack:
            m.state.gpr[4] = stack
        m.unimplemented.clear()
        state(m).pending.clear()        # pending signals are not inherited (fork(2))
        return 0
    if flags & CLONE_PARENT_SETTID and ptid:
        try:
            m.mem.write(ptid, struct.pack("<i", pid))
        except GuestFault:
            pass
    return pid


@syscall(57, "fork", "")
def sys_fork(m):
    return _fork(m)


@syscall(58, "vfork", "")
def sys_vfork(m):
    return _fork(m)


@syscall(56, "clone", "hex ptr ptr ptr hex")
def sys_clone(m, flags, stack, ptid, ctid, tls):
    if flags & CLONE_THREAD or (flags & CLONE_VM and not flags & CLONE_VFORK):
        if "threads" not in _reported:
            _reported.add("threads")
            m.report("threads (clone with shared memory) are not supported; returning -ENOSYS")
        return -errno.ENOSYS
    return _fork(m, flags, stack, ptid, ctid, tls)


# ---- wait ---------------------------------------------------------------------------------

def _int(v: int) -> int:
    """The C int in the low half of an argument register."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _rusage_bytes(ru) -> bytes:
    def tv(seconds: float) -> tuple[int, int]:
        return int(seconds), int((seconds - int(seconds)) * 1_000_000)
    fields = [ru.ru_maxrss, ru.ru_ixrss, ru.ru_idrss, ru.ru_isrss, ru.ru_minflt, ru.ru_majflt,
              ru.ru_nswap, ru.ru_inblock, ru.ru_oublock, ru.ru_msgsnd, ru.ru_msgrcv,
              ru.ru_nsignals, ru.ru_nvcsw, ru.ru_nivcsw]
    return struct.pack("<4q14q", *tv(ru.ru_utime), *tv(ru.ru_stime), *fields)


@syscall(61, "wait4", "int ptr hex ptr")
def sys_wait4(m, pid, wstatus, options, rusage):
    pid, options = _int(pid), _int(options)                # both C ints (__WCLONE is bit 31)
    if not options & os.WNOHANG:
        # Wait without reaping (a signal may interrupt this: nothing is lost), then reap.
        idtype, ident = ((os.P_ALL, 0) if pid == -1 else (os.P_PGID, -pid) if pid < -1
                         else (os.P_PGID, os.getpgid(0)) if pid == 0 else (os.P_PID, pid))
        flags = os.WEXITED | os.WNOWAIT | (options & (WALL | WNOTHREAD))
        if options & os.WUNTRACED:
            flags |= os.WSTOPPED
        if options & os.WCONTINUED:
            flags |= os.WCONTINUED
        os.waitid(idtype, ident, flags)
    committing(m)
    pid, status, ru = os.wait4(pid, options | os.WNOHANG)
    if pid and wstatus:
        m.mem.write(wstatus, struct.pack("<i", status))
    if pid and rusage:
        m.mem.write(rusage, _rusage_bytes(ru))
    return pid


# ---- execve -------------------------------------------------------------------------------

def _strings(m, addr: int) -> list[bytes]:
    out = []
    while addr:
        p = m.mem.read_u64(addr + 8 * len(out))
        if not p:
            break
        out.append(m.mem.read_cstring(p))
        if len(out) > MAX_ARGS:
            raise OSError(errno.E2BIG, os.strerror(errno.E2BIG))
    return out


def resolve_program(path: bytes, argv: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Follow `#!` lines as the kernel does; returns the ELF to run and its argv. Raises OSError
    with the errno the kernel would give."""
    for _ in range(MAX_INTERPRETER_DEPTH):
        st = os.stat(path)                      # ENOENT, ENOTDIR, EACCES...
        if not os.access(path, os.X_OK) or not (st.st_mode & 0o170000 == 0o100000):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        with open(path, "rb") as f:
            head = f.read(256)
        if head.startswith(b"\x7fELF"):
            return path, argv
        if not head.startswith(b"#!"):
            raise OSError(errno.ENOEXEC, os.strerror(errno.ENOEXEC))
        line = head[2:].split(b"\n", 1)[0].strip()
        interp, _, arg = line.partition(b" ")
        argv = [interp] + ([arg.strip()] if arg.strip() else []) + [path] + argv[1:]
        path = interp
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))


def _layout_descriptors(m) -> None:
    """Make host fd N the guest's fd N for every descriptor that survives exec; close the rest."""
    keep = {fd: e.host for fd, e in m.fds.entries.items() if not e.cloexec}
    parked = {fd: os.dup(host) for fd, host in keep.items()}     # out of the way of each other
    for fd in (0, 1, 2):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd, tmp in parked.items():
        os.dup2(tmp, fd, inheritable=True)
        os.close(tmp)


def exec_flags(options) -> list[str]:
    """The jitbt options a program started by execve runs with: the same as its parent's."""
    from translator.knobs import KNOBS
    k = options.knobs
    flags = ["--accuracy", k.level] + [f"--set={n}={k.shown(n)}" for n in KNOBS]
    if not options.cache:
        flags.append("--no-cache")
    if options.strace:
        flags.append("--strace")
    if options.strict:
        flags.append("--strict")
    return flags


BOOT = ("import sys; sys.path.insert(0, {root!r}); from runtime.cli import main; "
        "sys.exit(main())")


@syscall(59, "execve", "str ptr ptr")
def sys_execve(m, path_addr, argv_addr, envp_addr):
    path = m.mem.read_cstring(path_addr)
    if path in (b"/proc/self/exe", f"/proc/{os.getpid()}/exe".encode()):
        path = os.fsencode(os.path.abspath(m.image.path))    # the guest's program, not Python
    argv = _strings(m, argv_addr)
    envp = _strings(m, envp_addr)
    program, argv = resolve_program(path, argv or [path])
    from .loader import check_elf
    problem = check_elf(os.fsdecode(program))
    if problem:
        m.report(f"execve {os.fsdecode(program)}: {problem}")
        return -errno.ENOEXEC
    env = {}
    for item in envp:
        key, sep, value = item.partition(b"=")
        if sep and key not in env:
            env[key] = value
    options = exec_flags(m.options)
    cmd = [sys.executable, "-I", "-c", BOOT.format(root=str(ROOT)), "run", *options,
           "--argv0", os.fsdecode(argv[0]) if argv else "", "--", os.fsdecode(program),
           *map(os.fsdecode, argv[1:])]
    sys.stdout.flush()
    sys.stderr.flush()
    if m.strace:
        m.strace_line(f"execve({os.fsdecode(program)!r}, {[os.fsdecode(a) for a in argv]}) = 0")
    _layout_descriptors(m)
    m.translator.close()        # (keeps what this process translated for later runs)
    os.execve(sys.executable, cmd, env)
