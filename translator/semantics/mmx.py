"""MMX state and the conversions between mm registers and SSE lanes; emms.

The MMX registers alias the x87 ones: mmI is the low 64 bits of the physical register RI
(``st[I][0]`` in the state), whatever TOP is. Every MMX instruction sets TOP to 0 and marks all
eight registers valid, and a write to mmI sets RI's exponent and sign to all ones; ``emms`` marks
them all empty. The lifter's get_mm/set_mm/enter_mmx do that, and the integer MMX forms are the
SSE2 semantics at 64 bits (sse_int.py, sse.py's moves)::

    paddw mm0, qword ptr [rbx]   ->  sse_int.pairwise on <4 x i16>, then L.set_mm(0, r)
    cvtps2pi mm1, xmm2           ->  two floats rounded by MXCSR.RC, as sse_fp.to_int does

Here: ``emms`` and the conversions cvtpi2ps, cvtpi2pd (two signed dwords to floating point),
cvtps2pi, cvttps2pi, cvtpd2pi, cvttpd2pi (to two dwords, rounded by MXCSR.RC or truncated; NaN and
out-of-range lanes give 0x80000000). A conversion from memory (cvtpi2ps xmm, m64) does not touch
the x87 state; one from an mm register does. At datapath (exact flags) the host converts, with the
xmm instruction that does the same on these lanes (``XMM_TWIN``: the other lanes are zero, which
converts exactly), under the guest's MXCSR (hostexec.py): the exception flags and cvtpi2ps's
rounding are the hardware's. Limitation elsewhere, as for cvtdq2ps: cvtpi2ps rounds to nearest and
the exception flags are not set.
"""
from __future__ import annotations

from . import hostexec, semantic
from .sse import PD, Lanes, merge_low, mmx_read, set_vreg, source, unvec, vec, xmm
from .sse_fp import to_int

DWORDS = Lanes(2, "i32", 32)          # the two lanes of an mm register's conversions
SINGLES = Lanes(2, "float", 32)
XMM_TWIN = {"cvtpi2ps": "cvtdq2ps", "cvtps2pi": "cvtps2dq", "cvttps2pi": "cvttps2dq",
            "cvtpd2pi": "cvtpd2dq", "cvttpd2pi": "cvttpd2dq"}


def on_host(L, insn, value: str, bits: int) -> str:
    """The low qword of the xmm twin of `insn` run on the host on `value` (i`bits`, zero-extended
    to an xmm register), under the guest's MXCSR."""
    src = L.cast("zext", value, bits, 128)
    r = hostexec.xmm_op(L, f"{XMM_TWIN[insn.mnemonic]} $2, $0", "0", src)
    return L.cast("trunc", r, 128, 64)


@semantic("emms")
def emms(L, insn):
    L.enter_mmx(empty=True)


@semantic("cvtpi2ps", "cvtpi2pd")
def cvt_from_pi(L, insn):
    """Two signed dwords to two floats (the low qword of the destination; the rest is kept) or
    two doubles (the whole destination)."""
    dst, src = insn.ops
    value = source(L, src, 8, bits=64)
    ints = vec(L, value, DWORDS)
    if insn.mnemonic == "cvtpi2ps":
        if L.lifter.exact_flags:
            r = on_host(L, insn, value, 64)
        else:
            r = unvec(L, L.b.emit(f"sitofp {DWORDS.vt} {ints} to {SINGLES.vt}"), SINGLES)
        r = merge_low(L, xmm(L, dst), L.cast("zext", r, 64, 128), 64)
    else:
        r = unvec(L, L.b.emit(f"sitofp {DWORDS.vt} {ints} to {PD.vt}"), PD)
    set_vreg(L, dst, r)
    mmx_read(L, insn)


@semantic("cvtps2pi", "cvttps2pi", "cvtpd2pi", "cvttpd2pi")
def cvt_to_pi(L, insn):
    """Two floats (the low qword of the source) or two doubles (all of it; a memory operand must
    be 16-byte aligned) to two signed dwords in an mm register."""
    dst, src = insn.ops
    m = insn.mnemonic
    t = SINGLES if "ps" in m else PD
    value = source(L, src, t.width // 8, bits=t.width)
    if L.lifter.exact_flags:
        set_vreg(L, dst, on_host(L, insn, value, t.width))
        return
    i, r = to_int(L, t, vec(L, value, t), 32, rounding=not m.startswith("cvtt"))
    set_vreg(L, dst, unvec(L, r, i))
