"""Load a static x86-64 ELF (ET_EXEC or static-pie ET_DYN) into guest memory and build the
initial stack the kernel would: argc, argv, envp and the auxiliary vector::

    image = load_elf("prog", mem)
    sp = build_stack(mem, image, ["prog", "arg"], ["HOME=/root"])

Every problem with the file becomes a JitbtError naming what was found.
"""
from __future__ import annotations

import os
import struct
from translator.plain import dataclass

from translator.state import ADDRESS_LIMIT, PAGE_SIZE, PERM_R, PERM_W, PERM_X

from . import cpu
from .errors import JitbtError
from .memory import PERM_MAPPED, GuestMemory, page_ceil, page_floor

PIE_BASE = 0x555554000          # where a static-pie image is placed (ELF_ET_DYN_BASE's role)
STACK_TOP = ADDRESS_LIMIT - (1 << 28)
STACK_SIZE = 8 << 20

AT = dict(NULL=0, PHDR=3, PHENT=4, PHNUM=5, PAGESZ=6, BASE=7, FLAGS=8, ENTRY=9, UID=11, EUID=12,
          GID=13, EGID=14, PLATFORM=15, HWCAP=16, CLKTCK=17, SECURE=23, RANDOM=25, HWCAP2=26,
          EXECFN=31)


