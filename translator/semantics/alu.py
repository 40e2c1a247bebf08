"""Integer ALU instructions: add, adc, sub, sbb, cmp, and, or, xor, test, inc, dec, neg, not."""
from ..irbuilder import const
from . import semantic

ARITH = "cf pf af zf sf of"


@semantic("add", "adc", "sub", "sbb", "cmp", writes=ARITH,
          reads=lambda m: "cf" if m in ("adc", "sbb") else "")
def arith(L, insn):
    dst, src = insn.ops
    bits = dst.size * 8
    a = L.read(dst)
    c = L.read(src, bits)
    m = insn.mnemonic
    carry = L.get_flag("cf") if m in ("adc", "sbb") else None
    if m in ("add", "adc"):
        res = L.add_with_flags(a, c, bits, carry)
    else:
        res = L.sub_with_flags(a, c, bits, carry)
    if m != "cmp":
        L.write(dst, res)


@semantic("and", "or", "xor", "test", writes="cf of sf zf pf", undefined="af")
def logic(L, insn):
    dst, src = insn.ops
    bits = dst.size * 8
    opcode = "and" if insn.mnemonic == "test" else insn.mnemonic
    res = L.op(opcode, bits, L.read(dst), L.read(src, bits))
    L.flags_logic(res, bits)
    if insn.mnemonic != "test":
        L.write(dst, res)


@semantic("inc", "dec", writes="of sf zf af pf")
def incdec(L, insn):
    (dst,) = insn.ops
    bits = dst.size * 8
    a = L.read(dst)
    res = L.op("add" if insn.mnemonic == "inc" else "sub", bits, a, "1")
    edge = (1 << (bits - 1)) if insn.mnemonic == "inc" else (1 << (bits - 1)) - 1
    # inc overflows onto the sign boundary (0x80..0); dec overflows off it (to 0x7f..f).
    L.set_flag("of", L.icmp("eq", bits, res, const(edge, bits)))
    L.flag_af(a, "1", res, bits)
    L.flags_szp(res, bits)
    L.write(dst, res)


@semantic("neg", writes=ARITH)
def neg(L, insn):
    (dst,) = insn.ops
    bits = dst.size * 8
    res = L.sub_with_flags("0", L.read(dst), bits)
    L.write(dst, res)


@semantic("not")
def not_(L, insn):
    (dst,) = insn.ops
    bits = dst.size * 8
    L.write(dst, L.op("xor", bits, L.read(dst), "-1"))
