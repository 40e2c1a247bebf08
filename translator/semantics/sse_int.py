"""SSE2 packed integer instructions, and the bitwise and shuffle ones shared with floating point.

Each family is one semantic generic over the lane width, which the mnemonic's suffix names
(``b w d q dq`` -> ``INT`` in sse.py); the operation itself comes from a table::

    paddsw xmm0, xmm1     ->  PAIRWISE["paddsw"] = ("@sadd.sat", "w")
                              call <8 x i16> @llvm.sadd.sat.v8i16(<8 x i16> a, <8 x i16> c)

Also here: the logical operations on whole registers (pand, andps, ...), comparisons, shifts by
an immediate or by a register count (counts past the lane width give 0, or the sign for psra),
byte shifts of the whole register, packs with saturation, unpacks (the integer and the
floating-point ones), pshufd/pshuflw/pshufhw, shufps/shufpd, pextrw/pinsrw and the sign-mask
moves pmovmskb/movmskps/movmskpd.
"""
from __future__ import annotations

from ..irbuilder import const
from . import semantic
from .sse import INT, PD, PS, Lanes, call, imm8, shuffle, source, splat, xmm

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


def operands(L, insn):
    """The destination register and the source, both i128."""
    dst, src = insn.ops[:2]
    return dst, xmm(L, dst), source(L, src)


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
    t = INT[suffix]
    dst, a, c = operands(L, insn)
    r = lanewise(L, opcode, t, L.vec(a, t.vt), L.vec(c, t.vt))
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


def widen(L, t: Lanes, v: str, kind: str) -> tuple[Lanes, str]:
    """Each lane sign- or zero-extended to twice its width."""
    w = Lanes(t.n, f"i{t.bits * 2}", t.bits * 2)
    return w, L.b.emit(f"{kind} {t.vt} {v} to {w.vt}")


@semantic("pmulhw", "pmulhuw", "pavgb", "pavgw")
def widened(L, insn):
    """Lanes computed at twice their width: the high half of a product, the rounded average."""
    m = insn.mnemonic
    t = INT[m[-1]]
    dst, a, c = operands(L, insn)
    kind = "sext" if m == "pmulhw" else "zext"
    w, wa = widen(L, t, L.vec(a, t.vt), kind)
    _, wc = widen(L, t, L.vec(c, t.vt), kind)
    if m.startswith("pmulh"):
        r = L.b.emit(f"mul {w.vt} {wa}, {wc}")
        r = L.b.emit(f"lshr {w.vt} {r}, {splat(w, str(t.bits))}")
    else:
        r = L.b.emit(f"add {w.vt} {wa}, {wc}")
        r = L.b.emit(f"add {w.vt} {r}, {splat(w, '1')}")
        r = L.b.emit(f"lshr {w.vt} {r}, {splat(w, '1')}")
    r = L.b.emit(f"trunc {w.vt} {r} to {t.vt}")
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


