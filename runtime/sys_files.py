"""Syscalls on files and descriptors: open/close/dup/fcntl/pipe, stat, directories, paths, poll.

The host is x86-64 Linux too, so most rows are *passthrough* rows: the guest's arguments are
marshalled by their kinds (the same kinds --strace prints) and the host kernel does the work:
``fd``/``dirfd`` become host fds through the guest's descriptor table, ``path`` is copied out of
guest memory, ``buf`` is copied in, ``obuf``/``ostat``/... are host buffers copied back to the guest
after the call, numbers pass as they are. The struct layouts (stat, statx, linux_dirent64,
timespec) are the host's own, byte for byte. Calls that create or change descriptors are written
out, since the guest's fd numbers are not the host's::

    passthrough(83, "mkdir", "path mode")                 # one row, done by the host kernel

    @syscall(32, "dup", "fd")
    def sys_dup(m, fd): ...

A guest fd that is not open becomes host fd -1, so the host answers EBADF exactly where Linux
would (and ignores it beside an absolute path, as Linux does).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

from translator.state import PERM_W

from .memory import GuestFault
from .syscalls import syscall

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

AT_FDCWD = -100
PATH_MAX = 4096
BUF_CAP = 1 << 24                  # bytes moved by one call at most (a short count, as allowed)
O_CLOEXEC, O_NONBLOCK, O_DIRECT = 0o2000000, 0o4000, 0o40000
IOV_MAX = 1024


def _i32(v: int) -> int:
    """The C `int` the kernel sees in a 64-bit argument register."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def host_syscall(nr: int, *args) -> int:
    """Call the host kernel. ints pass as longs, bytes as pointers to their bytes, None as NULL,
    ctypes buffers by address. Failure raises OSError (the dispatcher returns -errno)."""
    conv = []
    for a in args:
        if a is None:
            conv.append(ctypes.c_void_p(0))
        elif isinstance(a, int):
            conv.append(ctypes.c_long(_s64(a & ((1 << 64) - 1))))
        elif isinstance(a, bytes):
            conv.append(ctypes.c_char_p(a))
        else:
            conv.append(a)
    r = _libc.syscall(ctypes.c_long(nr), *conv)
    if r == -1:
        raise _err(ctypes.get_errno())
    return r


def guest_path(m, addr: int) -> bytes | None:
    """A path argument: NULL stays NULL (the host answers EFAULT, or it means "the fd itself")."""
    if addr == 0:
        return None
    try:
        return m.mem.read_cstring(addr, PATH_MAX)
    except GuestFault as e:     # unreadable, or no NUL within PATH_MAX
        if e.address >= addr + PATH_MAX:
            raise _err(errno.ENAMETOOLONG) from None
        raise


def host_dirfd(m, v: int) -> int:
    fd = _i32(v)
    return AT_FDCWD if fd == AT_FDCWD else m.fds.host_or_invalid(fd)


# ---- passthrough rows --------------------------------------------------------------------------

IN_STRUCTS = {"itimes": 32}                                     # utimensat: struct timespec[2]
OUT_STRUCTS = {"ostat": 144, "ostatx": 256, "ostatfs": 120}     # x86-64 kernel layouts


def passthrough(nr: int, name: str, kinds: str, register: bool = True):
    """Declare a row the host kernel serves (same syscall number); returns its implementation."""
    kind_list = kinds.split()

    def impl(m, *args):
        host_args, outs = [], []
        for i, (kind, v) in enumerate(zip(kind_list, args)):
            if kind == "fd":
                host_args.append(m.fds.host_or_invalid(_i32(v)))
            elif kind == "dirfd":
                host_args.append(host_dirfd(m, v))
            elif kind == "path":
                host_args.append(guest_path(m, v))
            elif kind == "buf":
                host_args.append(m.mem.read(v, min(args[i + 1], BUF_CAP)))
            elif kind in ("obuf", "odirents"):
                n = min(args[i + 1], BUF_CAP)
                m.mem._check(v, n, PERM_W)
                buf = ctypes.create_string_buffer(max(n, 1))
                host_args.append(buf)
                outs.append((v, buf, None))
            elif kind == "size":
                host_args.append(min(v, BUF_CAP))
            elif kind in OUT_STRUCTS:
                buf = ctypes.create_string_buffer(OUT_STRUCTS[kind]) if v else None
                host_args.append(buf)
                if v:
                    outs.append((v, buf, OUT_STRUCTS[kind]))
            elif kind in IN_STRUCTS:
                size = IN_STRUCTS[kind]
                host_args.append(ctypes.create_string_buffer(m.mem.read(v, size), size)
                                 if v else None)
            else:
                host_args.append(v)
        r = host_syscall(nr, *host_args)
        for addr, buf, size in outs:
            m.mem.write(addr, buf.raw[:r if size is None else size])
        return r

    impl.__name__ = f"sys_{name}"
    if register:
        syscall(nr, name, kinds)(impl)
    return impl


