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

from dataclasses import dataclass, field

import capstone
from capstone import x86 as cx86

from . import rewrite
from .state import GPR_NAMES

MAX_BLOCK_INSNS = 64
MAX_INSN_LEN = 15
DECODE_BATCH = 8

_CS = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_CS.detail = True

# capstone register id -> (gpr index, size in bytes, high-byte register?)
REGS: dict[int, tuple[int, int, bool]] = {}
RIP = cx86.X86_REG_RIP
SEGS = {cx86.X86_REG_FS: "fs", cx86.X86_REG_GS: "gs", cx86.X86_REG_CS: None,
        cx86.X86_REG_DS: None, cx86.X86_REG_ES: None, cx86.X86_REG_SS: None}


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
    for reg_id in range(1, cx86.X86_REG_ENDING):
        name = _CS.reg_name(reg_id)
        if name in names:
            REGS[reg_id] = names[name]


_build_register_map()
XMMS = {getattr(cx86, f"X86_REG_XMM{i}"): i for i in range(16)}
STS = {getattr(cx86, f"X86_REG_ST{i}"): i for i in range(8)}     # x87 stack registers st(i)
MMS = {getattr(cx86, f"X86_REG_MM{i}"): i for i in range(8)}     # MMX registers mm0-mm7


@dataclass(slots=True)
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
        return (capstone.CS_GRP_JUMP in g or capstone.CS_GRP_CALL in g
                or capstone.CS_GRP_RET in g or capstone.CS_GRP_IRET in g)


def _operand(op) -> Operand:
    if op.type == cx86.X86_OP_REG:
        if op.reg in XMMS:
            return Operand("xmm", 16, reg=XMMS[op.reg])
        if op.reg in STS:
            return Operand("st", 10, reg=STS[op.reg])
        if op.reg in MMS:
            return Operand("mm", 8, reg=MMS[op.reg])
        if op.reg not in REGS:
            raise NotImplementedError(f"register {_CS.reg_name(op.reg)}")
        idx, size, high = REGS[op.reg]
        return Operand("reg", size, reg=idx, high=high)
    if op.type == cx86.X86_OP_IMM:
        return Operand("imm", op.size, imm=op.imm)
    mem = op.mem
    base = None
    if mem.base == RIP:
        base = "rip"
    elif mem.base:
        base = REGS[mem.base][0]
    index = REGS[mem.index][0] if mem.index else None
    seg = SEGS.get(mem.segment) if mem.segment else None
    return Operand("mem", op.size, base=base, index=index, scale=mem.scale, disp=mem.disp, seg=seg)


PREFIX_WORDS = {"rep", "repe", "repz", "repne", "repnz", "lock", "bnd", "notrack", "xacquire",
                "xrelease"}


def convert(cs_insn) -> Insn:
    """Turn one capstone instruction into an Insn record."""
    prefix = cs_insn.prefix
    try:
        ops = [_operand(o) for o in cs_insn.operands]
    except (NotImplementedError, KeyError):
        ops = None
    mnemonic = cs_insn.mnemonic
    while " " in mnemonic:         # capstone writes prefixes into the mnemonic: "rep stosq"
        pre, mnemonic = mnemonic.split(" ", 1)
        if pre not in PREFIX_WORDS:
            mnemonic = cs_insn.mnemonic
            break
    insn = Insn(cs_insn.address, cs_insn.size, bytes(cs_insn.bytes), mnemonic,
                cs_insn.op_str, ops if ops is not None else [], tuple(cs_insn.groups),
                rep=prefix[0] if prefix[0] in (0xF2, 0xF3) else 0, lock=prefix[0] == 0xF0)
    insn.bad_operands = ops is None
    insn.rule = rewrite.classify(insn)
    return insn


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

    def successors(self) -> list[int]:
        """Guest addresses control may reach directly after this block (known statically)."""
        if not self.insns:
            return []
        last = self.insns[-1]
        g = last.groups
        if last.invalid or last.rule is not None and last.rule.ends_run:
            return []
        if capstone.CS_GRP_RET in g or capstone.CS_GRP_IRET in g:
            return []
        if capstone.CS_GRP_JUMP in g or capstone.CS_GRP_CALL in g:
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
        pc = address
        while True:
            # capstone's disasm() decodes everything it is given, with detail, before yielding:
            # hand it a few instructions at a time, not the whole fetch window.
            batch = list(_CS.disasm(code[pc - address:], pc, count=DECODE_BATCH))
            for cs_insn in batch:
                insn = convert(cs_insn)
                block.insns.append(insn)
                pc = insn.next
                if insn.is_branch or (insn.rule is not None and insn.rule.ends_block) \
                        or len(block.insns) >= limit:
                    return block
            if len(batch) < DECODE_BATCH:
                break
        # capstone stopped early. With a full fetch at least MAX_INSN_LEN bytes remain, so the
        # bytes are invalid. With a short fetch (end of executable memory) the rest may be the
        # beginning of a valid instruction whose tail is not executable: that fetch faults.
        rest = code[pc - address:]
        if len(rest) < MAX_INSN_LEN:
            if not rest or list(_CS.disasm(rest + bytes(MAX_INSN_LEN), pc, count=1)):
                block.fetch_fault = pc + len(rest)
                return block
        block.insns.append(invalid(pc, rest[:MAX_INSN_LEN]))
        return block


def disassemble(code: bytes, address: int) -> list[Insn]:
    """Decode a byte string completely (for tests and the ``blocks`` command)."""
    return [convert(i) for i in _CS.disasm(code, address)]