@semantic("pmuludq", "pmaddwd", "psadbw")
def reducing(L, insn):
    """Products and sums that combine lanes into wider ones."""
    m = insn.mnemonic
    dst, a, c = operands(L, insn)
    b = L.b
    if m == "pmuludq":       # low dword of each qword, full 64-bit product
        q = INT["q"]
        low = splat(q, str(0xFFFFFFFF))
        x = b.emit(f"and {q.vt} {L.vec(a, q.vt)}, {low}")
        y = b.emit(f"and {q.vt} {L.vec(c, q.vt)}, {low}")
        L.set_xmm(dst.reg, L.unvec(b.emit(f"mul {q.vt} {x}, {y}"), q.vt))
        return
    if m == "pmaddwd":       # signed word products, adjacent pairs summed into dwords
        t = INT["w"]
        w, x = widen(L, t, L.vec(a, t.vt), "sext")
        _, y = widen(L, t, L.vec(c, t.vt), "sext")
        p = b.emit(f"mul {w.vt} {x}, {y}")
        d = INT["d"]
        even = shuffle(L, w, p, p, range(0, 8, 2))
        odd = shuffle(L, w, p, p, range(1, 8, 2))
        L.set_xmm(dst.reg, L.unvec(b.emit(f"add {d.vt} {even}, {odd}"), d.vt))
        return
    # psadbw: sum of absolute byte differences of each qword, in the low word of the qword
    t = INT["b"]
    w, x = widen(L, t, L.vec(a, t.vt), "zext")
    _, y = widen(L, t, L.vec(c, t.vt), "zext")
    diff = b.emit(f"sub {w.vt} {x}, {y}")
    absd = call(L, f"llvm.abs.{w.mangle}", w.vt, (w.vt, diff), ("i1", "false"))
    h = Lanes(8, "i16", 16)
    sums = [call(L, f"llvm.vector.reduce.add.{h.mangle}", "i16",
                 (h.vt, shuffle(L, w, absd, absd, range(k, k + 8)))) for k in (0, 8)]
    lo, hi = (L.cast("zext", s, 16, 128) for s in sums)
    L.set_xmm(dst.reg, L.op("or", 128, lo, L.op("shl", 128, hi, "64")))


@semantic(*(f"pcmp{p}{s}" for p in ("eq", "gt") for s in "bwd"))
def pcmp(L, insn):
    t = INT[insn.mnemonic[-1]]
    dst, a, c = operands(L, insn)
    pred = "eq" if insn.mnemonic[4:6] == "eq" else "sgt"
    bits = L.b.emit(f"icmp {pred} {t.vt} {L.vec(a, t.vt)}, {L.vec(c, t.vt)}")
    r = L.b.emit(f"sext <{t.n} x i1> {bits} to {t.vt}")
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


SHIFTS = {"psll": "shl", "psrl": "lshr", "psra": "ashr"}


@semantic(*(k + s for k in SHIFTS for s in ("wdq" if k != "psra" else "wd")))
def pshift(L, insn):
    """Shift every lane by one count: an immediate or the low qword of the source. A count past
    the lane width gives 0 (the sign for psra)."""
    m = insn.mnemonic
    t = INT[m[-1]]
    dst, src = insn.ops
    if src.kind == "imm":
        count = const(src.imm & 0xFF, 64)
    else:
        count = L.cast("trunc", source(L, src), 128, 64)
    over = L.icmp("ugt", 64, count, str(t.bits - 1))
    clamped = L.select(over, 64, str(t.bits - 1), count)
    n = L.cast("trunc", clamped, 64, t.bits)
    vec_n = L.b.emit(f"insertelement {t.vt} poison, {t.ety} {n}, i64 0")
    vec_n = shuffle(L, t, vec_n, "poison", [0] * t.n)
    v = L.b.emit(f"{SHIFTS[m[:4]]} {t.vt} {L.vec(xmm(L, dst), t.vt)}, {vec_n}")
    r = L.unvec(v, t.vt)
    if m[:4] != "psra":
        r = L.select(over, 128, "0", r)
    L.set_xmm(dst.reg, r)


@semantic("pslldq", "psrldq")
def pshift_bytes(L, insn):
    dst = insn.ops[0]
    n = min(imm8(insn), 16) * 8
    v = xmm(L, dst)
    if n == 128:
        r = "0"
    else:
        r = L.op("shl" if insn.mnemonic == "pslldq" else "lshr", 128, v, str(n))
    L.set_xmm(dst.reg, r)


# mnemonic -> (source lanes, result lanes, signed saturation?)
PACKS = {"packsswb": ("w", "b", True), "packssdw": ("d", "w", True), "packuswb": ("w", "b", False)}


