"""Run one SSE floating-point instruction on the host CPU under the guest's MXCSR: the datapath
flag model (``L.lifter.exact_flags``), where MXCSR's exception flags, its rounding control and
DAZ/FTZ must be exactly what the hardware gives.

The host is x86-64, so the guest's instruction itself runs on the operand values, through LLVM
inline assembly, between an ldmxcsr of the guest's MXCSR (its RC, DAZ and FTZ kept, its exception
flags cleared and every exception masked, so nothing can trap in the host process) and a
stmxcsr that collects the exception flags it raised; the host's MXCSR is saved before and
restored after, inside the same asm. ``raise_flags`` then ORs those flags into the guest's MXCSR
(they are sticky) and, when the guest left one of them unmasked, raises SIGFPE at the
instruction before anything else of it is written, as Linux delivers the #XM fault::

    r = xmm_op(L, "addps $2, $0", old, src)      # i128 result; MXCSR flags merged, SIGFPE if
                                                 # an unmasked exception occurred
    n = run(L, "cvtsd2si $1, $0", ("i64", "=r"), ("<2 x i64>", v, "x"))

The operands of `text` (AT&T syntax) are numbered as LLVM numbers them: the output first (if any),
then the inputs in order. An unmasked fault sets the flags of the exceptions detected, but only
the pre-computation ones (invalid, denormal, divide by zero) when one of those is unmasked, as
the hardware does. Not modelled: an exact tiny result raises underflow only when UM is clear
(the host runs with UM set, so such a result neither faults nor flags, as when masked).
"""
from __future__ import annotations

from .. import host
from ..irbuilder import const
from ..state import SIGFPE

MASKS = 0x1F80          # MXCSR bits 7-12: every exception masked
FLAGS = 0x3F            # MXCSR bits 0-5: IE DE ZE OE UE PE
PRE = 0x07              # IE DE ZE: detected before the result is computed
XMM = "<2 x i64>"
CLOBBERS = "~{dirflag},~{fpsr},~{flags},~{memory}"
# The function's MXCSR slot: the value loaded for the instruction at byte 0, the host's saved at
# byte 4, the one stored after the instruction at byte 8.
SLOT_TYPE = "[4 x i32]"


def run(L, text: str, out: tuple[str, str] | None, *ins: tuple[str, str, str]) -> str | None:
    """Run `text` on the host under the guest's MXCSR; `out` is (type, constraint) of its one
    result, each of `ins` (type, value, constraint). Returns the result (None without `out`)
    after merging the exception flags into the guest's MXCSR (raise_flags)."""
    b = L.b
    slot = L.slot("mxcsr", SLOT_TYPE)
    guest = b.emit(f"load i32, ptr {L.ptr('mxcsr')}")
    b.stmt(f"store i32 {L.op('or', 32, L.op('and', 32, guest, const(~FLAGS, 32)), str(MASKS))}, "
           f"ptr {slot}")
    k = f"${len(ins) + (1 if out else 0)}"          # the slot follows every output and input
    asm = (f"stmxcsr 4({k})\\0Aldmxcsr ({k})\\0A{text}\\0Astmxcsr 8({k})\\0Aldmxcsr 4({k})")
    # An output is early-clobber: it must never share a register with the slot's address.
    outs = [out[1].replace("=", "=&") if "&" not in out[1] else out[1]] if out else []
    constraints = ",".join(outs + [c for _, _, c in ins] + ["r", CLOBBERS])
    args = ", ".join([f"{t} {v}" for t, v, _ in ins] + [f"ptr {slot}"])
    rty = out[0] if out else "void"
    call = f'call {rty} asm sideeffect "{asm}", "{constraints}"({args})'
    if out:
        r = b.emit(call)
    else:
        b.stmt(call)
        r = None
    after = b.emit(f"getelementptr i8, ptr {slot}, i64 8")
    raise_flags(L, L.op("and", 32, b.emit(f"load i32, ptr {after}"), str(FLAGS)), guest)
    return r


def raise_flags(L, flags: str, guest: str) -> None:
    """OR the exception `flags` (i32) into the guest's MXCSR (`guest`, its value before the
    instruction); SIGFPE at the instruction when one of them is unmasked there."""
    hit = L.op("and", 32, flags, L.op("xor", 32, L.op("lshr", 32, guest, "7"), "-1"))
    pre = L.icmp("ne", 32, L.op("and", 32, hit, str(PRE)), "0")
    kept = L.select(pre, 32, L.op("and", 32, flags, str(PRE)), flags)
    L.b.stmt(f"store i32 {L.op('or', 32, guest, kept)}, ptr {L.ptr('mxcsr')}")
    L.branch_or_fault(L.icmp("eq", 32, hit, "0"), SIGFPE, const(L.insn.address, 64))


def xmm_op(L, text: str, old: str, src: str) -> str:
    """The common form: `text` computes $0 (tied to the destination's value `old`, i128) from
    itself and $2 (`src`, i128, in an xmm register); the result as i128."""
    a = L.b.emit(f"bitcast i128 {old} to {XMM}")
    c = L.b.emit(f"bitcast i128 {src} to {XMM}")
    r = run(L, text, (XMM, "=x"), (XMM, a, "0"), (XMM, c, "x"))
    return L.b.emit(f"bitcast {XMM} {r} to i128")


def plain_xmm_op(L, text: str, old: str, src: str) -> str:
    """As xmm_op, under the host's MXCSR as it is (round to nearest, every exception masked,
    no DAZ or FTZ) and without collecting flags: the levels below datapath, which define SSE
    arithmetic that way. One host instruction gives x86's own NaN results, which written out
    in IR cost about ten vector operations per instruction. On a host with AVX (code generated
    for it: translator/host.py) the instruction's VEX form, which computes the same from its
    first source ($1, the destination's old value) into a register of its own: no copy to
    keep the old value, and no legacy SSE instruction among the AVX code LLVM generates
    around it (which costs Intel cores a transition or a merge when the upper halves of the
    ymm registers are dirty)."""
    a = L.b.emit(f"bitcast i128 {old} to {XMM}")
    c = L.b.emit(f"bitcast i128 {src} to {XMM}")
    if _vex():
        mnemonic, operands = text.split(" ", 1)
        assert operands.endswith(", $0"), text
        text, constraints = f"v{mnemonic} {operands[:-4]}, $1, $0", "=x,x,x"
    else:
        constraints = "=x,0,x"
    r = L.b.emit(f'call {XMM} asm "{text}", "{constraints}"({XMM} {a}, {XMM} {c})')
    return L.b.emit(f"bitcast {XMM} {r} to i128")


_VEX: bool | None = None


def _vex() -> bool:
    global _VEX
    if _VEX is None:
        _VEX = host.has("avx")
    return _VEX


def as_xmm(L, value: str) -> str:
    """An i128 as the vector type xmm operands are passed in."""
    return L.b.emit(f"bitcast i128 {value} to {XMM}")
