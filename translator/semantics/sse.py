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

The same semantics serve the 64-bit mm registers (MMX, translator/semantics/mmx.py): ``width``,
``vreg``/``set_vreg``, ``vec``/``unvec`` and ``int_lanes(suffix, width)`` work for either register,
and ``source(..., bits=64)`` reads an mm or m64 source as i64.

The families live in sse_int.py (packed integers) and sse_fp.py (floating point and
conversions); this module has the moves: movaps/movups/movdqa/... (whole register), movss/movsd
(low lane; ``movsd`` without an xmm operand is the string instruction), movd/movq (xmm or mm,
and movq2dq/movdq2q between them), the half moves (movhps, movlps, movhlps, movlhps, ...), the
non-temporal stores (plain stores here), lddqu, and ldmxcsr/stmxcsr.
"""
from __future__ import annotations

from ..irbuilder import INTRINSICS, IRValue, const
from ..state import SIGSEGV
from . import semantic


class Lanes(tuple):
    """The lanes of a 128-bit register: count, element type, element width, integer type. (A
    tuple of three, as typing.NamedTuple made it; importing typing was 2.6 ms of the first
    lift of a run.)"""
    __slots__ = ()

    def __new__(cls, n: int, ety: str, bits: int):
        return tuple.__new__(cls, (n, ety, bits))

    n = property(lambda self: self[0])
    ety = property(lambda self: self[1])
    bits = property(lambda self: self[2])

    def __repr__(self) -> str:
        return f"Lanes(n={self[0]}, ety={self[1]!r}, bits={self[2]})"

    @property
    def vt(self) -> str:
        return f"<{self.n} x {self.ety}>"

    @property
    def ivt(self) -> str:
        """The integer vector type with the same lanes."""
        return f"<{self.n} x i{self.bits}>"

    @property
    def width(self) -> int:
        """The register width the lanes fill: 128 (xmm) or 64 (mm)."""
        return self.n * self.bits

    @property
    def mangle(self) -> str:
        """The suffix of overloaded intrinsics: v4f32, v16i8."""
        short = {"float": "f32", "double": "f64"}.get(self.ety, self.ety)
        return f"v{self.n}{short}"


INT = {"b": Lanes(16, "i8", 8), "w": Lanes(8, "i16", 16), "d": Lanes(4, "i32", 32),
       "q": Lanes(2, "i64", 64), "dq": Lanes(1, "i128", 128)}
PS, PD = Lanes(4, "float", 32), Lanes(2, "double", 64)


def int_lanes(suffix: str, width: int = 128) -> Lanes:
    """The integer lanes a mnemonic suffix names in a register of `width` bits: ``int_lanes("w",
    64)`` is <4 x i16>, the lanes of an mm register; "dq" is the whole register."""
    t = INT[suffix]
    bits = min(t.bits, width)
    return Lanes(width // bits, f"i{bits}", bits)


# ---- operands ---------------------------------------------------------------------------------
def unsupported(why: str):
    """Give up on this operand form (the lifter turns it into an UNSUPPORTED exit)."""
    from ..lifter import Unsupported     # the lifter imports the semantics: import late
    raise Unsupported(why)


def xmm(L, op) -> str:
    if op.kind != "xmm":
        unsupported("expected an xmm register")
    return L.get_xmm(op.reg)


def width(op) -> int:
    """The width of a vector register operand: 64 for mm, 128 for xmm (and anything else)."""
    return 64 if op.kind == "mm" else 128


def vreg(L, op) -> str:
    """A vector register operand: an xmm register as i128, an mm register as i64."""
    if op.kind == "xmm":
        return L.get_xmm(op.reg)
    if op.kind == "mm":
        return L.get_mm(op.reg)
    unsupported("expected a vector register")


def set_vreg(L, op, value: str) -> None:
    """Write a vector register operand (i128 for xmm, i64 for mm: see lifter.set_mm)."""
    if op.kind == "xmm":
        L.set_xmm(op.reg, value)
    elif op.kind == "mm":
        L.set_mm(op.reg, value)
    else:
        unsupported("expected a vector register")


def mmx_read(L, insn) -> None:
    """An instruction that reads an mm register without writing one enters MMX mode all the same
    (TOP = 0, every x87 register valid): called after its other effects."""
    if any(op.kind == "mm" for op in insn.ops):
        L.enter_mmx()


def vec(L, value: str, t: Lanes) -> str:
    """A register value (i128 or i64, as wide as the lanes) seen as the vector `t`."""
    return L.b.emit(f"bitcast i{t.width} {value} to {t.vt}")


def unvec(L, value: str, t: Lanes) -> str:
    """A vector of lanes `t` back as the integer set_vreg stores."""
    return L.b.emit(f"bitcast {t.vt} {value} to i{t.width}")


def fit(L, value: str, frm: int, to: int) -> str:
    """An integer zero-extended or truncated from `frm` to `to` bits."""
    return L.cast("zext" if to > frm else "trunc", value, frm, to)


def check_aligned(L, addr: str) -> None:
    """Legacy SSE 16-byte memory operands must be aligned: #GP (SIGSEGV) otherwise."""
    low = L.b.emit(f"and i64 {addr}, 15")
    L.branch_or_fault(L.icmp("eq", 64, low, "0"), SIGSEGV, "0")


