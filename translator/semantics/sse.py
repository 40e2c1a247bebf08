"""SSE/SSE2 vocabulary shared by the vector semantics, and the data moves.

An xmm register is an i128 in the state; a semantic reads it, bitcasts it to the vector type of
its lanes (``Lanes``), computes with ordinary LLVM vector instructions and writes an i128 back::

    @semantic("paddb", "paddw")
    def padd(L, insn):
        dst, src = insn.ops
        t = INT[insn.mnemonic[-1]]                          # <16 x i8> or <8 x i16>
        a, c = L.vec(xmm(L, dst), t.vt), L.vec(source(L, src), t.vt)
        L.set_xmm(dst.reg, L.unvec(L.b.emit(f"add {t.vt} {a}, {c}"), t.vt))

``source`` reads the second operand: an xmm register, a 16-byte memory operand (which must be
16-byte aligned unless the instruction is one of the unaligned moves: a misaligned one raises #GP,
SIGSEGV for the guest) or a narrower memory operand or general register, zero-extended to i128.
Capstone's memory operand size is not trusted for scalar forms (it says 16 for ``comisd``'s
qword); semantics pass the size they mean.

The families live in sse_int.py (packed integers) and sse_fp.py (floating point and
conversions); this module has the moves: movaps/movups/movdqa/... (whole register), movss/movsd
(low lane; ``movsd`` without an xmm operand is the string instruction), movd/movq, the half moves
(movhps, movlps, movhlps, movlhps, ...), the non-temporal stores (plain stores here), lddqu, and
ldmxcsr/stmxcsr.
"""
from __future__ import annotations

from typing import NamedTuple

from ..irbuilder import INTRINSICS, const
from ..state import SIGSEGV
from . import semantic


class Lanes(NamedTuple):
    """The lanes of a 128-bit register: count, element type, element width, integer type."""
    n: int
    ety: str
    bits: int

    @property
    def vt(self) -> str:
        return f"<{self.n} x {self.ety}>"

    @property
    def ivt(self) -> str:
        """The integer vector type with the same lanes."""
        return f"<{self.n} x i{self.bits}>"

    @property
    def mangle(self) -> str:
        """The suffix of overloaded intrinsics: v4f32, v16i8."""
        short = {"float": "f32", "double": "f64"}.get(self.ety, self.ety)
        return f"v{self.n}{short}"


INT = {"b": Lanes(16, "i8", 8), "w": Lanes(8, "i16", 16), "d": Lanes(4, "i32", 32),
       "q": Lanes(2, "i64", 64), "dq": Lanes(1, "i128", 128)}
PS, PD = Lanes(4, "float", 32), Lanes(2, "double", 64)


# ---- operands ---------------------------------------------------------------------------------
def unsupported(why: str):
    """Give up on this operand form (the lifter turns it into an UNSUPPORTED exit)."""
    from ..lifter import Unsupported     # the lifter imports the semantics: import late
    raise Unsupported(why)


def xmm(L, op) -> str:
    if op.kind != "xmm":
        unsupported("expected an xmm register")
    return L.get_xmm(op.reg)


def check_aligned(L, addr: str) -> None:
    """Legacy SSE 16-byte memory operands must be aligned: #GP (SIGSEGV) otherwise."""
    low = L.b.emit(f"and i64 {addr}, 15")
    L.branch_or_fault(L.icmp("eq", 64, low, "0"), SIGSEGV, "0")


def source(L, op, size: int = 16, aligned: bool = True) -> str:
    """The value of a source operand as i128; memory and registers narrower than 16 bytes are
    zero-extended. `size` is the memory access in bytes (capstone's is not trusted)."""
    if op.kind == "xmm":
        return L.get_xmm(op.reg)
    if op.kind == "mem":
        addr = L.ea(op)
        if size == 16 and aligned:
            check_aligned(L, addr)
        return L.cast("zext", L.load(addr, size), size * 8, 128)
    if op.kind == "reg":
        return L.cast("zext", L.read(op), op.size * 8, 128)
    unsupported("immediate vector source")


def store(L, op, value: str, size: int = 16, aligned: bool = False) -> None:
    """Store the low `size` bytes of the i128 `value` to a memory operand."""
    addr = L.ea(op)
    if size == 16 and aligned:
        check_aligned(L, addr)
    L.store(addr, L.cast("trunc", value, 128, size * 8), size)


def merge_low(L, old: str, new: str, bits: int) -> str:
    """`old` with its low `bits` replaced by those of `new` (scalar results keep the rest)."""
    if bits == 128:
        return new
    mask = (1 << bits) - 1
    keep = L.op("and", 128, old, const(~mask, 128))
    return L.op("or", 128, keep, L.op("and", 128, new, const(mask, 128)))


def half(L, value: str, high: bool) -> str:
    """The low or high qword of an i128, as i64."""
    if high:
        value = L.op("lshr", 128, value, "64")
    return L.cast("trunc", value, 128, 64)


def join(L, low: str, high: str) -> str:
    """An i128 from two i64 halves."""
    hi = L.op("shl", 128, L.cast("zext", high, 64, 128), "64")
    return L.op("or", 128, hi, L.cast("zext", low, 64, 128))


