"""Syscalls on the guest address space: mmap, munmap, mprotect, mremap, madvise (brk lives in
syscalls.py).

Mappings are pages of the one guest region (runtime.memory) with permission bits; a file mapping
is a private copy of the file's bytes read at mmap time (MAP_SHARED of a file is accepted
read-only: nobody else can write the pages back). Anonymous MAP_SHARED behaves as private, which
is exact while there is no fork. Placement is top-down with GuestMemory.find_free; a hint is
honoured when its range is free::

    addr = sys_mmap(m, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    sys_mprotect(m, addr, 4096, PROT_READ)
    sys_munmap(m, addr, 8192)
"""
from __future__ import annotations

import errno
import fcntl
import mmap as _mmap
import os

from translator.state import ADDRESS_LIMIT, PAGE_SHIFT, PAGE_SIZE

from .memory import page_ceil, prot_to_perm
from .syscalls import syscall

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE = 1, 2, 3
MAP_FIXED, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x10, 0x20, 0x100000
MAP_KNOWN = (0x3 | MAP_FIXED | MAP_ANONYMOUS | 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000
             | 0x10000 | 0x20000 | 0x40000 | MAP_FIXED_NOREPLACE)   # GROWSDOWN..HUGETLB, SYNC
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
MADV_DONTNEED = 4
MADV_KNOWN = {0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
              100, 101}


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _aligned(addr: int) -> bool:
    return addr & (PAGE_SIZE - 1) == 0


def _in_space(addr: int, size: int) -> bool:
    return PAGE_SIZE <= addr and addr + size <= ADDRESS_LIMIT


def _range_free(m, addr: int, size: int) -> bool:
    return not any(m.mem.perms[addr >> PAGE_SHIFT:(addr + size) >> PAGE_SHIFT])


def _place(m, hint: int, size: int) -> int:
    """Where a non-fixed mapping goes: the hint if that range is free, else top-down."""
    hint &= ~(PAGE_SIZE - 1)
    if hint and _in_space(hint, size) and _range_free(m, hint, size):
        return hint
    try:
        return m.mem.find_free(size)
    except MemoryError:
        raise _err(errno.ENOMEM) from None


@syscall(9, "mmap", "ptr size prot mflags fd off")
def sys_mmap(m, addr, length, prot, flags, fd, offset):
    flags &= 0xFFFFFFFF
    kind = flags & 3
    if length == 0 or not _aligned(offset) or kind == 0 or \
            (kind == MAP_SHARED_VALIDATE and flags & ~MAP_KNOWN):
        raise _err(errno.EINVAL)
    size = page_ceil(length)
    if size == 0 or size > ADDRESS_LIMIT:
        raise _err(errno.ENOMEM)
    data = b""
    if not flags & MAP_ANONYMOUS:
        host = m.fds.host(_i32(fd))
        if kind != MAP_PRIVATE and prot & PROT_WRITE:
            # A shared writable file mapping would need the pages written back to the file.
            m.report("mmap(MAP_SHARED, PROT_WRITE) of a file is not supported: -ENODEV")
            raise _err(errno.ENODEV)
        if fcntl.fcntl(host, fcntl.F_GETFL) & 3 == os.O_WRONLY:
            raise _err(errno.EACCES)
        data = os.pread(host, size, offset)      # EISDIR, ESPIPE... come from the host
    fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)
    if fixed:
        if not _aligned(addr):
            raise _err(errno.EINVAL)
        if not _in_space(addr, size):
            raise _err(errno.ENOMEM if flags & MAP_FIXED else errno.EEXIST)
        if flags & MAP_FIXED_NOREPLACE and not flags & MAP_FIXED and \
                not _range_free(m, addr, size):
            raise _err(errno.EEXIST)
        start = addr
    else:
        start = _place(m, addr, size)
    m.mem.map(start, size, prot_to_perm(prot & 7))
    if data:
        m.mem.view[start:start + len(data)] = data
    return start


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


@syscall(11, "munmap", "ptr size")
def sys_munmap(m, addr, length):
    size = page_ceil(length)
    if not _aligned(addr) or length == 0 or not _in_space(addr, size):
        raise _err(errno.EINVAL)
    m.mem.unmap(addr, size)
    return 0


