"""Load the object code the persistent store keeps without LLVM: a small linker for the x86-64
ELF relocatable objects jitbt's own LLVM emits.

A warm run that finds every module it needs in the store compiles nothing, yet loading the
objects through MCJIT meant importing llvmlite's LLVM library and setting up an engine first
(a warm static hello world took 112 ms with it, 89 ms without). This loader places an object's allocated sections in fresh pages, resolves
its symbols and applies its relocations, and then makes the code pages read-and-execute (never
writable and executable at once)::

    loader = ObjectLoader()
    symbols = loader.load(data)          # {global symbol name: host address}

The objects are what `create_target_machine(codemodel="jitdefault")` emits: the large code
model, so code and constants are reached through absolute 64-bit relocations (R_X86_64_64), and
.eh_frame uses R_X86_64_PC64. The 32-bit forms are applied too when their value fits. The only
symbols they leave undefined are compiler runtime routines (__udivti3 and friends for 128-bit
division), found in the process or in libgcc_s. Anything else (another relocation type, common
symbols, a malformed file) raises ObjectLoadError before any code is entered, and the caller
loads that object through MCJIT instead (translator/codegen.py).

Loaded code is never unloaded (nor is MCJIT's): translations live as long as the process.
"""
from __future__ import annotations

import array
import ctypes
import mmap
import struct

PAGE = mmap.PAGESIZE

SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 2, 4, 8, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_TLS = 1, 2, 4, 0x400
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_COMMON = 0, 0xFF00, 0xFFF1, 0xFFF2
STB_LOCAL = 0
R_X86_64_NONE, R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32 = 0, 1, 2, 4
R_X86_64_32, R_X86_64_32S, R_X86_64_PC64 = 10, 11, 24

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                  ctypes.c_long)
_mprotect = _libc.mprotect
_mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_munmap = _libc.munmap
_munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_MAP_FAILED = ctypes.c_void_p(-1).value
_U64 = struct.Struct("<Q")


class ObjectLoadError(Exception):
    """The object cannot be loaded by this loader (unsupported or malformed)."""


def _process_symbol(name: str) -> int | None:
    """The address of a routine the process has (libc) or libgcc_s has, else None."""
    for lib in _libraries():
        try:
            return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        except AttributeError:
            continue
    return None


_LIBS: list = []


def _libraries() -> list:
    if not _LIBS:
        _LIBS.append(_libc)
        try:
            _LIBS.append(ctypes.CDLL("libgcc_s.so.1"))
        except OSError:
            pass
    return _LIBS


_RELOCATE: list = []


def _native_relocate():
    """native.c's jb_relocate, or None without the helper library (translator/native.py)."""
    if not _RELOCATE:
        from . import native
        lib = native.library()
        f = None
        if lib is not None:
            f = lib.jb_relocate
            f.restype = ctypes.c_long
            f.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
                          ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t,
                          ctypes.c_uint64)
        _RELOCATE.append(f)
    return _RELOCATE[0]


def _align(n: int, a: int) -> int:
    return (n + a - 1) & -a if a > 1 else n


