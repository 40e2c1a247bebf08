"""Read-modify-write instructions used for synchronisation: cmpxchg, xadd, cmpxchg8b,
cmpxchg16b. A guest runs one thread today, so the lock prefix changes nothing; when threads
arrive these become LLVM atomics."""
from ..state import SIGSEGV
from . import semantic

ARITH = "cf pf af zf sf of"


@semantic("cmpxchg", writes=ARITH)
def cmpxchg(L, insn):
    dst, src = insn.ops
    size, bits = dst.size, dst.size * 8
    acc = L.get_gpr(0, size)
    old = L.read(dst)
    L.sub_with_flags(acc, old, bits)             # flags as cmp accumulator, destination
    equal = L.icmp("eq", bits, acc, old)
    new = L.select(equal, bits, L.read(src), old)
    if dst.kind == "mem":
        L.write(dst, new)                        # memory is written either way
    else:
        # A register destination is written only when equal (so a 32-bit one is zero-extended
        # only then); the accumulator is loaded only when different.
        full = L.get_gpr(dst.reg)
        wide = L.cast("zext", new, bits, 64) if size == 4 else None
        if size == 4:
            L.set_gpr(dst.reg, L.select(equal, 64, wide, full))
        else:
            L.write(dst, new)
    acc_full = L.get_gpr(0)
    if size == 4:
        L.set_gpr(0, L.select(equal, 64, acc_full, L.cast("zext", old, 32, 64)))
    else:
        L.set_gpr(0, L.select(equal, bits, acc, old), size)


@semantic("xadd", writes=ARITH)
def xadd(L, insn):
    dst, src = insn.ops
    bits = dst.size * 8
    a, c = L.read(dst), L.read(src)
    total = L.add_with_flags(a, c, bits)
    L.write(src, a)
    L.write(dst, total)


@semantic("cmpxchg8b", "cmpxchg16b", writes="zf")
def cmpxchg_double(L, insn):
    (dst,) = insn.ops
    half = 8 if insn.mnemonic == "cmpxchg16b" else 4
    bits = half * 16
    addr = L.ea(dst)
    if half == 8:     # cmpxchg16b needs a 16-byte aligned operand (#GP otherwise)
        low = L.op("and", 64, addr, "15")
        L.branch_or_fault(L.icmp("eq", 64, low, "0"), SIGSEGV, "0")

    def pair(hi_reg, lo_reg):
        hi = L.cast("zext", L.get_gpr(hi_reg, half), half * 8, bits)
        lo = L.cast("zext", L.get_gpr(lo_reg, half), half * 8, bits)
        return L.op("or", bits, L.op("shl", bits, hi, str(half * 8)), lo)

    old = L.load(addr, half * 2)
    expected = pair(2, 0)                      # rdx:rax
    equal = L.icmp("eq", bits, old, expected)
    L.set_flag("zf", equal)
    L.store(addr, L.select(equal, bits, pair(1, 3), old), half * 2)   # rcx:rbx when equal
    lo = L.cast("trunc", old, bits, half * 8)
    hi = L.cast("trunc", L.op("lshr", bits, old, str(half * 8)), bits, half * 8)
    for reg, part in ((0, lo), (2, hi)):
        full = L.get_gpr(reg)
        loaded = L.cast("zext", part, half * 8, 64)
        L.set_gpr(reg, L.select(equal, 64, full, loaded))
