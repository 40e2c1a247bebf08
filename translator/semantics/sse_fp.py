"""SSE/SSE2 floating point: arithmetic, min/max, sqrt, compares, comis/ucomis and conversions.

One semantic a family, generic over the four forms its suffix names (``FORMS``): packed single
(ps), packed double (pd) and the scalar ss/sd, which compute lane 0 only and keep the rest of the
destination. Scalars are computed as whole vectors too (the other lanes are discarded), which keeps
one code path::

    sqrtsd xmm0, qword ptr [rbx]  ->  c = the qword zero-extended, as <2 x double>
                                      r = nan_rules(sqrt c) ; xmm0 = low qword of r, high of xmm0

NaN results follow x86, not LLVM (which promises neither payload nor sign, and may commute
operands): ``nan_rules`` makes a NaN result the first source's NaN, quieted, else the second's,
quieted, else the "default NaN" (negative quiet NaN) that invalid operations (0*inf, inf-inf,
sqrt(-1)) produce. add/sub/mul/div run the host's own instruction instead (one instruction
against about ten vector operations for the rules; hostexec.plain_xmm_op), rounding to nearest. min/max return the second operand when either is NaN or both are zero, exactly
(fcmp + select, not llvm.minnum).

At datapath (the exact flag model, ``L.lifter.exact_flags``) every instruction here but rcp/rsqrt
runs on the host CPU under the guest's MXCSR (``on_host``, translator/semantics/hostexec.py): the
result, comis's RFLAGS and the exception flags (MXCSR bits 0-5, sticky) are the hardware's, under
the guest's rounding control, DAZ and FTZ; an exception the guest left unmasked raises SIGFPE at
the instruction with the destination unchanged. At the other levels the IR below computes them:

Rounding: the conversions that round to an integer (cvtss2si, cvtsd2si, cvtps2dq, cvtpd2dq) honour
MXCSR.RC (bits 13-14) by choosing among roundeven/floor/ceil/trunc; out-of-range and NaN inputs
give the "integer indefinite" value (the sign bit alone). Limitations below datapath, documented
rather than modelled: arithmetic and the inexact conversions between floating formats or from
64-bit integers (cvtsd2ss, cvtpd2ps, cvtsi2ss, cvtsi2sd of a 64-bit integer, cvtdq2ps) always
round to nearest; MXCSR.DAZ/FTZ (denormals-are-zero, flush-to-zero) are ignored; the exception
flags (MXCSR bits 0-5) are never set and unmasked exceptions never fault. The differential tests
use the default rounding for those below datapath.
"""
from __future__ import annotations

import struct

from ..irbuilder import const
from . import hostexec, semantic
from .sse import PD, PS, Lanes, call, merge_low, shuffle, source, splat, unsupported, xmm

# suffix -> (lanes, scalar?)
FORMS = {"ps": (PS, False), "pd": (PD, False), "ss": (PS, True), "sd": (PD, True)}
INTS = {32: Lanes(4, "i32", 32), 64: Lanes(2, "i64", 64)}
QUIET = {32: 1 << 22, 64: 1 << 51}
DEFAULT_NAN = {32: 0xFFC00000, 64: 0xFFF8000000000000}


def fconst(value: float) -> str:
    """A floating constant as LLVM spells it exactly (the double's bits, also for float)."""
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]


def form(insn):
    """(lanes, scalar?) from the mnemonic's suffix."""
    return FORMS[insn.mnemonic[-2:]]