def source(L, op, size: int = 16, aligned: bool = True, bits: int = 128) -> str:
    """The value of a source operand as i128 (i`bits`): narrower memory and registers are
    zero-extended, wider registers truncated (the low qword of an xmm for an mm form). `size` is
    the memory access in bytes (capstone's is not trusted)."""
    if op.kind in ("xmm", "mm"):
        return fit(L, vreg(L, op), width(op), bits)
    if op.kind == "mem":
        addr = L.ea(op)
        if size == 16 and aligned:
            check_aligned(L, addr)
        return fit(L, L.load(addr, size), size * 8, bits)
    if op.kind == "reg":
        return fit(L, L.read(op), op.size * 8, bits)
    unsupported("immediate vector source")


def store(L, op, value: str, size: int = 16, aligned: bool = False, bits: int = 128) -> None:
    """Store the low `size` bytes of the i128 (i`bits`) `value` to a memory operand."""
    addr = L.ea(op)
    if size == 16 and aligned:
        check_aligned(L, addr)
    L.store(addr, L.cast("trunc", value, bits, size * 8), size)


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


class Imm8:
    """An instruction's imm8 for a semantic that can take it known or read at run time (an
    interpreter handler's, read from its record: irbuilder.IRValue), so that one handler serves
    every immediate. ``field`` gives bits of it as an int, or as an i64 IR value."""

    def __init__(self, L, insn):
        self.L = L
        op = insn.ops[-1]
        if op.kind != "imm":
            unsupported("expected an immediate")
        self.known = None if isinstance(op.imm, IRValue) else op.imm & 0xFF
        self.value = op.imm            # (an i64 IR value when not known)

    def field(self, shift: int, mask: int, plus: int = 0):
        """(imm >> shift & mask) + plus."""
        if self.known is not None:
            return (self.known >> shift & mask) + plus
        L = self.L
        v = L.op("lshr", 64, self.value, str(shift)) if shift else self.value
        v = L.op("and", 64, v, str(mask))
        return L.op("or", 64, v, str(plus)) if plus else v     # (plus is above mask's bits)


def pick_lanes(L, t: Lanes, a: str, c: str, idx) -> str:
    """Lane k of the result is lane idx[k] of a ++ c, where an index may be an i64 IR value
    known only at run time (Imm8.field): a shufflevector when all are known, else one
    extractelement of the concatenation per lane."""
    if all(isinstance(i, int) for i in idx):
        return shuffle(L, t, a, c, idx)
    both = shuffle(L, t, a, c, range(2 * t.n))
    vt2 = f"<{2 * t.n} x {t.ety}>"
    r = "poison"
    for k, i in enumerate(idx):
        lane = L.b.emit(f"extractelement {vt2} {both}, i64 {i}")
        r = L.b.emit(f"insertelement <{len(idx)} x {t.ety}> {r}, {t.ety} {lane}, i64 {k}")
    return r


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


@semantic("movd", "movq", "movntq", "movq2dq", "movdq2q")
def movd(L, insn):
    """movd/movq between a vector register (xmm or mm) and general registers, memory or another
    vector register; loads zero the rest of the destination, and ``movq xmm, xmm`` copies the low
    qword and zeroes the high one. movntq (a plain store here), movq2dq (mm to xmm) and movdq2q
    (the low qword of an xmm to mm) are the same move."""
    dst, src = insn.ops
    size = 4 if insn.mnemonic == "movd" else 8
    if dst.kind in ("xmm", "mm"):
        bits = width(dst)
        value = source(L, src, size, bits=bits)
        if src.kind in ("xmm", "mm") and bits == 128:
            value = merge_low(L, "0", value, 64)
        set_vreg(L, dst, value)
    elif dst.kind == "mem":
        store(L, dst, vreg(L, src), size, bits=width(src))
    else:
        L.write(dst, L.cast("trunc", vreg(L, src), width(src), dst.size * 8))
    if dst.kind != "mm":
        mmx_read(L, insn)


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
