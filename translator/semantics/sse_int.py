"""SSE2 and MMX packed integer instructions, and the bitwise and shuffle ones shared with
floating point.

Each family is one semantic generic over the register (xmm: 128 bits, mm: 64 bits) and the lane
width, which the mnemonic's suffix names (``b w d q dq`` -> ``int_lanes`` in sse.py); the
operation itself comes from a table::

    paddsw xmm0, xmm1     ->  PAIRWISE["paddsw"] = ("@sadd.sat", "w")
                              call <8 x i16> @llvm.sadd.sat.v8i16(<8 x i16> a, <8 x i16> c)
    paddsw mm0, mm1       ->  the same on <4 x i16>, mm0 written through lifter.set_mm

Also here: the logical operations on whole registers (pand, andps, ...), comparisons, shifts by
an immediate or by a register count (counts past the lane width give 0, or the sign for psra),
byte shifts of the whole register, packs with saturation, unpacks (the integer and the
floating-point ones), pshufd/pshuflw/pshufhw/pshufw, shufps/shufpd, pextrw/pinsrw, the sign-mask
moves pmovmskb/movmskps/movmskpd and the byte-masked stores maskmovq/maskmovdqu.

MMX memory operands need no alignment; punpckl* of an mm register reads only a dword of memory.
An MMX form puts the x87 unit in MMX mode (lifter.set_mm; sse.mmx_read for the forms that only
read an mm register).
"""
from __future__ import annotations

from ..irbuilder import const
from . import semantic
from .sse import (
    PD,
    PS,
    Imm8,
    Lanes,
    call,
    int_lanes,
    mmx_read,
    pick_lanes,
    set_vreg,
    shuffle,
    source,
    splat,
    unvec,
    vec,
    vreg,
    width,
    xmm,
)

# mnemonic -> (LLVM instruction, or "@intrinsic" called as llvm.<name>.<vector>, lane suffix)
PAIRWISE = {}
for _s in "bwdq":
    PAIRWISE["padd" + _s] = ("add", _s)
    PAIRWISE["psub" + _s] = ("sub", _s)
for _s in "bw":
    PAIRWISE["padds" + _s] = ("@sadd.sat", _s)
    PAIRWISE["psubs" + _s] = ("@ssub.sat", _s)
    PAIRWISE["paddus" + _s] = ("@uadd.sat", _s)
    PAIRWISE["psubus" + _s] = ("@usub.sat", _s)
PAIRWISE.update({
    "pmullw": ("mul", "w"), "pminub": ("@umin", "b"), "pmaxub": ("@umax", "b"),
    "pminsw": ("@smin", "w"), "pmaxsw": ("@smax", "w"),
    "pand": ("and", "dq"), "andps": ("and", "dq"), "andpd": ("and", "dq"),
    "por": ("or", "dq"), "orps": ("or", "dq"), "orpd": ("or", "dq"),
    "pxor": ("xor", "dq"), "xorps": ("xor", "dq"), "xorpd": ("xor", "dq"),
    "pandn": ("andn", "dq"), "andnps": ("andn", "dq"), "andnpd": ("andn", "dq"),
})