for _row in (
        (4, "stat", "path ostat"), (5, "fstat", "fd ostat"), (6, "lstat", "path ostat"),
        (262, "newfstatat", "dirfd path ostat atflags"),
        (332, "statx", "dirfd path atflags hex ostatx"),
        (137, "statfs", "path ostatfs"), (138, "fstatfs", "fd ostatfs"),
        (8, "lseek", "fd off whence"),
        (17, "pread64", "fd obuf size off"), (18, "pwrite64", "fd buf size off"),
        (217, "getdents64", "fd odirents size"),
        (21, "access", "path int"), (269, "faccessat", "dirfd path int"),
        (439, "faccessat2", "dirfd path int atflags"),
        (87, "unlink", "path"), (263, "unlinkat", "dirfd path atflags"),
        (83, "mkdir", "path mode"), (258, "mkdirat", "dirfd path mode"),
        (84, "rmdir", "path"),
        (82, "rename", "path path"), (264, "renameat", "dirfd path dirfd path"),
        (316, "renameat2", "dirfd path dirfd path int"),
        (92, "chown", "path int int"), (93, "fchown", "fd int int"),
        (94, "lchown", "path int int"), (260, "fchownat", "dirfd path int int atflags"),
        (86, "link", "path path"), (265, "linkat", "dirfd path dirfd path atflags"),
        (88, "symlink", "path path"), (266, "symlinkat", "path dirfd path"),
        (80, "chdir", "path"), (81, "fchdir", "fd"), (79, "getcwd", "obuf size"),
        (95, "umask", "mode"),
        (76, "truncate", "path off"), (77, "ftruncate", "fd off"),
        (74, "fsync", "fd"), (75, "fdatasync", "fd"),
        (280, "utimensat", "dirfd path itimes atflags"),
        (90, "chmod", "path mode"), (91, "fchmod", "fd mode"),
        (268, "fchmodat", "dirfd path mode"),
):
    passthrough(*_row)

_readlink = passthrough(89, "readlink", "path obuf size", register=False)
_readlinkat = passthrough(267, "readlinkat", "dirfd path obuf size", register=False)


def _exe_link(m, path: bytes | None) -> bytes | None:
    """/proc/self/exe names the guest program, not jitbt's Python."""
    if path in (b"/proc/self/exe", b"/proc/thread-self/exe", f"/proc/{os.getpid()}/exe".encode()):
        return os.fsencode(os.path.abspath(m.image.path))
    return None


def _readlink_exe(m, path_addr: int, buf: int, size: int):
    target = _exe_link(m, guest_path(m, path_addr))
    if target is None:
        return None
    if _s64(size) <= 0:
        raise _err(errno.EINVAL)
    data = target[:size]
    m.mem.write(buf, data)
    return len(data)


@syscall(89, "readlink", "path obuf size")
def sys_readlink(m, path, buf, size):
    r = _readlink_exe(m, path, buf, size)
    return _readlink(m, path, buf, size) if r is None else r


@syscall(267, "readlinkat", "dirfd path obuf size")
def sys_readlinkat(m, dirfd, path, buf, size):
    r = _readlink_exe(m, path, buf, size)
    return _readlinkat(m, dirfd, path, buf, size) if r is None else r


# ---- opening, closing, duplicating ------------------------------------------------------------

@syscall(257, "openat", "dirfd path oflags mode")
def sys_openat(m, dirfd, path, flags, mode):
    host = host_syscall(257, host_dirfd(m, dirfd), guest_path(m, path), (flags | O_CLOEXEC)
                        & 0xFFFFFFFF, mode)
    return m.fds.install(host, cloexec=bool(flags & O_CLOEXEC))


