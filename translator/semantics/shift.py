"""Shifts and rotates: shl/sal, shr, sar, rol, ror.

The count is masked to 5 bits (6 for 64-bit operands). A masked count of zero changes no flag,
but the destination is still written (so a 32-bit register is still zero-extended). The manual
defines OF only for a count of 1; we compute it from the same formula for every count and list it
as undefined, like AF. At the exact flag model (datapath) they are set as Intel processors set them
for every nonzero count (``undefined_flags``): OF as for the first one-bit step, AF cleared by the
shifts and kept by the rotates -- except that rol/ror of a register by an immediate count other
than one keep OF (of a memory operand they do not).
"""
from ..irbuilder import IRValue
from . import semantic


def count_operand(L, op, bits):
    """A shift count operand masked to 5 bits (6 for 64-bit operands), as an i8 value, and the
    count when it is a known constant (an immediate), else None. An interpreter handler's
    immediate is read from its record (an IRValue): masked at run time like cl, so one handler
    serves every count (a shift by an immediate and by cl differ in nothing else)."""
    mask = 63 if bits == 64 else 31
    if op.kind == "imm" and not isinstance(op.imm, IRValue):
        n = op.imm & mask
        return str(n), n
    c = L.read(op, 8) if op.kind == "imm" else L.cast("trunc", L.read(op), op.size * 8, 8)
    return L.op("and", 8, c, str(mask)), None


def _count(L, insn, bits):
    """The masked count as an i8 value, and whether it is a known constant."""
    if len(insn.ops) == 1:
        return "1", 1
    return count_operand(L, insn.ops[1], bits)


def result_flags(L, res: str, bits: int) -> dict:
    """ZF, SF and PF of a shift's result, as makers for _set_flags (computed only when live)."""
    return {"zf": lambda: L.icmp("eq", bits, res, "0"),
            "sf": lambda: L.icmp("slt", bits, res, "0"), "pf": lambda: L.parity(res, bits)}


def undefined_flags(L, a: str, bits: int, into_sign, clears_af: bool = True) -> dict:
    """The undefined flags of a shift or rotate by a nonzero count as Intel sets them, as makers
    for _set_flags -- at the exact flag model only (empty otherwise). OF is that of the first
    one-bit step whatever the count: the sign of the operand `a` xor `into_sign()`, the bit the
    step moves into the sign ("false" when a zero comes in). Shifts clear AF; rotates keep it."""
    if not L.lifter.exact_flags:
        return {}

    def of():
        sign, into = L.bit(a, bits, bits - 1), into_sign()
        return sign if into == "false" else L.b.emit(f"xor i1 {sign}, {into}")

    return {"of": of, "af": lambda: "0"} if clears_af else {"of": of}


def _set_flags(L, known, cnt, flags: dict):
    """Set the live flags from `flags` (name -> function making the i1 value, or None for a flag
    kept) unless the count is zero (decided at run time when unknown)."""
    live = [name for name in flags if flags[name] is not None and L.wants(name)]
    if known == 0 or not live:
        return
    zero = L.icmp("eq", 8, cnt, "0") if known is None else None
    for name in live:
        value = flags[name]()
        if zero is not None:
            value = L.select(zero, 1, L.get_flag(name), value)
        L.set_flag(name, value)


# A count that may be zero keeps the old flags: the shifts read what they write.
@semantic("shl", "sal", "shr", "sar", writes="cf sf zf pf of", undefined="af of",
          reads="cf sf zf pf of")
def shift(L, insn):
    dst = insn.ops[0]
    bits = dst.size * 8
    wide = 128 if bits == 64 else 64
    cnt, known = _count(L, insn, bits)
    a = L.read(dst)
    wcnt = L.cast("zext", cnt, 8, wide)
    m = insn.mnemonic
    if m in ("shl", "sal"):
        w = L.op("shl", wide, L.cast("zext", a, bits, wide), wcnt)
        res = L.cast("trunc", w, wide, bits)

        def cf():
            return L.bit(w, wide, bits)

        def of():
            return L.b.emit(f"xor i1 {L.bit(res, bits, bits - 1)}, {cf()}")
    else:
        ext = "zext" if m == "shr" else "sext"
        shift_op = "lshr" if m == "shr" else "ashr"
        wa = L.cast(ext, a, bits, wide)
        res = L.cast("trunc", L.op(shift_op, wide, wa, wcnt), wide, bits)

        def cf():
            # The last bit shifted out: bit count-1 of the operand (unused when count is 0).
            before = L.op("and", wide, L.op("sub", wide, wcnt, "1"), str(wide - 1))
            return L.bit(L.op(shift_op, wide, wa, before), wide, 0)

        def of():
            return L.bit(a, bits, bits - 1) if m == "shr" else "false"
    into = {"shr": lambda: "false", "sar": lambda: L.bit(a, bits, bits - 1)}.get(
        m, lambda: L.bit(a, bits, bits - 2))
    _set_flags(L, known, cnt, {"cf": cf, "of": of, **result_flags(L, res, bits),
                               **undefined_flags(L, a, bits, into)})
    L.write(dst, res)


@semantic("rol", "ror", writes="cf of", undefined="of", reads="cf of")
def rotate(L, insn):
    dst = insn.ops[0]
    bits = dst.size * 8
    cnt, known = _count(L, insn, bits)
    a = L.read(dst)
    amount = L.cast("zext", cnt, 8, bits) if bits > 8 else cnt
    # Funnel shifts take the amount modulo the width, exactly the rotate count rule.
    fn = "fshl" if insn.mnemonic == "rol" else "fshr"
    L.b.use(f"{fn}{bits}")
    res = L.b.emit(f"call i{bits} @llvm.{fn}.i{bits}(i{bits} {a}, i{bits} {a}, i{bits} {amount})")
    def msb():
        return L.bit(res, bits, bits - 1)

    if insn.mnemonic == "rol":
        def cf():
            return L.bit(res, bits, 0)

        def of():
            return L.b.emit(f"xor i1 {msb()}, {cf()}")
    else:
        cf = msb

        def of():
            return L.b.emit(f"xor i1 {msb()}, {L.bit(res, bits, bits - 2)}")
    def into():     # one step left brings bit width-2 into the sign, one step right bit 0
        return L.bit(a, bits, bits - 2 if insn.mnemonic == "rol" else 0)

    exact = undefined_flags(L, a, bits, into, clears_af=False)
    if exact and dst.kind == "reg" and insn.ops[1:] and insn.ops[1].kind == "imm" \
            and known is None:
        # An immediate count read at run time: whether OF is kept depends on it, which the
        # exact flag model decides when lifting (its handlers are per encoding).
        raise TypeError("a rotate's undefined OF depends on its immediate count")
    if exact and dst.kind == "reg" and known not in (None, 1):
        exact = {"of": None}    # Intel: a register rotated by an immediate other than 1 keeps OF
    _set_flags(L, known, cnt, {"cf": cf, "of": of, **exact})
    L.write(dst, res)