class ObjectLoader:
    def __init__(self, native: bool = True):
        self.native = native                  # relocate with native.c's jb_relocate if built
        self.symbols: dict[str, int] = {}     # global symbols of every object loaded so far
        self.mappings: list[tuple[int, int]] = []
        self.loaded = 0

    def load(self, data: bytes) -> dict[str, int]:
        """Load one object; its global symbols and their host addresses."""
        try:
            return self._load(memoryview(data))
        except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
            raise ObjectLoadError(f"malformed object: {e}") from None

    def _load(self, data: memoryview) -> dict[str, int]:
        sections, offsets, total, exec_end = self._layout(data)
        base = _mmap(None, total, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if base in (None, _MAP_FAILED):
            raise MemoryError(f"mmap of {total} bytes for object code failed")
        try:
            image, exported = self._image(data, sections, offsets, base, total)
            ctypes.memmove(base, bytes(image), total)
            if exec_end and _mprotect(base, _align(exec_end, PAGE),
                                      mmap.PROT_READ | mmap.PROT_EXEC) != 0:
                raise OSError(ctypes.get_errno(), "mprotect of object code failed")
        except BaseException:
            _munmap(base, total)           # (nothing of it was entered)
            raise
        self.mappings.append((base, total))
        self.symbols.update(exported)
        self.loaded += 1
        return exported

    def image(self, data: bytes, base: int) -> tuple[bytearray, dict[str, int]]:
        """The object's pages as they would be loaded at host address `base`, and its global
        symbols, without mapping or entering anything (for tests)."""
        try:
            sections, offsets, total, _ = self._layout(memoryview(data))
            return self._image(memoryview(data), sections, offsets, base, total)
        except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
            raise ObjectLoadError(f"malformed object: {e}") from None

    def _image(self, data, sections, offsets, base: int, total: int):
        image = bytearray(total)
        for i, off in offsets.items():
            s = sections[i]
            if s[1] != SHT_NOBITS:
                image[off:off + s[5]] = data[s[4]:s[4] + s[5]]
        return image, self._link(data, sections, offsets, base, image)

    def _layout(self, data: memoryview):
        """(sections, their offsets in the image, the image's size, where its executable
        part ends) of an object, checked."""
        if bytes(data[:4]) != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ObjectLoadError("not a 64-bit little-endian ELF file")
        e_type, e_machine = struct.unpack_from("<HH", data, 16)
        if e_type != 1 or e_machine != 62:
            raise ObjectLoadError("not an x86-64 relocatable object")
        e_shoff, = struct.unpack_from("<Q", data, 40)
        e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 58)
        if e_shentsize != 64 or e_shnum == 0:
            raise ObjectLoadError("unexpected section header table")
        # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + 64 * i)
                    for i in range(e_shnum)]
        for s in sections:
            if s[1] != SHT_NOBITS and s[4] + s[5] > len(data):
                raise ObjectLoadError("a section lies outside the file")
            if s[2] & SHF_ALLOC and s[2] & SHF_TLS:
                raise ObjectLoadError("thread-local data")

        # Lay out the allocated sections: code and read-only data, then (from a fresh page)
        # writable data.
        offsets: dict[int, int] = {}
        size = 0
        for writable in (False, True):
            if writable:
                size = _align(size, PAGE)
            ro_end = size
            for i, s in enumerate(sections):
                if s[2] & SHF_ALLOC and bool(s[2] & SHF_WRITE) == writable and s[5]:
                    size = _align(size, max(1, s[8]))
                    if s[8] > PAGE:
                        raise ObjectLoadError("section alignment above a page")
                    offsets[i] = size
                    size += s[5]
        exec_end = ro_end if any(sections[i][2] & SHF_WRITE for i in offsets) else size
        return sections, offsets, _align(max(size, 1), PAGE), exec_end

    def _link(self, data, sections, offsets, base: int, image: bytearray) -> dict[str, int]:
        """Resolve the symbols and apply the relocations into `image` (to be placed at
        `base`); the global symbols it defines."""
        symtabs = [i for i, s in enumerate(sections) if s[1] == SHT_SYMTAB]
        if len(symtabs) != 1:
            raise ObjectLoadError("expected one symbol table")
        symtab = sections[symtabs[0]]
        strtab = sections[symtab[6]]
        names = bytes(data[strtab[4]:strtab[4] + strtab[5]])

        def name_at(offset: int) -> str:
            end = names.index(b"\0", offset)
            return names[offset:end].decode()

        values: list[int] = [0]
        exported: dict[str, int] = {}
        # (one iter_unpack over a table is several times faster than an unpack_from an entry:
        # the interpreter's handler library has some 10,000 symbols and relocations)
        symbols = struct.iter_unpack("<IBBHQQ", data[symtab[4]:symtab[4] + symtab[5] // 24 * 24])
        next(symbols, None)                 # (symbol 0 is the null symbol)
        add = values.append
        for st_name, st_info, _, st_shndx, st_value, _ in symbols:
            where = offsets.get(st_shndx)
            if where is not None:
                add(base + where + st_value)
                if st_info >> 4 != STB_LOCAL and st_name:
                    exported[name_at(st_name)] = values[-1]
            elif st_shndx == SHN_UNDEF:
                name = name_at(st_name)
                addr = self.symbols.get(name)
                if addr is None:
                    addr = _process_symbol(name)
                if addr is None:
                    # (an unreferenced undefined symbol would be harmless; none is expected)
                    raise ObjectLoadError(f"undefined symbol {name!r}")
                add(addr)
            elif st_shndx == SHN_ABS:
                add(st_value)
            elif st_shndx == SHN_COMMON or st_shndx >= SHN_LORESERVE:
                raise ObjectLoadError(f"symbol in special section {st_shndx:#x}")
            else:       # in a section not loaded (an empty or non-allocated one)
                add(0)
        relocate = _native_relocate() if self.native else None
        table = None
        if relocate is not None:
            try:
                table = array.array("Q", values)
            except OverflowError:       # (a symbol value past 64 bits: the Python path says)
                relocate = None
        for s in sections:
            if s[1] == SHT_REL:
                raise ObjectLoadError("REL relocations")
            if s[1] != SHT_RELA or s[7] not in offsets:
                continue
            if s[6] != symtabs[0]:
                raise ObjectLoadError("relocations against another symbol table")
            size = sections[s[7]][5]
            where = offsets[s[7]]
            rela = data[s[4]:s[4] + s[5] // 24 * 24]
            if relocate is not None:
                at = (ctypes.c_char * len(image)).from_buffer(image)
                # (on an error the Python path goes over the section again, to say which)
                if relocate(at, len(image), bytes(rela), len(rela) // 24,
                            table.buffer_info()[0], len(table), where, size, base) == 0:
                    continue
            self._relocate(rela, values, image, where, size, base)
            if relocate is not None:
                raise ObjectLoadError("relocations the native helper refused")
        return exported

    @staticmethod
    def _relocate(rela, values, image: bytearray, where: int, size: int, base: int) -> None:
        """The RELA entries `rela` of a section placed at image[where:where + size] (native.c's
        jb_relocate does the same in one call)."""
        pack64 = _U64.pack_into
        for r_offset, r_info, addend in struct.iter_unpack("<QQq", rela):
            kind = r_info & 0xFFFFFFFF
            value = values[r_info >> 32] + addend
            if kind == R_X86_64_64 and r_offset + 8 <= size:     # (almost all of them)
                pack64(image, where + r_offset, value & 0xFFFFFFFFFFFFFFFF)
                continue
            if r_offset + 8 > size and kind in (R_X86_64_64, R_X86_64_PC64) or \
                    r_offset + 4 > size:
                raise ObjectLoadError("relocation outside its section")
            at = where + r_offset
            place = base + at
            if kind == R_X86_64_PC64:
                pack64(image, at, (value - place) & 0xFFFFFFFFFFFFFFFF)
            elif kind in (R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32S):
                v = value - place if kind != R_X86_64_32S else value
                if not -(1 << 31) <= v < 1 << 31:
                    raise ObjectLoadError(f"relocation type {kind} out of range")
                struct.pack_into("<i", image, at, v)
            elif kind == R_X86_64_32:
                if not 0 <= value < 1 << 32:
                    raise ObjectLoadError("relocation type 10 out of range")
                struct.pack_into("<I", image, at, value)
            elif kind != R_X86_64_NONE:
                raise ObjectLoadError(f"relocation type {kind}")