@syscall(2, "open", "path oflags mode")
def sys_open(m, path, flags, mode):
    return sys_openat(m, AT_FDCWD, path, flags, mode)


@syscall(85, "creat", "path mode")
def sys_creat(m, path, mode):
    return sys_openat(m, AT_FDCWD, path, 0o1101, mode)     # O_CREAT|O_WRONLY|O_TRUNC


@syscall(3, "close", "fd")
def sys_close(m, fd):
    m.fds.close(_i32(fd))
    return 0


@syscall(32, "dup", "fd")
def sys_dup(m, fd):
    return m.fds.install(os.dup(m.fds.host(_i32(fd))))


def _dup_to(m, old: int, new: int, cloexec: bool) -> int:
    host = os.dup(m.fds.host(old))
    return m.fds.install_at(new, host, cloexec)


@syscall(33, "dup2", "fd fd")
def sys_dup2(m, old, new):
    old, new = _i32(old), _i32(new)
    m.fds.host(old)                       # EBADF first, as Linux
    if old == new:
        return new
    return _dup_to(m, old, new, False)


@syscall(292, "dup3", "fd fd fdflags")
def sys_dup3(m, old, new, flags):
    old, new = _i32(old), _i32(new)
    if flags & ~O_CLOEXEC or old == new:
        raise _err(errno.EINVAL)
    m.fds.host(old)
    return _dup_to(m, old, new, bool(flags & O_CLOEXEC))


def _fcntl_dupfd(m, fd, arg, cloexec=False):
    if _s64(arg) < 0 or _s64(arg) >= m.fds.limit:
        raise _err(errno.EINVAL)
    return m.fds.install(os.dup(m.fds.host(fd)), cloexec=cloexec, lowest=arg)


def _fcntl_setfd(m, fd, arg):
    m.fds.entry(fd).cloexec = bool(arg & 1)
    return 0


FCNTL = {   # cmd -> (m, guest fd, arg) -> result
    0: _fcntl_dupfd,                                                     # F_DUPFD
    1030: lambda m, fd, arg: _fcntl_dupfd(m, fd, arg, cloexec=True),     # F_DUPFD_CLOEXEC
    1: lambda m, fd, arg: int(m.fds.entry(fd).cloexec),                  # F_GETFD: FD_CLOEXEC
    2: _fcntl_setfd,                                                     # F_SETFD
    3: lambda m, fd, arg: fcntl.fcntl(m.fds.host(fd), fcntl.F_GETFL),    # F_GETFL
    4: lambda m, fd, arg: fcntl.fcntl(m.fds.host(fd), fcntl.F_SETFL, _i32(arg)),   # F_SETFL
}


@syscall(72, "fcntl", "fd fcntlcmd hex")
def sys_fcntl(m, fd, cmd, arg):
    fd = _i32(fd)
    m.fds.host(fd)
    op = FCNTL.get(_i32(cmd))
    if op is None:
        raise _err(errno.EINVAL)
    return op(m, fd, arg)


def _set_cloexec(value: bool):
    def op(m, fd, arg):
        m.fds.entry(fd).cloexec = value
        return 0
    return op


def _ioctl_out(size: int):
    """An ioctl that fills a struct of `size` bytes: asked of the host on the host fd."""
    def op(m, fd, req, arg):
        buf = ctypes.create_string_buffer(size)
        host_syscall(16, m.fds.host(fd), req, buf)
        m.mem.write(arg, buf.raw)
        return 0
    return op


IOCTL = {
    0x5401: _ioctl_out(36),     # TCGETS: struct termios (kernel layout, 36 bytes)
    0x5413: _ioctl_out(8),      # TIOCGWINSZ: struct winsize
    0x541B: _ioctl_out(4),      # FIONREAD: int
    0x5451: lambda m, fd, req, arg: _set_cloexec(True)(m, fd, arg),    # FIOCLEX
    0x5450: lambda m, fd, req, arg: _set_cloexec(False)(m, fd, arg),   # FIONCLEX
}


@syscall(16, "ioctl", "fd ioctlcmd hex")
def sys_ioctl(m, fd, req, arg):
    fd = _i32(fd)
    m.fds.host(fd)
    op = IOCTL.get(req & 0xFFFFFFFF)
    if op is None:
        raise _err(errno.ENOTTY)
    return op(m, fd, req & 0xFFFFFFFF, arg)


