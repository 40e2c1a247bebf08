"""Bit counting: popcnt, lzcnt, tzcnt (bsf/bsr, the older scans, are in data.py)::

    popcnt rax, rcx        ; rax = number of one bits of rcx; ZF = (rcx == 0)
    lzcnt  eax, ecx        ; eax = leading zeros of ecx (32 when zero); CF = (ecx == 0)
    tzcnt  r9w, word ptr [rbx]

lzcnt and tzcnt are encoded as bsr and bsf with an F3 prefix, which processors without the
feature ignore. What jitbt does follows the CPU model (runtime/cpu.py), so that a guest sees the
processor cpuid describes: lzcnt is claimed (ABM) and counts; BMI1 is not claimed (its other
instructions are VEX-encoded and not implemented), so tzcnt executes as bsf -- which is why
compilers emit it (``rep bsf``) for a count of trailing zeros of a nonzero value: the result is the
same on both. The flags declared for each are those of the behaviour the model selects.
"""
from runtime import cpu

from ..irbuilder import INTRINSICS
from . import semantic
from .data import bitscan

for _n in (16, 32, 64):     # the ctpop declarations this module needs besides the 8-bit one
    INTRINSICS.setdefault(f"ctpop{_n}", f"declare i{_n} @llvm.ctpop.i{_n}(i{_n})")


@semantic("popcnt", writes="cf pf af zf sf of")
def popcnt(L, insn):
    dst, src = insn.ops
    bits = dst.size * 8
    v = L.read(src)
    L.b.use(f"ctpop{bits}")
    n = L.b.emit(f"call i{bits} @llvm.ctpop.i{bits}(i{bits} {v})")
    for name in ("cf", "pf", "af", "sf", "of"):
        L.set_flag(name, "0")
    L.set_flag("zf", L.icmp("eq", bits, v, "0"))
    L.write(dst, n)


def _claimed(mnemonic: str) -> bool:
    """Does the CPU model give lzcnt/tzcnt their own meaning (else they are bsr/bsf)?"""
    return cpu.ABM if mnemonic == "lzcnt" else cpu.BMI1


@semantic("lzcnt", "tzcnt", writes=lambda m: "cf zf" if _claimed(m) else "zf",
          undefined=lambda m: "of sf af pf" if _claimed(m) else "cf of sf af pf")
def count_zeros(L, insn):
    m = insn.mnemonic
    if not _claimed(m):
        return bitscan(L, insn, "bsr" if m == "lzcnt" else "bsf")
    dst, src = insn.ops
    bits = dst.size * 8
    v = L.read(src)
    fn = "ctlz" if m == "lzcnt" else "cttz"
    L.b.use(f"{fn}{bits}")
    n = L.b.emit(f"call i{bits} @llvm.{fn}.i{bits}(i{bits} {v}, i1 false)")   # width when zero
    L.set_flag("cf", L.icmp("eq", bits, v, "0"))
    L.set_flag("zf", L.icmp("eq", bits, n, "0"))
    L.set_undefined("of sf af pf", "0")      # what Intel does with the undefined ones
    L.write(dst, n)
