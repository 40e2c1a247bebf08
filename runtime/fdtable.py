"""The guest's file descriptor table: guest fd numbers, each standing for one host fd.

Guest fds are allocated lowest-free, as the kernel does, and reach only host fds the guest itself
opened (plus the three standard streams it inherited). Each guest fd owns its host fd (``dup``
duplicates the host fd too), except the inherited 0, 1 and 2: closing those drops the guest's
entry but leaves jitbt's own stdin, stdout and stderr open, so jitbt can still report::

    fds = FdTable()                       # 0, 1, 2 -> host 0, 1, 2
    fd = fds.install(os.open("f", os.O_RDONLY), cloexec=True)   # -> 3
    fds.host(fd)                          # the host fd; OSError(EBADF) for a closed guest fd
    fds.close(fd)
"""
from __future__ import annotations

import errno
import os
import resource
from translator.plain import dataclass


def _host_nofile() -> int:
    """The guest starts with jitbt's own RLIMIT_NOFILE soft limit, as a child would inherit it."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _ebadf() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


@dataclass
class Entry:
    host: int
    cloexec: bool = False
    owned: bool = True        # False: an inherited stream jitbt keeps open when the guest closes it


class FdTable:
    def __init__(self, inherited=(0, 1, 2), limit: int | None = None):
        self.entries: dict[int, Entry] = {fd: Entry(fd, owned=False) for fd in inherited}
        self.limit = limit if limit is not None else _host_nofile()

    # ---- lookups -----------------------------------------------------------------------------
    def get(self, fd: int) -> int | None:
        """The host fd behind guest fd `fd`, or None."""
        e = self.entries.get(fd)
        return e.host if e else None

    def entry(self, fd: int) -> Entry:
        e = self.entries.get(fd)
        if e is None:
            raise _ebadf()
        return e

    def host(self, fd: int) -> int:
        return self.entry(fd).host

    def host_or_invalid(self, fd: int) -> int:
        """The host fd, or -1 (which makes the host kernel answer EBADF exactly where Linux
        would, e.g. not for a dirfd beside an absolute path)."""
        e = self.entries.get(fd)
        return e.host if e else -1

    def __contains__(self, fd: int) -> bool:
        return fd in self.entries

    # ---- allocation --------------------------------------------------------------------------
    def lowest_free(self, start: int = 0) -> int:
        fd = max(start, 0)
        while fd in self.entries:
            fd += 1
        return fd

    def install(self, host: int, cloexec: bool = False, lowest: int = 0) -> int:
        """Give host fd `host` the lowest free guest fd >= `lowest` (EMFILE past the limit; the
        host fd is closed then, so nothing leaks)."""
        fd = self.lowest_free(lowest)
        if fd >= self.limit:
            os.close(host)
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        self.entries[fd] = Entry(host, cloexec)
        return fd

    def install_at(self, fd: int, host: int, cloexec: bool = False) -> int:
        """dup2 semantics: guest fd `fd` silently closed first if open."""
        if fd < 0 or fd >= self.limit:
            os.close(host)
            raise _ebadf()
        old = self.entries.get(fd)
        self.entries[fd] = Entry(host, cloexec)
        if old is not None and old.owned:
            os.close(old.host)
        return fd

    def close(self, fd: int) -> None:
        e = self.entries.pop(fd, None)
        if e is None:
            raise _ebadf()
        if e.owned:
            os.close(e.host)
