"""Double-precision shifts and rotates through carry: shld, shrd, rcl, rcr.

shld/shrd shift the destination and fill the vacated bits from a second register::

    shld rax, rdx, cl      ; rax = top 64 bits of (rax:rdx << (cl & 63))
    shrd eax, edx, 5       ; eax = low 32 bits of (edx:eax >> 5)
    rcl  al, 3             ; rotate the 9-bit value cf:al left by 3

The count is masked to 5 bits (6 for 64-bit operands), as for the other shifts (shift.py, whose
count and flag helpers are shared): a masked count of zero changes no flag. OF is defined for a
count of one only; like AF it is computed for every count from the count-of-one formula and
declared undefined. At the exact flag model they are set as Intel sets them (shift.undefined_flags):
OF as for the first one-bit step whatever the count, AF cleared by shld/shrd and kept by rcl/rcr,
which keep OF too when they rotate by zero (an 8/16-bit count that is a multiple of 9/17).

16-bit shld/shrd with a masked count above 16 are undefined (result and flags). jitbt does what
Intel processors do: the operand is shifted as the 48-bit concatenation dst:src:dst, so bits of the
destination come back in; tests/test_conformance.py checks those counts separately.

rcl/rcr rotate the (width + 1)-bit value cf:dst; the masked count is taken modulo 9 for 8-bit and
17 for 16-bit operands, so a nonzero masked count may rotate by zero and leave CF as it was.
"""
from . import semantic
from .shift import _count, _set_flags, count_operand, result_flags, undefined_flags


def _funnel(L, m, d, s, cnt, bits):
    """shld/shrd of d with fill bits s by the i8 count `cnt` (already masked).

    32 and 64 bits are LLVM funnel shifts (whose count rule, modulo the width, never applies to a
    masked count). 16 bits are computed at 32 bits on dst:src:dst, so that counts 16..31 give the
    Intel result.
    """
    b = L.b
    w = 32 if bits == 16 else bits
    c = L.cast("zext", cnt, 8, w)
    if bits == 16:
        dz, sz = L.cast("zext", d, 16, 32), L.cast("zext", s, 16, 32)
        dhi = L.op("shl", 32, dz, "16")
        if m == "shld":     # top 16 bits of (dst:src:dst:0 << c)
            hi, lo = L.op("or", 32, dhi, sz), dhi
        else:               # low 16 bits of (dst:src:dst >> c)
            hi, lo = dz, L.op("or", 32, L.op("shl", 32, sz, "16"), dz)
    elif m == "shld":
        hi, lo = d, s
    else:
        hi, lo = s, d
    fn = "fshl" if m == "shld" else "fshr"
    b.use(f"{fn}{w}")
    r = b.emit(f"call i{w} @llvm.{fn}.i{w}(i{w} {hi}, i{w} {lo}, i{w} {c})")
    if bits == 16 and m == "shld":
        r = L.op("lshr", 32, r, "16")
    return L.cast("trunc", r, w, bits)


@semantic("shld", "shrd", writes="cf sf zf pf of", undefined="af of",
          reads="cf sf zf pf of")
def shift_double(L, insn):
    dst, src = insn.ops[0], insn.ops[1]
    bits = dst.size * 8
    mask = 63 if bits == 64 else 31
    cnt, known = count_operand(L, insn.ops[2], bits)
    m = insn.mnemonic
    d, s = L.read(dst), L.read(src)
    res = _funnel(L, m, d, s, cnt, bits)

    def cf():
        # The last bit shifted out: the top (shld) or bottom (shrd) bit of the result one step
        # short (unused when the count is zero).
        before = L.op("and", 8, L.op("sub", 8, cnt, "1"), str(mask))
        prev = _funnel(L, m, d, s, before, bits)
        return L.bit(prev, bits, bits - 1 if m == "shld" else 0)

    def of():       # the sign changed (count one)
        return L.b.emit(f"xor i1 {L.bit(res, bits, bits - 1)}, {L.bit(d, bits, bits - 1)}")

    # one step left brings bit width-2 of the destination into its sign, one step right bit 0 of
    # the source
    into = (lambda: L.bit(d, bits, bits - 2)) if m == "shld" else (lambda: L.bit(s, bits, 0))
    _set_flags(L, known, cnt, {"cf": cf, "of": of, **result_flags(L, res, bits),
                               **undefined_flags(L, d, bits, into)})
    L.write(dst, res)


@semantic("rcl", "rcr", writes="cf of", undefined="of", reads="cf of")
def rotate_carry(L, insn):
    dst = insn.ops[0]
    bits = dst.size * 8
    wide = 128 if bits == 64 else 64
    n1 = bits + 1                       # the rotated value is cf:dst
    cnt, known = _count(L, insn, bits)
    a = L.read(dst)
    cf_in = L.get_flag("cf")
    x = L.op("or", wide, L.cast("zext", a, bits, wide),
             L.op("shl", wide, L.cast("zext", cf_in, 1, wide), str(bits)))
    t = L.cast("zext", cnt, 8, wide)
    if bits < 32:                       # 9- and 17-bit rotates: count modulo the width
        t = L.op("urem", wide, t, str(n1))
    back = L.op("sub", wide, str(n1), t)    # in 1..n1: never a full-width shift
    if insn.mnemonic == "rcl":
        y = L.op("or", wide, L.op("shl", wide, x, t), L.op("lshr", wide, x, back))
    else:
        y = L.op("or", wide, L.op("lshr", wide, x, t), L.op("shl", wide, x, back))
    res = L.cast("trunc", y, wide, bits)

    def msb():
        return L.bit(res, bits, bits - 1)

    def cf():
        return L.bit(y, wide, bits)

    if insn.mnemonic == "rcl":
        def of():       # msb of the result xor the new CF
            return L.b.emit(f"xor i1 {msb()}, {cf()}")
    else:
        def of():       # the two top bits of the result: old msb xor old CF, for a count of one
            return L.b.emit(f"xor i1 {msb()}, {L.bit(res, bits, bits - 2)}")
    # one step brings bit width-2 (rcl) or CF (rcr) into the sign
    into = (lambda: L.bit(a, bits, bits - 2)) if insn.mnemonic == "rcl" else (lambda: cf_in)
    exact = undefined_flags(L, a, bits, into, clears_af=False)
    if exact and bits < 32:     # a rotate by zero keeps OF as well
        first = exact["of"]
        exact["of"] = lambda: L.select(L.icmp("eq", wide, t, "0"), 1, L.get_flag("of"), first())
    _set_flags(L, known, cnt, {"cf": cf, "of": of, **exact})
    L.write(dst, res)