@syscall(293, "pipe2", "ptr fdflags")
def sys_pipe2(m, fds, flags):
    if flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT):
        raise _err(errno.EINVAL)
    m.mem._check(fds, 8, PERM_W)
    r, w = os.pipe2((flags | O_CLOEXEC) & 0xFFFFFFFF)
    cloexec = bool(flags & O_CLOEXEC)
    try:
        gr = m.fds.install(r, cloexec)
    except OSError:
        os.close(w)
        raise
    try:
        gw = m.fds.install(w, cloexec)
    except OSError:
        m.fds.close(gr)
        raise
    m.mem.write(fds, struct.pack("<ii", gr, gw))
    return 0


@syscall(22, "pipe", "ptr")
def sys_pipe(m, fds):
    return sys_pipe2(m, fds, 0)


# ---- vectored and zero-copy I/O -----------------------------------------------------------------

def _iovecs(m, iov: int, count: int) -> list[tuple[int, int]]:
    count = _i32(count)
    if count < 0 or count > IOV_MAX:
        raise _err(errno.EINVAL)
    raw = m.mem.read(iov, 16 * count)
    vecs = [struct.unpack_from("<QQ", raw, 16 * i) for i in range(count)]
    if sum(n for _, n in vecs) >= 1 << 63:
        raise _err(errno.EINVAL)
    return vecs


def _gather(m, vecs) -> bytes:
    return b"".join(m.mem.read(base, min(n, BUF_CAP)) for base, n in vecs)


def _scatter_buffers(m, vecs) -> list[bytearray]:
    for base, n in vecs:
        m.mem._check(base, min(n, BUF_CAP), PERM_W)
    return [bytearray(min(n, BUF_CAP)) for _, n in vecs]


def _scatter(m, vecs, bufs, n: int) -> int:
    left = n
    for (base, _), b in zip(vecs, bufs):
        if left <= 0:
            break
        m.mem.write(base, bytes(b[:left]))
        left -= len(b)
    return n


@syscall(19, "readv", "fd ptr int")
def sys_readv(m, fd, iov, count):
    h = m.fds.host(_i32(fd))
    vecs = _iovecs(m, iov, count)
    bufs = _scatter_buffers(m, vecs)
    return _scatter(m, vecs, bufs, os.readv(h, bufs)) if vecs else 0


@syscall(20, "writev", "fd ptr int")
def sys_writev(m, fd, iov, count):
    h = m.fds.host(_i32(fd))
    vecs = _iovecs(m, iov, count)
    return os.write(h, _gather(m, vecs)) if vecs else 0


@syscall(295, "preadv", "fd ptr int off")
def sys_preadv(m, fd, iov, count, offset):
    h = m.fds.host(_i32(fd))
    vecs = _iovecs(m, iov, count)
    bufs = _scatter_buffers(m, vecs)
    return _scatter(m, vecs, bufs, os.preadv(h, bufs, _s64(offset))) if vecs else 0


@syscall(296, "pwritev", "fd ptr int off")
def sys_pwritev(m, fd, iov, count, offset):
    h = m.fds.host(_i32(fd))
    vecs = _iovecs(m, iov, count)
    return os.pwrite(h, _gather(m, vecs), _s64(offset)) if vecs else 0


@syscall(40, "sendfile", "fd fd ptr size")
def sys_sendfile(m, out_fd, in_fd, offset_ptr, count):
    out_h, in_h = m.fds.host(_i32(out_fd)), m.fds.host(_i32(in_fd))
    count = min(count, BUF_CAP)
    if not offset_ptr:
        return os.sendfile(out_h, in_h, None, count)
    offset = struct.unpack("<q", m.mem.read(offset_ptr, 8))[0]
    n = os.sendfile(out_h, in_h, offset, count)
    m.mem.write(offset_ptr, struct.pack("<q", offset + n))
    return n


# ---- waiting on descriptors ------------------------------------------------------------------------

POLLNVAL = 0x20