def operands(L, insn, size: int | None = None):
    """The destination register, its width, its value and the source's (i128, or i64 for mm).
    An mm form's memory source is a qword (`size` bytes if given)."""
    dst, src = insn.ops[:2]
    w = width(dst)
    return dst, w, vreg(L, dst), source(L, src, size or w // 8, bits=w)


def lanewise(L, opcode: str, t: Lanes, a: str, c: str) -> str:
    if opcode.startswith("@"):
        return call(L, f"llvm.{opcode[1:]}.{t.mangle}", t.vt, (t.vt, a), (t.vt, c))
    if opcode == "andn":
        a = L.b.emit(f"xor {t.vt} {a}, {splat(t, '-1')}")
        opcode = "and"
    return L.b.emit(f"{opcode} {t.vt} {a}, {c}")


@semantic(*PAIRWISE)
def pairwise(L, insn):
    opcode, suffix = PAIRWISE[insn.mnemonic]
    dst, w, a, c = operands(L, insn)
    t = int_lanes(suffix, w)
    set_vreg(L, dst, unvec(L, lanewise(L, opcode, t, vec(L, a, t), vec(L, c, t)), t))


def widen(L, t: Lanes, v: str, kind: str) -> tuple[Lanes, str]:
    """Each lane sign- or zero-extended to twice its width."""
    w = Lanes(t.n, f"i{t.bits * 2}", t.bits * 2)
    return w, L.b.emit(f"{kind} {t.vt} {v} to {w.vt}")


@semantic("pmulhw", "pmulhuw", "pavgb", "pavgw")
def widened(L, insn):
    """Lanes computed at twice their width: the high half of a product, the rounded average."""
    m = insn.mnemonic
    dst, width_, a, c = operands(L, insn)
    t = int_lanes(m[-1], width_)
    kind = "sext" if m == "pmulhw" else "zext"
    w, wa = widen(L, t, vec(L, a, t), kind)
    _, wc = widen(L, t, vec(L, c, t), kind)
    if m.startswith("pmulh"):
        r = L.b.emit(f"mul {w.vt} {wa}, {wc}")
        r = L.b.emit(f"lshr {w.vt} {r}, {splat(w, str(t.bits))}")
    else:
        r = L.b.emit(f"add {w.vt} {wa}, {wc}")
        r = L.b.emit(f"add {w.vt} {r}, {splat(w, '1')}")
        r = L.b.emit(f"lshr {w.vt} {r}, {splat(w, '1')}")
    set_vreg(L, dst, unvec(L, L.b.emit(f"trunc {w.vt} {r} to {t.vt}"), t))


@semantic("pmuludq", "pmaddwd", "psadbw")
def reducing(L, insn):
    """Products and sums that combine lanes into wider ones."""
    m = insn.mnemonic
    dst, bits, a, c = operands(L, insn)
    b = L.b
    if m == "pmuludq":       # low dword of each qword, full 64-bit product
        q = int_lanes("q", bits)
        low = splat(q, str(0xFFFFFFFF))
        x = b.emit(f"and {q.vt} {vec(L, a, q)}, {low}")
        y = b.emit(f"and {q.vt} {vec(L, c, q)}, {low}")
        set_vreg(L, dst, unvec(L, b.emit(f"mul {q.vt} {x}, {y}"), q))
        return
    if m == "pmaddwd":       # signed word products, adjacent pairs summed into dwords
        t = int_lanes("w", bits)
        w, x = widen(L, t, vec(L, a, t), "sext")
        _, y = widen(L, t, vec(L, c, t), "sext")
        p = b.emit(f"mul {w.vt} {x}, {y}")
        d = int_lanes("d", bits)
        even = shuffle(L, w, p, p, range(0, t.n, 2))
        odd = shuffle(L, w, p, p, range(1, t.n, 2))
        set_vreg(L, dst, unvec(L, b.emit(f"add {d.vt} {even}, {odd}"), d))
        return
    # psadbw: sum of absolute byte differences of each qword, in the low word of the qword
    t = int_lanes("b", bits)
    w, x = widen(L, t, vec(L, a, t), "zext")
    _, y = widen(L, t, vec(L, c, t), "zext")
    diff = b.emit(f"sub {w.vt} {x}, {y}")
    absd = call(L, f"llvm.abs.{w.mangle}", w.vt, (w.vt, diff), ("i1", "false"))
    h = Lanes(8, "i16", 16)
    r = "0"
    for k in range(0, t.n, 8):
        s = call(L, f"llvm.vector.reduce.add.{h.mangle}", "i16",
                 (h.vt, shuffle(L, w, absd, absd, range(k, k + 8))))
        r = L.op("or", bits, r, L.op("shl", bits, L.cast("zext", s, 16, bits), str(8 * k)))
    set_vreg(L, dst, r)


@semantic(*(f"pcmp{p}{s}" for p in ("eq", "gt") for s in "bwd"))
def pcmp(L, insn):
    dst, w, a, c = operands(L, insn)
    t = int_lanes(insn.mnemonic[-1], w)
    pred = "eq" if insn.mnemonic[4:6] == "eq" else "sgt"
    bits = L.b.emit(f"icmp {pred} {t.vt} {vec(L, a, t)}, {vec(L, c, t)}")
    set_vreg(L, dst, unvec(L, L.b.emit(f"sext <{t.n} x i1> {bits} to {t.vt}"), t))


SHIFTS = {"psll": "shl", "psrl": "lshr", "psra": "ashr"}


@semantic(*(k + s for k in SHIFTS for s in ("wdq" if k != "psra" else "wd")))
def pshift(L, insn):
    """Shift every lane by one count: an immediate or the low qword of the source. A count past
    the lane width gives 0 (the sign for psra)."""
    m = insn.mnemonic
    dst, src = insn.ops
    w = width(dst)
    t = int_lanes(m[-1], w)
    if src.kind == "imm":
        imm = Imm8(L, insn)
        count = const(imm.known, 64) if imm.known is not None else imm.field(0, 0xFF)
    else:
        count = source(L, src, w // 8, bits=64)
    over = L.icmp("ugt", 64, count, str(t.bits - 1))
    clamped = L.select(over, 64, str(t.bits - 1), count)
    n = L.cast("trunc", clamped, 64, t.bits)
    vec_n = L.b.emit(f"insertelement {t.vt} poison, {t.ety} {n}, i64 0")
    vec_n = shuffle(L, t, vec_n, "poison", [0] * t.n)
    r = unvec(L, L.b.emit(f"{SHIFTS[m[:4]]} {t.vt} {vec(L, vreg(L, dst), t)}, {vec_n}"), t)
    if m[:4] != "psra":
        r = L.select(over, w, "0", r)
    set_vreg(L, dst, r)


@semantic("pslldq", "psrldq")
def pshift_bytes(L, insn):
    dst = insn.ops[0]
    imm = Imm8(L, insn)
    v = xmm(L, dst)
    shift = "shl" if insn.mnemonic == "pslldq" else "lshr"
    if imm.known is None:          # a count past 15 clears the register
        n = L.cast("zext", L.op("shl", 64, imm.field(0, 0xFF), "3"), 64, 128)
        over = L.icmp("ugt", 64, imm.value, "15")
        r = L.select(over, 128, "0", L.op(shift, 128, v, n))
    elif imm.known >= 16:
        r = "0"
    else:
        r = L.op(shift, 128, v, str(imm.known * 8))
    L.set_xmm(dst.reg, r)


# mnemonic -> (source lanes, result lanes, signed saturation?)
PACKS = {"packsswb": ("w", "b", True), "packssdw": ("d", "w", True), "packuswb": ("w", "b", False)}


@semantic(*PACKS)
def pack(L, insn):
    """Narrow the lanes of destination (low half) and source (high half) with saturation."""
    frm, to, signed = PACKS[insn.mnemonic]
    dst, w, a, c = operands(L, insn)
    t, n = int_lanes(frm, w), int_lanes(to, w)
    both = Lanes(t.n * 2, t.ety, t.bits)
    v = shuffle(L, t, vec(L, a, t), vec(L, c, t), range(2 * t.n))
    lo, hi = ((-1 << (n.bits - 1)), (1 << (n.bits - 1)) - 1) if signed else (0, (1 << n.bits) - 1)
    v = call(L, f"llvm.smax.{both.mangle}", both.vt, (both.vt, v), (both.vt, splat(both, str(lo))))
    v = call(L, f"llvm.smin.{both.mangle}", both.vt, (both.vt, v), (both.vt, splat(both, str(hi))))
    set_vreg(L, dst, unvec(L, L.b.emit(f"trunc {both.vt} {v} to {n.vt}"), n))


UNPACKS = {f"punpck{h}{s}": (h, s[0] if s != "qdq" else "q")
           for h in ("l", "h") for s in ("bw", "wd", "dq", "qdq")}
UNPACKS.update({f"unpck{h}{s}": (h, t) for h in ("l", "h") for s, t in (("ps", PS), ("pd", PD))})


@semantic(*UNPACKS)
def unpack(L, insn):
    """Interleave the low (or high) halves of destination and source lanes."""
    h, t = UNPACKS[insn.mnemonic]
    mm = insn.ops[0].kind == "mm"
    dst, w, a, c = operands(L, insn, 4 if mm and h == "l" else None)
    if isinstance(t, str):
        t = int_lanes(t, w)
    first = 0 if h == "l" else t.n // 2
    idx = [k for i in range(first, first + t.n // 2) for k in (i, i + t.n)]
    set_vreg(L, dst, unvec(L, shuffle(L, t, vec(L, a, t), vec(L, c, t), idx), t))


@semantic("pshufd", "pshuflw", "pshufhw", "pshufw", "shufps", "shufpd")
def pshuf(L, insn):
    """Lanes chosen by 2-bit (shufpd: 1-bit) fields of the immediate."""
    m = insn.mnemonic
    imm = Imm8(L, insn)
    dst, _, a, c = operands(L, insn)
    f = imm.field
    if m == "shufpd":
        t, idx = PD, [f(0, 1), f(1, 1, 2)]
    elif m == "shufps":
        t, idx = PS, [f(0, 3), f(2, 3), f(4, 3, 4), f(6, 3, 4)]
    else:
        if m == "pshufd":
            t, idx = int_lanes("d"), [f(2 * k, 3) for k in range(4)]
        elif m == "pshuflw":
            t, idx = int_lanes("w"), [f(2 * k, 3) for k in range(4)] + [4, 5, 6, 7]
        elif m == "pshufw":
            t, idx = int_lanes("w", 64), [f(2 * k, 3) for k in range(4)]
        else:
            t, idx = int_lanes("w"), [0, 1, 2, 3] + [f(2 * k, 3, 4) for k in range(4)]
        a = c            # the pshufs read only the source
    set_vreg(L, dst, unvec(L, pick_lanes(L, t, vec(L, a, t), vec(L, c, t), idx), t))


@semantic("pextrw")
def pextrw(L, insn):
    """A word of the source (the immediate modulo the lane count), zero-extended."""
    dst, src = insn.ops[:2]
    t = int_lanes("w", width(src))
    word = L.b.emit(f"extractelement {t.vt} {vec(L, vreg(L, src), t)}, "
                    f"i64 {Imm8(L, insn).field(0, t.n - 1)}")
    L.write(dst, L.cast("zext", word, 16, dst.size * 8))
    mmx_read(L, insn)


@semantic("pinsrw")
def pinsrw(L, insn):
    dst, src = insn.ops[:2]
    word = source(L, src, 2, bits=16)
    t = int_lanes("w", width(dst))
    r = L.b.emit(f"insertelement {t.vt} {vec(L, vreg(L, dst), t)}, i16 {word}, "
                 f"i64 {Imm8(L, insn).field(0, t.n - 1)}")
    set_vreg(L, dst, unvec(L, r, t))


@semantic("pmovmskb", "movmskps", "movmskpd")
def movmsk(L, insn):
    """The sign bit of each lane, gathered into the low bits of a general register."""
    dst, src = insn.ops
    t = int_lanes({"pmovmskb": "b", "movmskps": "d", "movmskpd": "q"}[insn.mnemonic],
                  width(src))
    signs = L.b.emit(f"icmp slt {t.vt} {vec(L, vreg(L, src), t)}, zeroinitializer")
    bits = L.b.emit(f"bitcast <{t.n} x i1> {signs} to i{t.n}")
    L.write(dst, L.cast("zext", bits, t.n, dst.size * 8))
    mmx_read(L, insn)


SEGMENT_PREFIXES = {0x64: "fs", 0x65: "gs"}


@semantic("maskmovq", "maskmovdqu")
def maskmov(L, insn):
    """Store the bytes of the first register whose mask byte (in the second) has its top bit
    set, to [rdi] (edi with an address-size prefix; fs/gs overrides honoured); the other bytes
    of memory are left as they were (read and written back: a single-threaded guest cannot
    tell). No alignment is required."""
    src, mask = insn.ops
    w = width(src)
    t = int_lanes("b", w)
    addr = L.get_gpr(7)
    prefixes = insn.raw[:insn.raw.index(0x0F)]
    if 0x67 in prefixes:
        addr = L.cast("zext", L.get_gpr(7, 4), 32, 64)
    seg = next((SEGMENT_PREFIXES[p] for p in prefixes if p in SEGMENT_PREFIXES), None)
    if seg:
        addr = L.op("add", 64, addr, L.b.emit(f"load i64, ptr {L.ptr(seg + '_base')}"))
    value, selector = vreg(L, src), vreg(L, mask)
    n = w // 8
    old = L.load(addr, n)
    pick = L.b.emit(f"icmp slt {t.vt} {vec(L, selector, t)}, zeroinitializer")
    r = L.b.emit(f"select <{t.n} x i1> {pick}, {t.vt} {vec(L, value, t)}, {t.vt} "
                 f"{vec(L, old, t)}")
    L.store(addr, unvec(L, r, t), n)
    mmx_read(L, insn)
