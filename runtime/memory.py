"""The guest address space: one reserved host region and a page permission table.

Guest address ``a`` (0 <= a < ADDRESS_LIMIT) lives at host address ``base + a``. The region is
reserved with MAP_NORESERVE, so untouched pages cost nothing. Translated code checks every access
against ``perm`` (one byte a guest page: R, W, X and MAPPED bits) before it happens, so a guest
can never reach host memory outside its region::

    mem = GuestMemory()
    mem.map(0x400000, 0x2000, PERM_R | PERM_X)
    mem.write(0x400000, b"\\x90")
    mem.read(0x400000, 1)              # -> b"\\x90"
    mem.find_free(0x1000)               # -> a free guest range for mmap
"""
from __future__ import annotations

import ctypes
import mmap

from translator.state import ADDRESS_LIMIT, PAGE_SHIFT, PAGE_SIZE, PERM_R, PERM_W, PERM_X

MAP_NORESERVE = 0x4000          # Linux value; Python's mmap module does not export it
PERM_MAPPED = 0x80              # the page belongs to a mapping (even PROT_NONE)
MMAP_TOP = ADDRESS_LIMIT - (1 << 30)   # mmap areas are placed top-down below here (stack above)


class GuestFault(Exception):
    """A guest address the runtime itself tried to use is not accessible (syscalls: EFAULT)."""

    def __init__(self, address: int):
        super().__init__(f"guest address {address:#x} is not accessible")
        self.address = address


def page_floor(a: int) -> int:
    return a & ~(PAGE_SIZE - 1)


