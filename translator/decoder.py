"""Decode guest machine code with capstone and split it into basic blocks.

A block ends at a control transfer, at a sensitive instruction that must leave translated code
(the rewrite rules say which), at bytes that do not decode, or at a length limit::

    from translator.decoder import Decoder
    dec = Decoder()
    block = dec.decode_block(fetch, 0x401000)     # fetch(addr, n) -> bytes
    for insn in block.insns:
        print(hex(insn.address), insn.mnemonic, insn.op_str)

Instructions are turned into small plain records (``Insn`` and ``Operand``) so that the lifter never
touches capstone objects, and so that tests can build them directly.
"""
from __future__ import annotations

import ctypes
import os
import struct
import sys
from .plain import dataclass, field

from . import rewrite
from .state import GPR_NAMES

MAX_BLOCK_INSNS = 64
MAX_INSN_LEN = 15


# ---- capstone's C library, without its Python package ------------------------------------------
# Importing capstone's package costs a cold start about 20 ms (it loads every architecture's
# constants, ctypes.util, subprocess, inspect), and the decoder uses none of its Python
# objects: it opens the library the package ships and reads the C records at the offsets of
# capstone 5.0's structures, which `_mirror_layout` takes from the package's ctypes mirrors
# (tests/test_decoder.py checks that both agree; another capstone version uses the mirrors).
CS_ARCH_X86, CS_MODE_64, CS_OPT_DETAIL, CS_OPT_ON = 3, 8, 2, 3
CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_IRET = 1, 2, 3, 5
X86_OP_REG, X86_OP_IMM, X86_OP_MEM = 1, 2, 3
# cs_insn: size, address, size, bytes, mnemonic, op_str, detail; cs_detail: groups,
# groups_count, the arch union; cs_x86: prefix, op_count, operands; cs_x86_op: size, value,
# size field.
LAYOUT_5_0 = {"insn": (248, 8, 16, 18, 42, 74, 240), "detail": (83, 91, 96),
              "x86": (0, 64, 72), "op": (48, 8, 32)}


def _mirror_layout(capstone) -> dict:
    """The offsets the decoder reads, from the ctypes mirrors of capstone's Python package."""
    insn, detail, op, x86 = (capstone._cs_insn, capstone._cs_detail, capstone.x86.X86Op,
                             capstone.x86.CsX86)
    return {"insn": (ctypes.sizeof(insn), insn.address.offset, insn.size.offset,
                     insn.bytes.offset, insn.mnemonic.offset, insn.op_str.offset,
                     insn.detail.offset),
            "detail": (detail.groups.offset, detail.groups_count.offset, detail.arch.offset),
            "x86": (x86.prefix.offset, x86.op_count.offset, x86.operands.offset),
            "op": (ctypes.sizeof(op), op.value.offset, op.size.offset)}


def package_folder(name: str) -> str | None:
    """The folder of the installed package `name`, found without importing it or
    importlib.util (which imports contextlib and more: 2-4 ms of a start)."""
    for entry in sys.path:
        folder = os.path.join(entry or os.curdir, name)
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            return folder
    import importlib.util
    spec = importlib.util.find_spec(name)
    return list(spec.submodule_search_locations or [None])[0] if spec else None


def _open_library():
    """capstone's library (the one its package ships) and the layout of its records."""
    path = os.path.join(package_folder("capstone") or "", "lib", "libcapstone.so")
    if os.path.exists(path):
        lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_DEEPBIND", 0))
        lib.cs_version.restype = ctypes.c_int
        lib.cs_version.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
        if lib.cs_version(None, None) == 5 << 8:          # 5.0: (major << 8) | minor
            return lib, LAYOUT_5_0
    import capstone                # elsewhere, or another version: the package's own view
    return capstone._cs, _mirror_layout(capstone)


_lib, _LAYOUT = _open_library()
_lib.cs_open.restype = ctypes.c_int
_lib.cs_open.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t))
_lib.cs_option.restype = ctypes.c_int
_lib.cs_option.argtypes = (ctypes.c_size_t, ctypes.c_int, ctypes.c_size_t)
_lib.cs_reg_name.restype = ctypes.c_char_p
_lib.cs_reg_name.argtypes = (ctypes.c_size_t, ctypes.c_uint)
_HANDLE = ctypes.c_size_t()
if _lib.cs_open(CS_ARCH_X86, CS_MODE_64, ctypes.byref(_HANDLE)) \
        or _lib.cs_option(_HANDLE, CS_OPT_DETAIL, CS_OPT_ON):
    raise ImportError("capstone could not open an x86-64 decoder")