@semantic(*PACKS)
def pack(L, insn):
    """Narrow the lanes of destination (low half) and source (high half) with saturation."""
    frm, to, signed = PACKS[insn.mnemonic]
    t, n = INT[frm], INT[to]
    dst, a, c = operands(L, insn)
    both = Lanes(t.n * 2, t.ety, t.bits)
    v = shuffle(L, t, L.vec(a, t.vt), L.vec(c, t.vt), range(2 * t.n))
    lo, hi = ((-1 << (n.bits - 1)), (1 << (n.bits - 1)) - 1) if signed else (0, (1 << n.bits) - 1)
    v = call(L, f"llvm.smax.{both.mangle}", both.vt, (both.vt, v), (both.vt, splat(both, str(lo))))
    v = call(L, f"llvm.smin.{both.mangle}", both.vt, (both.vt, v), (both.vt, splat(both, str(hi))))
    r = L.b.emit(f"trunc {both.vt} {v} to {n.vt}")
    L.set_xmm(dst.reg, L.unvec(r, n.vt))


UNPACKS = {f"punpck{h}{s}": (h, INT[s[0] if s != "qdq" else "q"])
           for h in ("l", "h") for s in ("bw", "wd", "dq", "qdq")}
UNPACKS.update({f"unpck{h}{s}": (h, t) for h in ("l", "h") for s, t in (("ps", PS), ("pd", PD))})


@semantic(*UNPACKS)
def unpack(L, insn):
    """Interleave the low (or high) halves of destination and source lanes."""
    h, t = UNPACKS[insn.mnemonic]
    dst, a, c = operands(L, insn)
    first = 0 if h == "l" else t.n // 2
    idx = [k for i in range(first, first + t.n // 2) for k in (i, i + t.n)]
    r = shuffle(L, t, L.vec(a, t.vt), L.vec(c, t.vt), idx)
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


@semantic("pshufd", "pshuflw", "pshufhw", "shufps", "shufpd")
def pshuf(L, insn):
    """Lanes chosen by 2-bit (shufpd: 1-bit) fields of the immediate."""
    m = insn.mnemonic
    imm = imm8(insn)
    dst, a, c = operands(L, insn)
    if m == "shufpd":
        t, idx = PD, [imm & 1, 2 + (imm >> 1 & 1)]
    elif m == "shufps":
        t, idx = PS, [imm & 3, imm >> 2 & 3, 4 + (imm >> 4 & 3), 4 + (imm >> 6 & 3)]
    else:
        sel = [imm >> (2 * k) & 3 for k in range(4)]
        if m == "pshufd":
            t, idx = INT["d"], sel
        elif m == "pshuflw":
            t, idx = INT["w"], sel + [4, 5, 6, 7]
        else:
            t, idx = INT["w"], [0, 1, 2, 3] + [4 + s for s in sel]
        a = c            # the pshufs read only the source
    r = shuffle(L, t, L.vec(a, t.vt), L.vec(c, t.vt), idx)
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


@semantic("pextrw")
def pextrw(L, insn):
    dst, src = insn.ops[:2]
    w = L.op("lshr", 128, xmm(L, src), str(16 * (imm8(insn) & 7)))
    L.write(dst, L.cast("zext", L.cast("trunc", w, 128, 16), 16, dst.size * 8))


@semantic("pinsrw")
def pinsrw(L, insn):
    dst, src = insn.ops[:2]
    word = L.cast("trunc", source(L, src, 2), 128, 16)
    t = INT["w"]
    r = L.b.emit(f"insertelement {t.vt} {L.vec(xmm(L, dst), t.vt)}, i16 {word}, "
                 f"i64 {imm8(insn) & 7}")
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


@semantic("pmovmskb", "movmskps", "movmskpd")
def movmsk(L, insn):
    """The sign bit of each lane, gathered into the low bits of a general register."""
    dst, src = insn.ops
    t = {"pmovmskb": INT["b"], "movmskps": INT["d"], "movmskpd": INT["q"]}[insn.mnemonic]
    signs = L.b.emit(f"icmp slt {t.vt} {L.vec(xmm(L, src), t.vt)}, zeroinitializer")
    bits = L.b.emit(f"bitcast <{t.n} x i1> {signs} to i{t.n}")
    L.write(dst, L.cast("zext", bits, t.n, dst.size * 8))