def page_ceil(a: int) -> int:
    return (a + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def prot_to_perm(prot: int) -> int:
    """PROT_* bits (1 read, 2 write, 4 exec) to page permission bits."""
    perm = PERM_MAPPED
    if prot & 1:
        perm |= PERM_R
    if prot & 2:
        perm |= PERM_W | PERM_R      # x86 pages are readable when writable
    if prot & 4:
        perm |= PERM_X | PERM_R      # and when executable
    return perm


class GuestMemory:
    def __init__(self):
        self.region = mmap.mmap(-1, ADDRESS_LIMIT, flags=mmap.MAP_PRIVATE | MAP_NORESERVE,
                                prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.perm_table = mmap.mmap(-1, ADDRESS_LIMIT >> PAGE_SHIFT,
                                    flags=mmap.MAP_PRIVATE | MAP_NORESERVE,
                                    prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.region))
        self.perm_base = ctypes.addressof(ctypes.c_char.from_buffer(self.perm_table))
        self.view = memoryview(self.region)
        self.perms = memoryview(self.perm_table)
        self.on_unmap = None       # callback(start, end): translations there are stale
        # Self-modifying code (knob smc=page): pages holding translated code have their W bit
        # cleared in the table, so a store from translated code faults into the runtime, which
        # drops the translations and gives the page back its W (``code_written``). The value
        # says whether the guest may really write the page.
        self.code_pages: dict[int, bool] = {}

    # ---- mappings --------------------------------------------------------------------------
    def map(self, addr: int, size: int, perm: int) -> None:
        """Map [addr, addr+size) (page-rounded) with permission bits; contents are zero."""
        start, end = page_floor(addr), page_ceil(addr + size)
        self._check_range(start, end)
        self.region.madvise(mmap.MADV_DONTNEED, start, end - start)
        self.perms[start >> PAGE_SHIFT:end >> PAGE_SHIFT] = bytes([perm | PERM_MAPPED]) * (
            (end - start) >> PAGE_SHIFT)
        self._forget_code(start, end)
        if self.on_unmap:
            self.on_unmap(start, end)

    def protect(self, addr: int, size: int, perm: int) -> None:
        start, end = page_floor(addr), page_ceil(addr + size)
        self._check_range(start, end)
        self.perms[start >> PAGE_SHIFT:end >> PAGE_SHIFT] = bytes([perm | PERM_MAPPED]) * (
            (end - start) >> PAGE_SHIFT)
        if not perm & PERM_X:
            self._forget_code(start, end)
            if self.on_unmap:
                self.on_unmap(start, end)
        else:                       # translations stay: their pages stay write-protected
            for page in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
                if page in self.code_pages:
                    self.code_pages[page] = bool(perm & PERM_W)
                    self.perms[page] = (perm | PERM_MAPPED) & ~PERM_W

    def unmap(self, addr: int, size: int) -> None:
        start, end = page_floor(addr), page_ceil(addr + size)
        self._check_range(start, end)
        self.perms[start >> PAGE_SHIFT:end >> PAGE_SHIFT] = bytes((end - start) >> PAGE_SHIFT)
        self.region.madvise(mmap.MADV_DONTNEED, start, end - start)
        self._forget_code(start, end)
        if self.on_unmap:
            self.on_unmap(start, end)

    # ---- self-modifying code ---------------------------------------------------------------
    def protect_code(self, pages) -> None:
        """Write-protect pages that now hold translated code (knob smc=page)."""
        for page in pages:
            if page not in self.code_pages:
                perm = self.perms[page]
                self.code_pages[page] = bool(perm & PERM_W)
                self.perms[page] = perm & ~PERM_W

    def real_perm(self, page: int) -> int:
        """The permissions the guest gave a page (W included when jitbt took it away)."""
        return self.perms[page] | (PERM_W if self.code_pages.get(page) else 0)

    def code_written(self, addr: int, size: int) -> list[int]:
        """A write to [addr, addr+size) that the guest may make hits write-protected code:
        give those pages their W back and return them (their translations are stale)."""
        pages = [p for p in range(addr >> PAGE_SHIFT, ((addr + max(size, 1) - 1) >> PAGE_SHIFT) + 1)
                 if self.code_pages.get(p)]
        for page in pages:
            del self.code_pages[page]
            self.perms[page] |= PERM_W
        return pages

    def _forget_code(self, start: int, end: int) -> None:
        if self.code_pages:
            for page in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
                self.code_pages.pop(page, None)

    def _check_range(self, start: int, end: int) -> None:
        if start < PAGE_SIZE or end > ADDRESS_LIMIT or end < start:
            raise GuestFault(start)

    def is_mapped(self, addr: int, size: int = 1) -> bool:
        if size <= 0:
            return True
        if addr < 0 or addr + size > ADDRESS_LIMIT:
            return False
        p = self.perms[addr >> PAGE_SHIFT:((addr + size - 1) >> PAGE_SHIFT) + 1]
        return all(x & PERM_MAPPED for x in p)

    def find_free(self, size: int, top: int = MMAP_TOP) -> int:
        """The highest free page-aligned range of `size` bytes below `top` (mmap placement)."""
        npages = page_ceil(size) >> PAGE_SHIFT
        idx = self.perm_table.rfind(bytes(npages), 16, top >> PAGE_SHIFT)
        if idx < 0:
            raise MemoryError("guest address space exhausted")
        return idx << PAGE_SHIFT

    # ---- access from the runtime (syscalls, loader) -----------------------------------------
    def _check(self, addr: int, size: int, need: int) -> None:
        if size == 0:
            return
        if addr < 0 or addr + size > ADDRESS_LIMIT:
            raise GuestFault(addr)
        first, last = addr >> PAGE_SHIFT, (addr + size - 1) >> PAGE_SHIFT
        for page in range(first, last + 1):
            if not self.perms[page] & need:
                raise GuestFault(max(addr, page << PAGE_SHIFT))

    def read(self, addr: int, size: int) -> bytes:
        """Guest bytes the guest itself may read (raises GuestFault otherwise)."""
        self._check(addr, size, PERM_R)
        return bytes(self.view[addr:addr + size])

    def write(self, addr: int, data: bytes) -> None:
        """Store bytes where the guest itself may write (raises GuestFault otherwise)."""
        if self.code_pages and 0 <= addr < ADDRESS_LIMIT:
            pages = self.code_written(addr, len(data))
            if pages and self.on_unmap:         # the runtime writes over translated code
                for page in pages:
                    self.on_unmap(page << PAGE_SHIFT, (page + 1) << PAGE_SHIFT)
        self._check(addr, len(data), PERM_W)
        self.view[addr:addr + len(data)] = data

    def poke(self, addr: int, data: bytes) -> None:
        """Store bytes regardless of permissions (the loader filling read-only segments)."""
        self._check(addr, len(data), PERM_MAPPED)
        self.view[addr:addr + len(data)] = data

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def read_cstring(self, addr: int, limit: int = 1 << 20) -> bytes:
        out = bytearray()
        while len(out) < limit:
            chunk_end = min(page_floor(addr) + PAGE_SIZE, addr + (limit - len(out)))
            chunk = self.read(addr, chunk_end - addr)
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return bytes(out)
            out += chunk
            addr = chunk_end
        raise GuestFault(addr)

    def fetch(self, addr: int, size: int) -> bytes:
        """Up to `size` executable bytes at addr, stopping at the first non-executable page."""
        if addr < 0 or addr >= ADDRESS_LIMIT:
            return b""
        end = min(addr + size, ADDRESS_LIMIT)
        page = addr >> PAGE_SHIFT
        stop = addr
        while stop < end and self.perms[page] & PERM_X:
            page += 1
            stop = page << PAGE_SHIFT
        stop = min(stop, end)
        return bytes(self.view[addr:stop]) if stop > addr else b""