_HANDLE = _HANDLE.value


def reg_name(reg_id: int) -> str | None:
    """capstone's name of a register id (None for ids it has no register for)."""
    name = _lib.cs_reg_name(_HANDLE, reg_id)
    return name.decode() if name else None


_REG_IDS = {}                  # capstone's register name -> id
for _id in range(1, 1024):
    _name = reg_name(_id)
    if _name:
        _REG_IDS[_name] = _id

# capstone register id -> (gpr index, size in bytes, high-byte register?)
REGS: dict[int, tuple[int, int, bool]] = {}
RIP = _REG_IDS["rip"]
SEGS = {_REG_IDS["fs"]: "fs", _REG_IDS["gs"]: "gs", _REG_IDS["cs"]: None,
        _REG_IDS["ds"]: None, _REG_IDS["es"]: None, _REG_IDS["ss"]: None}


def _build_register_map() -> None:
    legacy = {"rax": ("eax", "ax", "al", "ah"), "rcx": ("ecx", "cx", "cl", "ch"),
              "rdx": ("edx", "dx", "dl", "dh"), "rbx": ("ebx", "bx", "bl", "bh"),
              "rsp": ("esp", "sp", "spl", None), "rbp": ("ebp", "bp", "bpl", None),
              "rsi": ("esi", "si", "sil", None), "rdi": ("edi", "di", "dil", None)}
    names = {}
    for idx, r64 in enumerate(GPR_NAMES):
        if r64 in legacy:
            r32, r16, r8, hi = legacy[r64]
        else:
            r32, r16, r8, hi = r64 + "d", r64 + "w", r64 + "b", None
        names[r64] = (idx, 8, False)
        names[r32] = (idx, 4, False)
        names[r16] = (idx, 2, False)
        names[r8] = (idx, 1, False)
        if hi:
            names[hi] = (idx, 1, True)
    for name, reg_id in _REG_IDS.items():
        if name in names:
            REGS[reg_id] = names[name]


_build_register_map()
XMMS = {_REG_IDS[f"xmm{i}"]: i for i in range(16)}
STS = {_REG_IDS[f"st({i})"]: i for i in range(8)}     # x87 stack registers st(i)
MMS = {_REG_IDS[f"mm{i}"]: i for i in range(8)}       # MMX registers mm0-mm7


@dataclass(slots=True, frozen=True)
class Operand:
    kind: str                 # "reg", "xmm", "mm", "st" (x87 st(i)), "imm" or "mem"
    size: int                 # bytes
    reg: int = 0              # gpr index (reg)
    high: bool = False        # ah/ch/dh/bh
    imm: int = 0              # immediate, as capstone gives it (sign-extended)
    base: int | None = None   # gpr index, or "rip"
    index: int | None = None
    scale: int = 1
    disp: int = 0
    seg: str | None = None    # "fs" / "gs" override

    def __str__(self) -> str:
        if self.kind == "reg":
            return f"r{self.reg}{'h' if self.high else ''}/{self.size}"
        if self.kind in ("xmm", "mm"):
            return f"{self.kind}{self.reg}"
        if self.kind == "imm":
            return hex(self.imm)
        return f"[{self.seg or ''}:{self.base}+{self.index}*{self.scale}+{self.disp:#x}]/{self.size}"


@dataclass(slots=True)
class Insn:
    address: int
    size: int
    raw: bytes
    mnemonic: str
    op_str: str
    ops: list[Operand]
    groups: tuple[int, ...] = ()
    rep: int = 0              # 0xf3 (rep/repe), 0xf2 (repne) or 0
    lock: bool = False
    invalid: bool = False     # bytes that do not decode
    bad_operands: bool = False  # an operand the translator cannot represent (xmm, zmm, ...)
    rule: object = None       # the rewrite rule for a sensitive instruction, or None

    @property
    def next(self) -> int:
        return self.address + self.size

    def describe(self) -> str:
        prefix = {0xF3: "rep ", 0xF2: "repne "}.get(self.rep, "") + ("lock " if self.lock else "")
        text = f"{prefix}{self.mnemonic} {self.op_str}".strip()
        return f"{self.address:#x}: {self.raw.hex(' ')}  {text}"

    @property
    def is_branch(self) -> bool:
        g = self.groups
        return CS_GRP_JUMP in g or CS_GRP_CALL in g or CS_GRP_RET in g or CS_GRP_IRET in g