def _mapped_range(m, addr: int, length: int) -> int:
    """The page-rounded size of [addr, addr+length), which must lie in mapped memory (ENOMEM
    otherwise, as for mprotect and madvise); 0 for an empty range."""
    size = page_ceil(length)
    if size and (not _in_space(addr, size) or not m.mem.is_mapped(addr, size)):
        raise _err(errno.ENOMEM)
    return size


@syscall(10, "mprotect", "ptr size prot")
def sys_mprotect(m, addr, length, prot):
    if not _aligned(addr) or prot & ~0x7 & ~0x03000000:     # PROT_GROWSDOWN/UP accepted
        raise _err(errno.EINVAL)
    size = _mapped_range(m, addr, length)
    if size == 0:
        return 0
    m.mem.protect(addr, size, prot_to_perm(prot & 7))
    return 0


@syscall(25, "mremap", "ptr size size hex ptr")
def sys_mremap(m, old, old_len, new_len, flags, new_addr):
    old_size, new_size = page_ceil(old_len), page_ceil(new_len)
    if not _aligned(old) or flags & ~7 or new_size == 0 or \
            (flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE):
        raise _err(errno.EINVAL)
    if old_size == 0 or flags & 4:
        # old_len 0 duplicates a shared mapping; MREMAP_DONTUNMAP keeps the old range: neither
        # is modelled here.
        raise _err(errno.EINVAL)
    if not _in_space(old, old_size) or not m.mem.is_mapped(old, old_size):
        raise _err(errno.EFAULT)
    mem = m.mem
    if flags & MREMAP_FIXED:
        if not _aligned(new_addr) or not _in_space(new_addr, new_size) or \
                (new_addr < old + old_size and old < new_addr + new_size):
            raise _err(errno.EINVAL)
        return _move(m, old, old_size, new_addr, new_size)
    if new_size <= old_size:
        if new_size < old_size:
            mem.unmap(old + new_size, old_size - new_size)
        return old
    grow = new_size - old_size
    if _in_space(old + old_size, grow) and _range_free(m, old + old_size, grow):
        mem.map(old + old_size, grow, mem.real_perm((old + old_size - 1) >> PAGE_SHIFT))
        return old
    if not flags & MREMAP_MAYMOVE:
        raise _err(errno.ENOMEM)
    try:
        dest = mem.find_free(new_size)
    except MemoryError:
        raise _err(errno.ENOMEM) from None
    return _move(m, old, old_size, dest, new_size)


def _move(m, old: int, old_size: int, dest: int, new_size: int) -> int:
    """Move pages (contents and permissions) to dest; the tail of a grown mapping takes the
    permissions of the last old page."""
    mem = m.mem
    keep = min(old_size, new_size)
    data = bytes(mem.view[old:old + keep])
    perms = bytes(mem.real_perm(p) for p in range(old >> PAGE_SHIFT, (old + keep) >> PAGE_SHIFT))
    mem.unmap(old, old_size)
    mem.map(dest, new_size, perms[-1])
    mem.view[dest:dest + keep] = data
    mem.perms[dest >> PAGE_SHIFT:(dest + keep) >> PAGE_SHIFT] = perms
    return dest


@syscall(28, "madvise", "ptr size madv")
def sys_madvise(m, addr, length, advice):
    advice = _i32(advice)
    if not _aligned(addr) or advice not in MADV_KNOWN:
        raise _err(errno.EINVAL)
    size = _mapped_range(m, addr, length)
    if size == 0:
        return 0
    if advice == MADV_DONTNEED:
        # Anonymous private pages read back as zeros. (A private file mapping would re-read the
        # file; mappings are not tracked by origin, so those pages read zeros too.)
        m.mem.region.madvise(_mmap.MADV_DONTNEED, addr, size)
        if m.mem.on_unmap:
            m.mem.on_unmap(addr, addr + size)
    return 0


@syscall(26, "msync", "ptr size hex")
def sys_msync(m, addr, length, flags):
    if not _aligned(addr) or flags & ~7 or (flags & 1 and flags & 4):
        raise _err(errno.EINVAL)
    size = page_ceil(length)
    if size and (not _in_space(addr, size) or not m.mem.is_mapped(addr, size)):
        raise _err(errno.ENOMEM)
    return 0