def fsource(L, op, t: Lanes, scalar: bool) -> str:
    """The second operand as i128: a scalar memory operand is one lane (capstone's size is not
    trusted: it says xmmword for comisd)."""
    return source(L, op, t.bits // 8 if scalar else 16)


def on_host(L, insn, src: str, text: str | None = None) -> None:
    """The datapath path (exact flags): the host runs the instruction (or `text`) on the
    destination's value and `src` (i128) under the guest's MXCSR (translator/semantics/
    hostexec.py); the whole result register is the host's."""
    dst = insn.ops[0]
    text = text or insn.mnemonic
    L.set_xmm(dst.reg, hostexec.xmm_op(L, f"{text} $2, $0", xmm(L, dst), src))


def finish(L, dst, t: Lanes, scalar: bool, r: str, old: str) -> None:
    """Write a result vector of lanes `t` to the destination (lane 0 only for a scalar)."""
    v = L.unvec(r, t.vt)
    L.set_xmm(dst.reg, merge_low(L, old, v, t.bits) if scalar else v)


def is_nan(L, t: Lanes, v: str) -> str:
    return L.b.emit(f"fcmp uno {t.vt} {v}, {v}")


def quiet(L, t: Lanes, v: str) -> str:
    i = INTS[t.bits]
    q = L.b.emit(f"or {i.vt} {L.b.emit(f'bitcast {t.vt} {v} to {i.vt}')}, "
                 f"{splat(i, str(QUIET[t.bits]))}")
    return L.b.emit(f"bitcast {i.vt} {q} to {t.vt}")


def nan_rules(L, t: Lanes, r: str, a: str, c: str | None = None) -> str:
    """x86's NaN result for `r` = op(a, c): a's NaN quieted, else c's, else the default NaN."""
    i = INTS[t.bits]
    default = L.b.emit(f"bitcast {i.vt} {splat(i, const(DEFAULT_NAN[t.bits], t.bits))} to {t.vt}")
    pick = default
    for x in (c, a) if c is not None else (a,):
        pick = L.b.emit(f"select <{t.n} x i1> {is_nan(L, t, x)}, "
                        f"{t.vt} {quiet(L, t, x)}, {t.vt} {pick}")
    return L.b.emit(f"select <{t.n} x i1> {is_nan(L, t, r)}, {t.vt} {pick}, {t.vt} {r}")


@semantic(*(op + s for op in ("add", "sub", "mul", "div") for s in FORMS))
def farith(L, insn):
    t, scalar = form(insn)
    dst, src = insn.ops
    if L.lifter.exact_flags:
        return on_host(L, insn, fsource(L, src, t, scalar))
    # The host instruction itself (x86 NaN rules for free), rounding to nearest.
    L.set_xmm(dst.reg, hostexec.plain_xmm_op(L, f"{insn.mnemonic} $2, $0", xmm(L, dst),
                                             fsource(L, src, t, scalar)))


@semantic(*(op + s for op in ("min", "max") for s in FORMS))
def fminmax(L, insn):
    """a < b ? a : b (max: a > b); the second operand for NaNs and for two zeros."""
    t, scalar = form(insn)
    dst, src = insn.ops
    if L.lifter.exact_flags:
        return on_host(L, insn, fsource(L, src, t, scalar))
    old = xmm(L, dst)
    a, c = L.vec(old, t.vt), L.vec(fsource(L, src, t, scalar), t.vt)
    pred = "olt" if insn.mnemonic.startswith("min") else "ogt"
    take_a = L.b.emit(f"fcmp {pred} {t.vt} {a}, {c}")
    finish(L, dst, t, scalar, L.b.emit(f"select <{t.n} x i1> {take_a}, {t.vt} {a}, {t.vt} {c}"),
           old)


@semantic(*("sqrt" + s for s in FORMS))
def fsqrt(L, insn):
    t, scalar = form(insn)
    dst, src = insn.ops
    if L.lifter.exact_flags:
        return on_host(L, insn, fsource(L, src, t, scalar))
    old = xmm(L, dst)
    c = L.vec(fsource(L, src, t, scalar), t.vt)
    r = call(L, f"llvm.sqrt.{t.mangle}", t.vt, (t.vt, c))
    finish(L, dst, t, scalar, nan_rules(L, t, r, c), old)


# cmpps's immediate 0..7, in encoding order (capstone spells it in the mnemonic: cmpltps)
CMP = {"eq": "oeq", "lt": "olt", "le": "ole", "unord": "uno",
       "neq": "une", "nlt": "uge", "nle": "ugt", "ord": "ord"}


# Capstone spells only immediates 0..7 into the mnemonic; a larger one stays an operand, and the
# legacy (non-VEX) encodings use its low three bits. cmpsd is not here: the string instruction
# owns that mnemonic (translator/semantics/string.py).
@semantic(*(f"cmp{p}{s}" for p in CMP for s in FORMS), "cmpps", "cmppd", "cmpss")
def fcmp(L, insn):
    """Each lane all ones where the predicate holds, else zero."""
    t, scalar = form(insn)
    dst, src = insn.ops[:2]
    if len(insn.ops) == 3:
        predicate = list(CMP.values())[insn.ops[2].imm & 7]
    else:
        predicate = CMP[insn.mnemonic[3:-2]]
    if L.lifter.exact_flags:
        name = next(k for k, v in CMP.items() if v == predicate)
        return on_host(L, insn, fsource(L, src, t, scalar), f"cmp{name}{insn.mnemonic[-2:]}")
    old = xmm(L, dst)
    a, c = L.vec(old, t.vt), L.vec(fsource(L, src, t, scalar), t.vt)
    i = INTS[t.bits]
    bits = L.b.emit(f"fcmp {predicate} {t.vt} {a}, {c}")
    mask = L.b.emit(f"sext <{t.n} x i1> {bits} to {i.vt}")
    L.set_xmm(dst.reg, merge_low(L, old, L.unvec(mask, i.vt), t.bits) if scalar
              else L.unvec(mask, i.vt))


def lane0(L, value: str, t: Lanes) -> str:
    """Lane 0 of an i128 as a scalar of the lane type."""
    return L.b.emit(f"bitcast i{t.bits} {L.cast('trunc', value, 128, t.bits)} to {t.ety}")


@semantic("comiss", "comisd", "ucomiss", "ucomisd", writes="zf pf cf of sf af")
def comis(L, insn):
    """Unordered: ZF PF CF = 111; less: CF; equal: ZF; greater: none. OF SF AF cleared. (comis
    and ucomis differ only in which NaNs raise the invalid exception, not modelled.)"""
    t = PS if insn.mnemonic.endswith("ss") else PD
    dst, src = insn.ops
    if L.lifter.exact_flags:        # the host's RFLAGS (lahf, seto) as MXCSR.DAZ makes them
        x = hostexec.as_xmm(L, xmm(L, dst))
        y = hostexec.as_xmm(L, source(L, src, t.bits // 8))
        f = hostexec.run(L, f"{insn.mnemonic} $2, $1\\0Alahf\\0Aseto %al", ("i16", "={ax}"),
                         (hostexec.XMM, x, "x"), (hostexec.XMM, y, "x"))
        for name, bit in (("zf", 14), ("pf", 10), ("cf", 8), ("sf", 15), ("af", 12), ("of", 0)):
            L.set_flag(name, L.bit(f, 16, bit))
        return
    a = lane0(L, xmm(L, dst), t)
    c = lane0(L, source(L, src, t.bits // 8), t)
    unord = L.b.emit(f"fcmp uno {t.ety} {a}, {c}")
    L.set_flag("zf", L.b.emit(f"fcmp ueq {t.ety} {a}, {c}"))
    L.set_flag("pf", unord)
    L.set_flag("cf", L.b.emit(f"fcmp ult {t.ety} {a}, {c}"))
    for f in ("of", "sf", "af"):
        L.set_flag(f, "0")


# ---- conversions ------------------------------------------------------------------------------
def mxcsr_round(L, t: Lanes, v: str) -> str:
    """Round each lane to an integral value the way MXCSR.RC says (nearest even, down, up,
    toward zero)."""
    m = L.b.emit(f"load i32, ptr {L.ptr('mxcsr')}")
    rc = L.op("and", 32, L.op("lshr", 32, m, "13"), "3")
    r = call(L, f"llvm.trunc.{t.mangle}", t.vt, (t.vt, v))
    for code, fn in ((2, "ceil"), (1, "floor"), (0, "roundeven")):
        alt = call(L, f"llvm.{fn}.{t.mangle}", t.vt, (t.vt, v))
        r = L.b.emit(f"select i1 {L.icmp('eq', 32, rc, str(code))}, {t.vt} {alt}, {t.vt} {r}")
    return r


def to_int(L, t: Lanes, v: str, bits: int, rounding: bool) -> tuple[Lanes, str]:
    """Lanes of `t` converted to `bits`-bit integers: truncated, or rounded by MXCSR.RC. NaN
    and out-of-range lanes give the integer indefinite value 1 << (bits - 1)."""
    if rounding:
        v = mxcsr_round(L, t, v)
    i = Lanes(t.n, f"i{bits}", bits)
    lo = -(2.0 ** (bits - 1))
    mantissa = 24 if t.bits == 32 else 53
    # In range: lo - 1 < v < -lo (what truncates into range), or lo <= v when lo - 1 rounds to lo.
    low_ok = (f"fcmp ogt {t.vt} {v}, {splat(t, fconst(lo - 1))}" if bits < mantissa
              else f"fcmp oge {t.vt} {v}, {splat(t, fconst(lo))}")
    ok = L.b.emit(f"and <{t.n} x i1> {L.b.emit(low_ok)}, "
                  f"{L.b.emit(f'fcmp olt {t.vt} {v}, {splat(t, fconst(-lo))}')}")
    safe = L.b.emit(f"select <{t.n} x i1> {ok}, {t.vt} {v}, {t.vt} zeroinitializer")
    n = L.b.emit(f"fptosi {t.vt} {safe} to {i.vt}")
    indefinite = splat(i, const(1 << (bits - 1), bits))
    return i, L.b.emit(f"select <{t.n} x i1> {ok}, {i.vt} {n}, {i.vt} {indefinite}")


@semantic("cvtss2si", "cvtsd2si", "cvttss2si", "cvttsd2si")
def cvt_to_gpr(L, insn):
    t = PS if insn.mnemonic[-4] == "s" else PD        # cvt(t)ss2si / cvt(t)sd2si
    dst, src = insn.ops
    bits = dst.size * 8
    if L.lifter.exact_flags:
        v = hostexec.as_xmm(L, source(L, src, t.bits // 8))
        return L.write(dst, hostexec.run(L, f"{insn.mnemonic} $1, $0", (f"i{bits}", "=r"),
                                         (hostexec.XMM, v, "x")))
    v = L.vec(source(L, src, t.bits // 8), t.vt)
    i, r = to_int(L, t, v, bits, rounding=not insn.mnemonic.startswith("cvtt"))
    L.write(dst, L.b.emit(f"extractelement {i.vt} {r}, i64 0"))


@semantic("cvtps2dq", "cvttps2dq", "cvtpd2dq", "cvttpd2dq")
def cvt_to_dq(L, insn):
    t = PS if "ps" in insn.mnemonic else PD
    dst, src = insn.ops
    if L.lifter.exact_flags:
        return on_host(L, insn, source(L, src))
    v = L.vec(source(L, src), t.vt)
    i, r = to_int(L, t, v, 32, rounding=not insn.mnemonic.startswith("cvtt"))
    if t.n == 2:                       # two dwords, the high qword zeroed
        r = shuffle(L, i, r, "zeroinitializer", range(4))
    L.set_xmm(dst.reg, L.unvec(r, INTS[32].vt))


@semantic("cvtsi2ss", "cvtsi2sd")
def cvt_from_gpr(L, insn):
    t = PS if insn.mnemonic.endswith("ss") else PD
    dst, src = insn.ops
    if src.kind == "xmm":
        unsupported("cvtsi2s* takes a general register or memory")
    bits = src.size * 8
    if L.lifter.exact_flags:
        text = f"{insn.mnemonic}{'q' if bits == 64 else 'l'} $2, $0"
        old = hostexec.as_xmm(L, xmm(L, dst))
        r = hostexec.run(L, text, (hostexec.XMM, "=x"), (hostexec.XMM, old, "0"),
                         (f"i{bits}", L.read(src), "r"))
        return L.set_xmm(dst.reg, L.b.emit(f"bitcast {hostexec.XMM} {r} to i128"))
    f = L.b.emit(f"sitofp i{bits} {L.read(src)} to {t.ety}")
    old = xmm(L, dst)
    r = L.b.emit(f"insertelement {t.vt} {L.vec(old, t.vt)}, {t.ety} {f}, i64 0")
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


@semantic("cvtdq2ps", "cvtdq2pd")
def cvt_from_dq(L, insn):
    t = PS if insn.mnemonic.endswith("ps") else PD
    dst, src = insn.ops
    i = INTS[32]
    if L.lifter.exact_flags:
        return on_host(L, insn, source(L, src, 16 if t.n == 4 else 8))
    v = L.vec(source(L, src, 16 if t.n == 4 else 8), i.vt)
    if t.n == 2:
        v = shuffle(L, i, v, v, (0, 1))
    r = L.b.emit(f"sitofp <{t.n} x i32> {v} to {t.vt}")
    L.set_xmm(dst.reg, L.unvec(r, t.vt))


def nan_convert(L, frm: Lanes, to: Lanes, v: str, r: str) -> str:
    """x86's NaN for a float<->double conversion of `v` (result `r`): the sign and the top of
    the payload carried over, quieted."""
    b = L.b
    fi, ti = Lanes(frm.n, f"i{frm.bits}", frm.bits), Lanes(to.n, f"i{to.bits}", to.bits)

    def op(code: str, t: Lanes, x: str, c: int) -> str:
        return b.emit(f"{code} {t.vt} {x}, {splat(t, const(c, t.bits))}")

    def trunc(x: str) -> str:
        return b.emit(f"trunc {fi.vt} {x} to {ti.vt}")

    bits = b.emit(f"bitcast {frm.vt} {v} to {fi.vt}")
    if to.bits > frm.bits:              # float -> double: payload moves up 29 bits
        w = b.emit(f"zext {fi.vt} {bits} to {ti.vt}")
        sign = op("and", ti, op("shl", ti, w, 32), 1 << 63)
        payload = op("shl", ti, op("and", ti, w, 0x7FFFFF), 29)
        top = 0x7FF8 << 48
    else:                               # double -> float: the payload's top 23 bits
        sign = op("and", ti, trunc(op("lshr", fi, bits, 32)), 1 << 31)
        payload = op("and", ti, trunc(op("lshr", fi, bits, 29)), 0x7FFFFF)
        top = 0x7FC00000
    n = op("or", ti, b.emit(f"or {ti.vt} {sign}, {payload}"), top)
    n = b.emit(f"bitcast {ti.vt} {n} to {to.vt}")
    return b.emit(f"select <{to.n} x i1> {is_nan(L, frm, v)}, {to.vt} {n}, {to.vt} {r}")


@semantic("cvtss2sd", "cvtsd2ss", "cvtps2pd", "cvtpd2ps")
def cvt_float(L, insn):
    m = insn.mnemonic
    scalar = m in ("cvtss2sd", "cvtsd2ss")
    frm, to = (PS, PD) if m in ("cvtss2sd", "cvtps2pd") else (PD, PS)
    dst, src = insn.ops
    size = frm.bits // 8 if scalar else (8 if frm is PS else 16)
    if L.lifter.exact_flags:
        return on_host(L, insn, source(L, src, size))
    v = L.vec(source(L, src, size), frm.vt)
    two = Lanes(2, frm.ety, frm.bits)
    if frm is PS:
        v = shuffle(L, frm, v, v, (0, 1))
    op = "fpext" if frm is PS else "fptrunc"
    to2 = Lanes(2, to.ety, to.bits)
    r = L.b.emit(f"{op} {two.vt} {v} to {to2.vt}")
    r = nan_convert(L, two, to2, v, r)
    if to is PS:
        r = shuffle(L, to2, r, "zeroinitializer", range(4))
    r = L.unvec(r, to.vt)
    L.set_xmm(dst.reg, merge_low(L, xmm(L, dst), r, to.bits) if scalar else r)


@semantic("rcpps", "rcpss", "rsqrtps", "rsqrtss")
def approximate(L, insn):
    """The approximate reciprocal and reciprocal square root. Their results are the CPU's own
    approximation (Intel and AMD differ), so the host runs the instruction itself on the lanes;
    the scalar forms keep the upper lanes of the destination."""
    t, scalar = FORMS["ps"][0], insn.mnemonic.endswith("ss")
    dst, src = insn.ops
    old = xmm(L, dst)
    c = L.vec(fsource(L, src, t, scalar), t.vt)
    op = insn.mnemonic[:-2] + "ps"
    r = L.b.emit(f'call {t.vt} asm "{op} $1, $0", "=x,x"({t.vt} {c})')
    finish(L, dst, t, scalar, r, old)