PREFIX_WORDS = {"rep", "repe", "repz", "repne", "repnz", "lock", "bnd", "notrack", "xacquire",
                "xrelease"}


# Instructions are read straight from capstone's C records: the Python objects of its package
# copy every detail of every instruction, which cost decoding 25-40 microseconds an
# instruction, more than the rest of its work.
_lib.cs_malloc.restype = ctypes.c_void_p
_lib.cs_malloc.argtypes = (ctypes.c_size_t,)
_lib.cs_disasm_iter.restype = ctypes.c_bool
_lib.cs_disasm_iter.argtypes = (ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p),
                                ctypes.POINTER(ctypes.c_size_t),
                                ctypes.POINTER(ctypes.c_uint64), ctypes.c_void_p)
_INSN_SIZE, _ADDRESS, _SIZE, _BYTES, _MNEMONIC, _OP_STR, _DETAIL = _LAYOUT["insn"]
_GROUPS, _NGROUPS, _X86 = _LAYOUT["detail"]
_PREFIX, _NOPS, _OPS = (_X86 + at for at in _LAYOUT["x86"])
_OP_SIZE, _OP_VALUE, _OP_SIZE_FIELD = _LAYOUT["op"]
_DETAIL_BYTES = _OPS + 8 * _OP_SIZE
_OP_KEY = _OP_SIZE_FIELD + 1          # type, value and size: all an Operand is made of
_INSN_FIELDS = struct.Struct(f"<{_ADDRESS}xQH")       # address, size (adjacent in cs_insn)
_DETAIL_PTR = struct.Struct(f"<{_DETAIL}xQ")
_MEM = struct.Struct("<IIIiq")                    # segment, base, index, scale, disp
_I32, _I64 = struct.Struct("<I"), struct.Struct("<q")


_OPERANDS: dict[bytes, Operand] = {}     # an operand record's bytes -> its Operand (shared)


def _operand(d: bytes, at: int) -> Operand:
    """The Operand of the record at `at` of a detail; records decoded before are shared (an
    Operand is frozen): most operands are the same few registers and stack slots."""
    key = d[at:at + _OP_KEY]
    op = _OPERANDS.get(key)
    if op is None:
        if len(_OPERANDS) >= 1 << 16:
            _OPERANDS.clear()
        op = _OPERANDS[key] = _new_operand(d, at)
    return op


def _new_operand(d: bytes, at: int) -> Operand:
    kind = _I32.unpack_from(d, at)[0]
    value = at + _OP_VALUE
    size = d[at + _OP_SIZE_FIELD]
    if kind == X86_OP_REG:
        reg = _I32.unpack_from(d, value)[0]
        if reg in XMMS:
            return Operand("xmm", 16, reg=XMMS[reg])
        if reg in STS:
            return Operand("st", 10, reg=STS[reg])
        if reg in MMS:
            return Operand("mm", 8, reg=MMS[reg])
        if reg not in REGS:
            raise NotImplementedError(f"register {reg_name(reg)}")
        idx, size, high = REGS[reg]
        return Operand("reg", size, reg=idx, high=high)
    if kind == X86_OP_IMM:
        return Operand("imm", size, imm=_I64.unpack_from(d, value)[0])
    segment, base_reg, index_reg, scale, disp = _MEM.unpack_from(d, value)
    base = None
    if base_reg == RIP:
        base = "rip"
    elif base_reg:
        base = REGS[base_reg][0]
    index = REGS[index_reg][0] if index_reg else None
    seg = SEGS.get(segment) if segment else None
    return Operand("mem", size, base=base, index=index, scale=scale, disp=disp, seg=seg)


