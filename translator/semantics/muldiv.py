"""Multiply and divide: mul, imul (one, two and three operands), div, idiv.

Products and dividends are formed at twice the operand width (i128 for 64-bit operands; LLVM
lowers 128-bit division to libgcc's __udivti3/__divti3, which codegen makes resolvable). A zero
divisor or a quotient that does not fit raises #DE, which Linux delivers as SIGFPE.

Flags the manual leaves undefined, as the reference CPU (Intel) sets them -- computed at the exact
flag model only: mul and imul set SF and PF from the low half of the product and clear ZF and AF;
div and idiv leave every flag as it was.
"""
from ..irbuilder import const
from ..state import SIGFPE
from . import semantic

UNDEF_MUL = "sf zf af pf"


def _acc(L, bits, high=False):
    """The implicit accumulator: al/ax/eax/rax, or the high half dx/edx/rdx (ah for 8-bit)."""
    if bits == 8:
        return L.get_gpr(0, 1, high)
    return L.get_gpr(2 if high else 0, bits // 8)


def _set_acc(L, bits, lo, hi):
    if bits == 8:   # ax = ah:al
        L.set_gpr(0, lo, 1)
        L.set_gpr(0, hi, 1, high=True)
    else:
        L.set_gpr(0, lo, bits // 8)
        L.set_gpr(2, hi, bits // 8)


def _product_flags(L, lo, bits):
    """SF ZF AF PF of mul/imul (undefined): SF and PF from the low half `lo`, ZF and AF clear."""
    L.set_undefined("sf", lambda: L.icmp("slt", bits, lo, "0"))
    L.set_undefined("pf", lambda: L.parity(lo, bits))
    L.set_undefined("zf af", "0")


@semantic("mul", writes="cf of", undefined=UNDEF_MUL)
def mul(L, insn):
    (src,) = insn.ops
    bits, wide = src.size * 8, src.size * 16
    p = L.op("mul", wide, L.cast("zext", _acc(L, bits), bits, wide),
             L.cast("zext", L.read(src), bits, wide))
    lo = L.cast("trunc", p, wide, bits)
    hi = L.cast("trunc", L.op("lshr", wide, p, str(bits)), wide, bits)
    overflow = L.icmp("ne", bits, hi, "0")
    L.set_flag("cf", overflow)
    L.set_flag("of", overflow)
    _product_flags(L, lo, bits)
    _set_acc(L, bits, lo, hi)


@semantic("imul", writes="cf of", undefined=UNDEF_MUL)
def imul(L, insn):
    ops = insn.ops
    if len(ops) == 1:
        a_op, b_val_op, dst = None, ops[0], None
    elif len(ops) == 2:
        a_op, b_val_op, dst = ops[0], ops[1], ops[0]
    else:
        a_op, b_val_op, dst = ops[1], ops[2], ops[0]
    bits = (b_val_op.size if a_op is None else dst.size) * 8
    wide = bits * 2
    a = _acc(L, bits) if a_op is None else L.read(a_op)
    c = L.read(b_val_op, bits)
    p = L.op("mul", wide, L.cast("sext", a, bits, wide), L.cast("sext", c, bits, wide))
    lo = L.cast("trunc", p, wide, bits)
    overflow = L.icmp("ne", wide, L.cast("sext", lo, bits, wide), p)
    L.set_flag("cf", overflow)
    L.set_flag("of", overflow)
    _product_flags(L, lo, bits)
    if dst is None:
        _set_acc(L, bits, lo, L.cast("trunc", L.op("lshr", wide, p, str(bits)), wide, bits))
    else:
        L.write(dst, lo)


@semantic("div", "idiv", undefined="cf of sf zf af pf")
def div(L, insn):
    (src,) = insn.ops
    bits, wide = src.size * 8, src.size * 16
    signed = insn.mnemonic == "idiv"
    ext = "sext" if signed else "zext"
    here = const(insn.address, 64)
    d = L.read(src)
    L.branch_or_fault(L.icmp("ne", bits, d, "0"), SIGFPE, here)
    if bits == 8:
        n = L.get_gpr(0, 2)
    else:
        hi = L.cast("zext", _acc(L, bits, True), bits, wide)
        lo = L.cast("zext", _acc(L, bits), bits, wide)
        n = L.op("or", wide, L.op("shl", wide, hi, str(bits)), lo)
    wd = L.cast(ext, d, bits, wide)
    if signed:
        # Dividing the most negative dividend by -1 is undefined in LLVM: divide by 1 and negate.
        minus1 = L.icmp("eq", wide, wd, "-1")
        wd = L.select(minus1, wide, "1", wd)
        q = L.op("sdiv", wide, n, wd)
        q = L.select(minus1, wide, L.op("sub", wide, "0", q), q)
        r = L.op("srem", wide, n, wd)
        fits = L.icmp("eq", wide, L.cast("sext", L.cast("trunc", q, wide, bits), bits, wide), q)
    else:
        q = L.op("udiv", wide, n, wd)
        r = L.op("urem", wide, n, wd)
        fits = L.icmp("ult", wide, q, str(1 << bits))
    L.branch_or_fault(fits, SIGFPE, here)
    _set_acc(L, bits, L.cast("trunc", q, wide, bits), L.cast("trunc", r, wide, bits))