def _poll(m, fds: int, nfds: int, timeout_args: tuple) -> int:
    """poll/ppoll: guest pollfds translated to host fds; a guest fd that is not open reports
    POLLNVAL (and counts), a negative one is ignored, as Linux does."""
    if nfds > m.fds.limit:
        raise _err(errno.EINVAL)
    raw = bytearray(m.mem.read(fds, 8 * nfds))
    host = bytearray(raw)
    nval = set()
    for i in range(nfds):
        fd, = struct.unpack_from("<i", raw, 8 * i)
        h = -1 if fd < 0 else m.fds.get(fd)
        if h is None:
            nval.add(i)
            h = -1
        struct.pack_into("<i", host, 8 * i, h)
    m.mem._check(fds, 8 * nfds, PERM_W)
    buf = ctypes.create_string_buffer(bytes(host), max(len(host), 1))
    nr, rest = timeout_args
    if nval:                        # answered at once, like the kernel: do not wait
        rest = (0,) if nr == 7 else (ctypes.create_string_buffer(bytes(16), 16),) + rest[1:]
    r = host_syscall(nr, buf, nfds, *rest)
    out = buf.raw
    for i in range(nfds):
        revents = POLLNVAL if i in nval else struct.unpack_from("<h", out, 8 * i + 6)[0]
        struct.pack_into("<h", raw, 8 * i + 6, revents)
    m.mem.write(fds, bytes(raw))
    return r + len(nval)


@syscall(7, "poll", "ptr int int")
def sys_poll(m, fds, nfds, timeout):
    return _poll(m, fds, nfds & 0xFFFFFFFF, (7, (_i32(timeout),)))


@syscall(271, "ppoll", "ptr int its ptr size")
def sys_ppoll(m, fds, nfds, tsp, sigmask, sigsetsize):
    ts = ctypes.create_string_buffer(m.mem.read(tsp, 16), 16) if tsp else None
    r = _poll(m, fds, nfds & 0xFFFFFFFF, (271, (ts, None, 8)))
    if tsp:
        m.mem.write(tsp, ts.raw)
    return r


def _select(m, nfds, sets, timeout, host_nr, timeout_size, extra=()):
    """select/pselect6: fd_set bitmaps of guest fds mapped to host fds and back."""
    nfds = _i32(nfds)
    if nfds < 0:
        raise _err(errno.EINVAL)
    nfds = min(nfds, m.fds.limit)
    nbytes = (nfds + 63) // 64 * 8
    guest_sets = [m.mem.read(p, nbytes) if p else None for p in sets]
    wanted = [[fd for fd in range(nfds) if s[fd >> 3] >> (fd & 7) & 1] if s else []
              for s in guest_sets]
    hosts = {fd: m.fds.host(fd) for w in wanted for fd in w}     # EBADF for a closed one
    host_nfds = max(hosts.values(), default=-1) + 1
    hbytes = (host_nfds + 63) // 64 * 8
    host_sets = []
    for s, w in zip(guest_sets, wanted):
        if s is None:
            host_sets.append(None)
            continue
        b = bytearray(max(hbytes, 8))
        for fd in w:
            b[hosts[fd] >> 3] |= 1 << (hosts[fd] & 7)
        host_sets.append(ctypes.create_string_buffer(bytes(b), len(b)))
    tbuf = ctypes.create_string_buffer(m.mem.read(timeout, timeout_size), timeout_size) \
        if timeout else None
    r = host_syscall(host_nr, host_nfds, *host_sets, tbuf, *extra)
    for p, s, w, hs in zip(sets, guest_sets, wanted, host_sets):
        if s is None:
            continue
        out = bytearray(nbytes)
        for fd in w:
            if hs.raw[hosts[fd] >> 3] >> (hosts[fd] & 7) & 1:
                out[fd >> 3] |= 1 << (fd & 7)
        m.mem.write(p, bytes(out))
    if timeout:
        m.mem.write(timeout, tbuf.raw)
    return r


@syscall(23, "select", "int ptr ptr ptr ptr")
def sys_select(m, nfds, r, w, e, tv):
    return _select(m, nfds, (r, w, e), tv, 23, 16)


@syscall(270, "pselect6", "int ptr ptr ptr its ptr")
def sys_pselect6(m, nfds, r, w, e, ts, sig):
    return _select(m, nfds, (r, w, e), ts, 270, 16, (None,))   # no guest signals: mask unused