class _Stream:
    """Decodes instructions one at a time into one capstone record (cs_disasm_iter), read in
    place through views of its memory (copying the record and its detail out with two ctypes
    calls an instruction cost a fifth of decoding)."""

    def __init__(self):
        self.insn = _lib.cs_malloc(_HANDLE)
        if not self.insn:
            raise MemoryError("capstone could not allocate an instruction record")
        self.rec = memoryview((ctypes.c_char * _INSN_SIZE).from_address(self.insn)).cast("B")
        self.mnemonic = (ctypes.c_char * 32).from_address(self.insn + _MNEMONIC)
        self.op_str = (ctypes.c_char * 160).from_address(self.insn + _OP_STR)
        self.detail_at = self.detail = None
        self.ptr, self.left, self.pc = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_uint64()
        self.cursor = (ctypes.byref(self.ptr), ctypes.byref(self.left), ctypes.byref(self.pc))

    def _detail(self):
        """The view of the record's detail (capstone fills the one cs_malloc made: looked up
        again only should it ever move)."""
        at = _DETAIL_PTR.unpack_from(self.rec)[0]
        if at != self.detail_at:
            self.detail_at = at
            self.detail = memoryview((ctypes.c_char * _DETAIL_BYTES).from_address(at)).cast("B")
        return self.detail

    def decode(self, code: bytes, address: int, count: int | None = None):
        """The Insns at the start of `code` (at guest `address`), up to `count` of them, as
        far as its bytes decode."""
        buf = ctypes.c_char_p(code)        # keeps `code` referenced while capstone reads it
        ptr = ctypes.c_void_p(ctypes.cast(buf, ctypes.c_void_p).value)
        left, pc = ctypes.c_size_t(len(code)), ctypes.c_uint64(address)
        rec, n, step = self.insn, 0, _lib.cs_disasm_iter
        at, left_at, pc_at = ctypes.byref(ptr), ctypes.byref(left), ctypes.byref(pc)
        record = self._record
        while (count is None or n < count) and step(_HANDLE, at, left_at, pc_at, rec):
            n += 1
            yield record()

    def block(self, code: bytes, address: int, limit: int) -> tuple[list, int, bool]:
        """The instructions of a block at the start of `code` (at guest `address`): up to a
        branch, an instruction a rule ends a block at, or `limit` of them; with the address
        after the last, and whether the block ended so (False: capstone stopped first). (The
        loop of ``decode``, without a generator's cost an instruction.)"""
        # (capstone's cursor is kept in the same three ctypes objects from block to block:
        # making them, and their references, cost a block more than decoding one instruction)
        self.ptr.value = ctypes.cast(code, ctypes.c_void_p).value   # (`code` stays referenced)
        self.left.value, self.pc.value = len(code), address
        rec, step, record = self.insn, _lib.cs_disasm_iter, self._record
        at, left_at, pc_at = self.cursor
        insns, ends, nxt = [], _ENDS, address
        while step(_HANDLE, at, left_at, pc_at, rec):
            insn = record()
            insns.append(insn)
            nxt = insn.address + insn.size
            end = ends.get(insn.groups)
            if end is None:
                g = insn.groups
                end = ends[g] = (CS_GRP_JUMP in g or CS_GRP_CALL in g or CS_GRP_RET in g
                                 or CS_GRP_IRET in g)
            if end or (insn.rule is not None and insn.rule.ends_block) or len(insns) >= limit:
                return insns, nxt, True
        return insns, nxt, False

    def _record(self) -> Insn:
        """An Insn from capstone's record of the instruction just decoded. (The decoder's
        hot path: each step here is paid for every instruction a run decodes, 5,000 or more
        for glibc's start-up alone; what repeats is looked up in tables that fill as a run
        decodes: operands, mnemonics, groups.)"""
        raw = self.rec
        address, size = _INSN_FIELDS.unpack_from(raw)
        at = _DETAIL_PTR.unpack_from(raw)[0]
        if at != self.detail_at:
            self._detail()
        d = self.detail.tobytes()          # (slices of bytes are cheaper than of a view)
        get = _OPERANDS.get
        ops = []
        try:
            for at in range(_OPS, _OPS + d[_NOPS] * _OP_SIZE, _OP_SIZE):
                ops.append(get(d[at:at + _OP_KEY]) or _operand(d, at))
        except (NotImplementedError, KeyError):
            ops = None
        name = self.mnemonic.value
        mnemonic = _MNEMONICS.get(name)
        if mnemonic is None:
            mnemonic = _MNEMONICS[name] = _mnemonic(name.decode())
        prefix = d[_PREFIX]
        g = d[_GROUPS:_GROUPS + d[_NGROUPS]]
        groups = _GROUP_SETS.get(g)
        if groups is None:
            groups = _GROUP_SETS[g] = tuple(g)
        insn = Insn(address, size, bytes(raw[_BYTES:_BYTES + size]), mnemonic,
                    self.op_str.value.decode(), ops if ops is not None else [], groups,
                    prefix if prefix == 0xF2 or prefix == 0xF3 else 0, prefix == 0xF0, False,
                    ops is None)
        insn.rule = rewrite.classify(insn)
        return insn