# ---- IR vocabulary ----------------------------------------------------------------------------
def splat(t: Lanes, value: str, n: int | None = None) -> str:
    """A constant vector with every lane `value` (already spelled for the element type)."""
    return "<" + ", ".join([f"{t.ety} {value}"] * (n or t.n)) + ">"


def call(L, name: str, ret: str, *args: tuple[str, str]) -> str:
    """Call an LLVM intrinsic (declared on first use): call(L, "llvm.sqrt.v4f32", vt, (vt, x))."""
    INTRINSICS.setdefault(name, f"declare {ret} @{name}({', '.join(t for t, _ in args)})")
    L.b.use(name)
    return L.b.emit(f"call {ret} @{name}({', '.join(f'{t} {v}' for t, v in args)})")


def shuffle(L, t: Lanes, a: str, c: str, idx) -> str:
    """shufflevector of two `t` vectors: lane k of the result is lane idx[k] of a ++ c."""
    mask = ", ".join(f"i32 {i}" for i in idx)
    return L.b.emit(f"shufflevector {t.vt} {a}, {t.vt} {c}, <{len(idx)} x i32> <{mask}>")


def imm8(insn) -> int:
    op = insn.ops[-1]
    if op.kind != "imm":
        unsupported("expected an immediate")
    return op.imm & 0xFF


# ---- moves ------------------------------------------------------------------------------------
ALIGNED = {"movaps", "movapd", "movdqa", "movntps", "movntpd", "movntdq"}


@semantic("movaps", "movapd", "movdqa", "movups", "movupd", "movdqu", "movntps", "movntpd",
          "movntdq", "lddqu")
def mov128(L, insn):
    dst, src = insn.ops
    aligned = insn.mnemonic in ALIGNED
    value = source(L, src, 16, aligned)
    if dst.kind == "xmm":
        L.set_xmm(dst.reg, value)
    else:
        store(L, dst, value, 16, aligned)


@semantic("movss", "movsd", reads=lambda m: "df" if m == "movsd" else "")
def mov_scalar(L, insn):
    """movss/movsd: register to register moves the low lane only; a load zeroes the rest."""
    if not any(op.kind == "xmm" for op in insn.ops):
        from .string import string_op     # movsd without xmm operands is the string move
        return string_op(L, insn)
    dst, src = insn.ops
    size = 4 if insn.mnemonic == "movss" else 8
    if dst.kind == "mem":
        store(L, dst, xmm(L, src), size)
    elif src.kind == "mem":
        L.set_xmm(dst.reg, source(L, src, size))
    else:
        L.set_xmm(dst.reg, merge_low(L, xmm(L, dst), xmm(L, src), size * 8))


@semantic("movd", "movq")
def movd(L, insn):
    """movd/movq between xmm and general registers or memory; loads zero the upper lanes, and
    ``movq xmm, xmm`` copies the low qword and zeroes the high one."""
    dst, src = insn.ops
    size = 4 if insn.mnemonic == "movd" else 8
    if dst.kind == "xmm":
        value = source(L, src, size)
        if src.kind == "xmm":
            value = merge_low(L, "0", value, 64)
        L.set_xmm(dst.reg, value)
    elif dst.kind == "mem":
        store(L, dst, xmm(L, src), size)
    else:
        L.write(dst, L.cast("trunc", xmm(L, src), 128, dst.size * 8))


@semantic("movhps", "movhpd", "movlps", "movlpd", "movhlps", "movlhps")
def mov_half(L, insn):
    dst, src = insn.ops
    m = insn.mnemonic
    if dst.kind == "mem":                 # store the named half
        value = xmm(L, src)
        if m[3] == "h":
            value = L.op("lshr", 128, value, "64")
        store(L, dst, value, 8)
        return
    old = xmm(L, dst)
    new = source(L, src, 8) if src.kind == "mem" else xmm(L, src)
    if m == "movhlps":                    # low <- high of the source
        new = half(L, new, True)
    else:
        new = half(L, new, False)
    if m in ("movhps", "movhpd", "movlhps"):
        L.set_xmm(dst.reg, join(L, half(L, old, False), new))
    else:
        L.set_xmm(dst.reg, join(L, new, half(L, old, True)))


@semantic("movnti")
def movnti(L, insn):
    """A non-temporal store is an ordinary store for a single-threaded guest."""
    dst, src = insn.ops
    L.write(dst, L.read(src))


# MXCSR bits 16-31 are reserved: loading a value with any of them set raises #GP.
MXCSR_RESERVED = 0xFFFF0000


@semantic("ldmxcsr", "stmxcsr")
def mxcsr(L, insn):
    (op,) = insn.ops
    p = L.ptr("mxcsr")
    addr = L.ea(op)
    if insn.mnemonic == "stmxcsr":
        L.store(addr, L.b.emit(f"load i32, ptr {p}"), 4)
        return
    value = L.load(addr, 4)
    ok = L.icmp("eq", 32, L.op("and", 32, value, const(MXCSR_RESERVED, 32)), "0")
    L.branch_or_fault(ok, SIGSEGV, "0")
    L.b.stmt(f"store i32 {value}, ptr {p}")