PT = {1: "PT_LOAD", 3: "PT_INTERP", 6: "PT_PHDR", 7: "PT_TLS", 0x6474E551: "PT_GNU_STACK"}
ET = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
EM = {3: "EM_386", 40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV"}


class ElfHeaders:
    """The ELF header and program headers of a file, which is all loading needs. (pyelftools,
    used for symbols, costs 20 ms of imports: a sixth of a warm start.) Raises ValueError for a
    file too short or inconsistent to hold them."""

    def __init__(self, f):
        ident = f.read(64)
        if len(ident) < 20 or ident[:4] != b"\x7fELF":
            raise ValueError("no ELF header")
        self.elfclass = {1: 32, 2: 64}.get(ident[4], 0)
        if ident[5] != 1:
            raise ValueError("not little-endian")
        etype, machine = struct.unpack_from("<HH", ident, 16)
        self.header = {"e_type": ET.get(etype, f"ET_{etype:#x}"),
                       "e_machine": EM.get(machine, f"machine {machine}")}
        self.segments: list[dict] = []
        if self.elfclass != 64:
            return
        if len(ident) < 64:
            raise ValueError("ELF header truncated")
        (entry, phoff, _, _, _, phentsize, phnum) = struct.unpack_from("<QQQIHHH", ident, 24)
        self.header.update(e_entry=entry, e_phoff=phoff, e_phentsize=phentsize, e_phnum=phnum)
        if phnum and phentsize < 56:
            raise ValueError(f"program header entries of {phentsize} bytes")
        f.seek(phoff)
        table = f.read(phnum * phentsize)
        if len(table) != phnum * phentsize:
            raise ValueError("program headers truncated")
        for i in range(phnum):
            ptype, flags, off, vaddr, _, filesz, memsz, align = struct.unpack_from(
                "<IIQQQQQQ", table, i * phentsize)
            self.segments.append(dict(p_type=PT.get(ptype, ptype), p_flags=flags,
                                      p_offset=off, p_vaddr=vaddr, p_filesz=filesz,
                                      p_memsz=memsz, p_align=align))

    def __getitem__(self, name):
        return self.header[name]

    def iter_segments(self):
        return iter(self.segments)


@dataclass
class Image:
    path: str
    entry: int
    load_bias: int
    phdr: int
    phent: int
    phnum: int
    brk: int            # first page-aligned address after the highest segment
    lowest: int
    tls: tuple | None   # (vaddr, filesz, memsz, align) of PT_TLS
    exec_stack: bool


def check_elf(path: str) -> str | None:
    """Why jitbt cannot run `path` (a one-line reason), or None when it is a static x86-64 ELF
    it can load. Reads the headers only."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return "not an ELF file"
            f.seek(0)
            elf = ElfHeaders(f)
            if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64":
                return "not an x86-64 (64-bit) ELF"
            if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
                return f"ELF type {elf['e_type']} is not an executable"
            if any(s["p_type"] == "PT_INTERP" for s in elf.iter_segments()):
                return "dynamically linked programs are not supported yet"
    except (OSError, struct.error, ValueError) as e:
        return f"cannot read it ({e})"
    return None


def load_elf(path: str, mem: GuestMemory) -> Image:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise JitbtError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise JitbtError(f"{path}: is a directory") from None
    except PermissionError:
        raise JitbtError(f"{path}: permission denied") from None
    with f:
        magic = f.read(4)
        if magic != b"\x7fELF":
            raise JitbtError(f"{path}: not an ELF file")
        f.seek(0)
        try:
            elf = ElfHeaders(f)
            return _load(path, f, elf, mem)
        except (struct.error, ValueError) as e:
            raise JitbtError(f"{path}: malformed ELF ({e})") from None


def _load(path, f, elf, mem) -> Image:
    if elf.elfclass != 64:
        raise JitbtError(f"{path}: 32-bit ELF; jitbt runs x86-64 (64-bit) programs only")
    if elf["e_machine"] != "EM_X86_64":
        raise JitbtError(f"{path}: ELF for {elf['e_machine']}, not x86-64")
    etype = elf["e_type"]
    if etype not in ("ET_EXEC", "ET_DYN"):
        raise JitbtError(f"{path}: ELF type {etype} is not an executable")
    segments = list(elf.iter_segments())
    if any(s["p_type"] == "PT_INTERP" for s in segments):
        raise JitbtError(f"{path}: dynamically linked (needs a program interpreter); jitbt runs "
                         f"static and static-pie programs only, for now")
    loads = [s for s in segments if s["p_type"] == "PT_LOAD"]
    if not loads:
        raise JitbtError(f"{path}: no loadable segments")
    bias = PIE_BASE if etype == "ET_DYN" else 0
    lowest = min(page_floor(s["p_vaddr"]) for s in loads) + bias
    highest = max(s["p_vaddr"] + s["p_memsz"] for s in loads) + bias
    if lowest < PAGE_SIZE or highest > STACK_TOP - STACK_SIZE:
        raise JitbtError(f"{path}: segments at {lowest:#x}..{highest:#x} lie outside the guest "
                         f"address space")
    file_size = os.fstat(f.fileno()).st_size
    for s in loads:
        vaddr, memsz, filesz, off = s["p_vaddr"] + bias, s["p_memsz"], s["p_filesz"], s["p_offset"]
        if filesz > memsz or off + filesz > file_size:
            raise JitbtError(f"{path}: segment at {vaddr:#x} extends past the end of the file")
        flags = s["p_flags"]
        perm = (PERM_R if flags & 4 else 0) | (PERM_W | PERM_R if flags & 2 else 0) | \
               (PERM_X | PERM_R if flags & 1 else 0)
        start, end = page_floor(vaddr), page_ceil(vaddr + memsz)
        # Segments may share a page: merge permissions of what is already there.
        for page in range(start, end, PAGE_SIZE):
            old = mem.perms[page >> 12]
            mem.perms[page >> 12] = old | perm | PERM_MAPPED
        f.seek(off)
        mem.poke(vaddr, f.read(filesz))
    phdr = 0
    for s in segments:
        if s["p_type"] == "PT_PHDR":
            phdr = s["p_vaddr"] + bias
    if not phdr:
        phoff = elf["e_phoff"]
        for s in loads:
            if s["p_offset"] <= phoff < s["p_offset"] + s["p_filesz"]:
                phdr = s["p_vaddr"] + bias + phoff - s["p_offset"]
    tls = None
    exec_stack = False
    for s in segments:
        if s["p_type"] == "PT_TLS":
            tls = (s["p_vaddr"] + bias, s["p_filesz"], s["p_memsz"], s["p_align"])
        if s["p_type"] == "PT_GNU_STACK":
            exec_stack = bool(s["p_flags"] & 1)
    return Image(path, elf["e_entry"] + bias, bias, phdr, elf["e_phentsize"], elf["e_phnum"],
                 page_ceil(highest), lowest, tls, exec_stack)


def build_stack(mem: GuestMemory, image: Image, argv: list[bytes], envp: list[bytes],
                execfn: bytes | None = None, random: bytes | None = None) -> int:
    """Map the stack and lay out argc/argv/envp/auxv as Linux does; returns the initial rsp."""
    perm = PERM_R | PERM_W | (PERM_X if image.exec_stack else 0)
    mem.map(STACK_TOP - STACK_SIZE, STACK_SIZE, perm)
    sp = STACK_TOP

    def push_bytes(data: bytes) -> int:
        nonlocal sp
        sp -= len(data)
        mem.write(sp, data)
        return sp

    execfn = execfn if execfn is not None else os.fsencode(image.path)
    push_bytes(b"\0" * 8)
    execfn_addr = push_bytes(execfn + b"\0")
    env_addrs = [push_bytes(e + b"\0") for e in reversed(envp)][::-1]
    arg_addrs = [push_bytes(a + b"\0") for a in reversed(argv)][::-1]
    platform = push_bytes(b"x86_64\0")
    sp &= ~15
    rand = push_bytes(random if random is not None else os.urandom(16))
    sp &= ~15
    auxv = [
        (AT["PHDR"], image.phdr), (AT["PHENT"], image.phent), (AT["PHNUM"], image.phnum),
        (AT["PAGESZ"], PAGE_SIZE), (AT["BASE"], 0), (AT["FLAGS"], 0), (AT["ENTRY"], image.entry),
        (AT["UID"], os.getuid()), (AT["EUID"], os.geteuid()), (AT["GID"], os.getgid()),
        (AT["EGID"], os.getegid()), (AT["SECURE"], 0), (AT["RANDOM"], rand),
        (AT["HWCAP"], cpu.HWCAP), (AT["HWCAP2"], 0), (AT["CLKTCK"], 100),
        (AT["EXECFN"], execfn_addr), (AT["PLATFORM"], platform), (AT["NULL"], 0),
    ]
    words = [len(argv)] + arg_addrs + [0] + env_addrs + [0]
    for k, v in auxv:
        words += [k, v]
    if len(words) % 2:
        sp -= 8      # keep rsp 16-byte aligned at entry, as the ABI requires
    sp -= 8 * len(words)
    mem.write(sp, struct.pack(f"<{len(words)}Q", *words))
    return sp