def _mnemonic(full: str) -> str:
    """The mnemonic of capstone's text, without the prefixes it writes into it ("rep stosq")."""
    mnemonic = full
    while " " in mnemonic:
        pre, mnemonic = mnemonic.split(" ", 1)
        if pre not in PREFIX_WORDS:
            return full
    return mnemonic


_MNEMONICS: dict[bytes, str] = {}          # capstone's mnemonic text -> the Insn's mnemonic
_GROUP_SETS: dict[bytes, tuple] = {}       # a detail's group bytes -> their tuple
_ENDS: dict[tuple, bool] = {}              # groups -> do they make a branch (Insn.is_branch)?


_STREAM = _Stream()


def invalid(address: int, raw: bytes) -> Insn:
    """A pseudo-instruction for bytes capstone cannot decode: executing it raises SIGILL."""
    insn = Insn(address, max(1, len(raw)), raw, "(bad)", "", [], invalid=True)
    insn.rule = rewrite.classify(insn)
    return insn


@dataclass
class Block:
    start: int
    insns: list[Insn] = field(default_factory=list)
    fetch_fault: int | None = None   # guest address whose fetch faulted (SIGSEGV), if any

    @property
    def end(self) -> int:
        return self.insns[-1].next if self.insns else self.start

    @property
    def indirect_jump(self) -> bool:
        """Does the block end in a jmp through a register (what compilers make of a switch;
        a jmp through memory is more often a call through a pointer table)?"""
        last = self.insns[-1] if self.insns else None
        return (last is not None and last.mnemonic == "jmp" and bool(last.ops)
                and last.ops[0].kind == "reg")

    @property
    def jump_slot(self) -> int | None:
        """Where the block's last instruction, a jmp through a rip-relative pointer (a PLT
        stub's jmp through the GOT), reads its target from; None for any other ending."""
        last = self.insns[-1] if self.insns else None
        if last is None or last.mnemonic != "jmp" or not last.ops:
            return None
        op = last.ops[0]
        if op.kind != "mem" or op.base != "rip" or op.index is not None or op.seg or op.size != 8:
            return None
        return (last.next + op.disp) & 0xFFFFFFFFFFFFFFFF

    def successors(self) -> list[int]:
        """Guest addresses control may reach directly after this block (known statically)."""
        if not self.insns:
            return []
        last = self.insns[-1]
        g = last.groups
        if last.invalid or last.rule is not None and last.rule.ends_run:
            return []
        if CS_GRP_RET in g or CS_GRP_IRET in g:
            return []
        if CS_GRP_JUMP in g or CS_GRP_CALL in g:
            out = []
            if last.ops and last.ops[0].kind == "imm":
                out.append(last.ops[0].imm & 0xFFFFFFFFFFFFFFFF)
            if last.mnemonic != "jmp":
                out.append(last.next)   # jcc falls through; call returns here
            return out
        return [last.next]


class Decoder:
    """Decodes blocks from guest memory through a fetch callback."""

    def __init__(self, max_insns: int = MAX_BLOCK_INSNS):
        self.max_insns = max_insns

    def decode_block(self, fetch, address: int, max_insns: int | None = None) -> Block:
        """fetch(addr, n) returns up to n executable bytes at addr (fewer at the end of the range)."""
        limit = max_insns or self.max_insns
        block = Block(address)
        code = fetch(address, limit * MAX_INSN_LEN)
        if not code:
            block.fetch_fault = address
            return block
        insns, pc, ended = _STREAM.block(code, address, limit)
        block.insns = insns
        if ended:
            return block
        # capstone stopped early. With a full fetch at least MAX_INSN_LEN bytes remain, so the
        # bytes are invalid. With a short fetch (end of executable memory) the rest may be the
        # beginning of a valid instruction whose tail is not executable: that fetch faults.
        rest = code[pc - address:]
        if len(rest) < MAX_INSN_LEN:
            if not rest or list(_STREAM.decode(rest + bytes(MAX_INSN_LEN), pc, 1)):
                block.fetch_fault = pc + len(rest)
                return block
        block.insns.append(invalid(pc, rest[:MAX_INSN_LEN]))
        return block


def disassemble(code: bytes, address: int) -> list[Insn]:
    """Decode a byte string completely (for tests and the ``blocks`` command)."""
    return list(_STREAM.decode(code, address))
