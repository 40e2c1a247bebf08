"""x87 FPU: the register stack, loads and stores, arithmetic, compares and compares into RFLAGS.

What it is for: ``long double`` as glibc and musl use it (musl formats every double through long
double). The eight physical registers live in the state (translator/state.py, ``st``); ST(i) is
R[(TOP + i) & 7]. Values are loaded as ``x86_fp80`` for arithmetic and as ``i80`` for moves that
must keep every bit (fld m80, fld st(i), fxch, fstp m80)::

    fld qword ptr [rbx]   ->  v = fpext double [rbx] to x86_fp80 ; TOP -= 1 ; ST(0) = v
    faddp st(1)           ->  ST(1) = host "fadd" of ST(1), ST(0) ; C1 from the host ; pop

Arithmetic, square root, fscale, fprem/fprem1, fxtract, the transcendental instructions and the
fst/fstp conversions to m32/m64 run the host's own x87 instruction on the values through inline
assembly (``native``), under the guest's control word: the asm saves the host's CW, loads the
guest's (every exception kept masked), runs the instruction and restores the host's, so precision
control (CW bits 8-9) and rounding control (bits 10-11) act exactly as on the hardware. The host
is x86-64, so results, the C1 round-up indicator and fprem's quotient bits are the hardware's, bit
for bit; the host's exception flags (IE..PE) are ORed into the guest status word. Operand order is
kept (destination in st, source in st(1)) so the NaN a two-NaN operation returns is the one the
guest's instruction would return. Loads never round (fld m32/m64 and fild are exact in the 80-bit
format, and CW.PC does not apply to them).

Integer stores (fist, fistp, fisttp) and frndint round by CW.RC explicitly; an
integer store out of range or of a NaN writes the integer indefinite (the sign bit alone).
fldpi/fldl2e/fldl2t/fldlg2/fldln2 round their constant by CW.RC as the hardware does.

At datapath (the exact flag model) the loads fld m32/m64, the memory-operand arithmetic, the
compares (fcom, fucom, ficom, ftst, fcomi, fucomi and their popping forms), the integer stores
and frndint run on the host too, so that every exception flag (IE..PE, with DE and IE of a memory
operand) and C0-C3 are the hardware's. An exception flagged while its mask bit is clear in the CW
sets ES and B, and the next waiting x87 instruction (all but the fn* forms and fxsave/fxrstor)
raises SIGFPE before doing anything, as Linux delivers #MF (``x87_semantic``).

Limitations, documented rather than modelled: below datapath exceptions are never delivered
(unmasking one in the CW has no effect); at datapath the instruction that raises an unmasked
exception still writes the masked response (the hardware leaves the destination alone for IE, DE
and ZE, and scales the result for OE and UE); stack overflow and underflow are not detected (a
valid program never meets them: an empty register reads as its stale contents); FIP/FDP/FOP are stored as zero by
fnstenv/fnsave/fxsave; below datapath the exception flags after memory-operand arithmetic are
those of the converted operand (DE and IE of the load are lost), and fld, the compares, the
integer stores and frndint set none.
"""
from __future__ import annotations

import functools

from ..irbuilder import const
from ..state import FPU_CW_DEFAULT, PERM_R, PERM_W, SIGFPE, SIGSEGV
from . import semantic
from .sse import check_aligned, unsupported

F80 = "x86_fp80"
C0, C1, C2, C3 = 0x100, 0x200, 0x400, 0x4000
CCS = C0 | C1 | C2 | C3
EXCEPTIONS = 0x3F
ES_B = 0x8080                            # the error summary and busy bits of the status word
ESC = range(0xD8, 0xE0)
INDEFINITE = 0xFFFFC000000000000000      # the x87 "real indefinite": negative quiet NaN
TWO63 = 0x403E8000000000000000           # 2**63 as an 80-bit real
ONE = 0x3FFF8000000000000000
FLOAT = {4: "float", 8: "double"}
SUFFIX = {4: "s", 8: "l"}                # AT&T suffix of an m32 / m64 real operand
INT_SUFFIX = {2: "s", 4: "l", 8: "ll"}   # ... of an m16 / m32 / m64 integer operand
ASM_CLOBBERS = "~{dirflag},~{fpsr},~{flags}"


# ---- waiting instructions --------------------------------------------------------------------
# The x87 instructions that do not first check for a pending unmasked exception (the "no-wait"
# forms and the FXSAVE image moves); every other one raises it (#MF, SIGFPE) before doing anything.
NO_WAIT = frozenset({"fninit", "fnclex", "fnstcw", "fnstsw", "fnstenv", "fnsave", "fxsave",
                     "fxsave64", "fxrstor", "fxrstor64"})


def x87_semantic(*mnemonics: str, **flags):
    """``@semantic`` for the x87 family. With exact flags (datapath) a waiting instruction
    first delivers a pending exception: an exception flag of the status word whose mask bit is
    clear in the control word raises SIGFPE at this instruction, as Linux delivers #MF."""
    def register(fn):
        @functools.wraps(fn)
        def run(L, insn):
            if L.lifter.exact_flags and insn.mnemonic not in NO_WAIT:
                sw = L.b.emit(f"load i16, ptr {L.ptr('fpu_sw')}")
                pending = L.op("and", 16, L.op("and", 16, sw, L.op("xor", 16, _cw(L), "-1")),
                               str(EXCEPTIONS))
                L.branch_or_fault(L.icmp("eq", 16, pending, "0"), SIGFPE,
                                  const(insn.address, 64))
            return fn(L, insn)
        semantic(*mnemonics, **flags)(run)
        return fn
    return register


# ---- the register stack -----------------------------------------------------------------------
def _top(L) -> str:
    return L.b.emit(f"load i8, ptr {L.ptr('fpu_top')}")


def _phys(L, i: int) -> str:
    """The physical register number of ST(i), as i8."""
    return L.op("and", 8, L.op("add", 8, _top(L), str(i)), "7")


def _reg_ptr(L, phys: str) -> str:
    idx = L.cast("zext", phys, 8, 64)
    return L.b.emit(f"getelementptr [8 x [2 x i64]], ptr {L.ptr('st')}, i64 0, i64 {idx}")


def get(L, i: int, ty: str = F80) -> str:
    """ST(i) as x86_fp80 (or its bits, ty="i80")."""
    return L.b.emit(f"load {ty}, ptr {_reg_ptr(L, _phys(L, i))}, align 8")


def _set_tag(L, phys: str, valid: bool) -> None:
    p = L.ptr("fpu_tag")
    bit = L.op("shl", 8, "1", phys)
    old = L.b.emit(f"load i8, ptr {p}")
    new = L.op("or", 8, old, bit) if valid else L.op("and", 8, old, L.op("xor", 8, bit, "-1"))
    L.b.stmt(f"store i8 {new}, ptr {p}")


def put(L, i: int, value: str, ty: str = F80) -> None:
    """ST(i) = value (and its tag: valid)."""
    phys = _phys(L, i)
    L.b.stmt(f"store {ty} {value}, ptr {_reg_ptr(L, phys)}, align 8")
    _set_tag(L, phys, True)


def _move_top(L, delta: int) -> None:
    L.b.stmt(f"store i8 {_phys(L, delta)}, ptr {L.ptr('fpu_top')}")


def push(L, value: str, ty: str = F80) -> None:
    _move_top(L, -1)
    put(L, 0, value, ty)


def pop(L, n: int = 1) -> None:
    for _ in range(n):
        _set_tag(L, _phys(L, 0), False)
        _move_top(L, 1)


def set_sw(L, bits: str = "0", mask: int = C1, exceptions: str | None = None) -> None:
    """Status word: the bits under `mask` (C0 C1 C2 C3) from `bits` (i16), exception flags ORed."""
    p = L.ptr("fpu_sw")
    sw = L.b.emit(f"load i16, ptr {p}")
    sw = L.op("and", 16, sw, const(~mask, 16))
    if bits != "0":
        sw = L.op("or", 16, sw, L.op("and", 16, bits, str(mask)))
    if exceptions is not None:
        sw = L.op("or", 16, sw, L.op("and", 16, exceptions, str(EXCEPTIONS)))
        if L.lifter.exact_flags:
            # An unmasked exception flagged: ES and B set, SIGFPE at the next waiting instruction
            unmasked = L.op("and", 16, sw, L.op("xor", 16, _cw(L), "-1"))
            pending = L.icmp("ne", 16, L.op("and", 16, unmasked, str(EXCEPTIONS)), "0")
            sw = L.op("or", 16, sw, L.select(pending, 16, str(ES_B), "0"))
    L.b.stmt(f"store i16 {sw}, ptr {p}")


def status_word(L) -> str:
    """The guest's status word as fnstsw gives it (TOP in bits 11-13)."""
    sw = L.b.emit(f"load i16, ptr {L.ptr('fpu_sw')}")
    top = L.op("shl", 16, L.cast("zext", _top(L), 8, 16), "11")
    return L.op("or", 16, sw, top)


def _cw(L) -> str:
    return L.b.emit(f"load i16, ptr {L.ptr('fpu_cw')}")


def _rc(L) -> str:
    """CW.RC as i16: 0 nearest, 1 down, 2 up, 3 toward zero."""
    return L.op("and", 16, L.op("lshr", 16, _cw(L), "10"), "3")


# ---- operands ---------------------------------------------------------------------------------
def modrm(insn) -> tuple[int, int]:
    """(escape opcode D8..DF, ModRM byte) from the instruction's bytes (capstone's st operands are
    ambiguous: "fadd st(3)" is D8 C3, ST(0) += ST(3))."""
    raw = insn.raw
    for k, byte in enumerate(raw[:-1]):
        if byte in ESC:
            return byte, raw[k + 1]
    unsupported("not an x87 escape opcode")


def st_index(insn) -> int:
    return modrm(insn)[1] & 7


def mem_op(insn):
    return next((op for op in insn.ops if op.kind == "mem"), None)


def bits80(L, value: str) -> str:
    return L.b.emit(f"bitcast {F80} {value} to i80")


def real(L, bits: str) -> str:
    return L.b.emit(f"bitcast i80 {bits} to {F80}")


SNAN = {4: (0x7FC00000, 0x7F800000, 0x003FFFFF), 8: (0x7FF8 << 48, 0x7FF << 52, (1 << 51) - 1)}


def load_real(L, op, signalling: bool = False) -> str:
    """A memory operand (m32/m64 real, m80) as x86_fp80. fpext quiets a signalling NaN, as fld
    does; an arithmetic operand (`signalling`) stays signalling, so that the x87's NaN rules
    (a quiet NaN wins over a signalling one) see what the hardware sees."""
    v = L.load(L.ea(op), op.size)
    if op.size == 10:
        return real(L, v)
    n = op.size * 8
    f = L.b.emit(f"bitcast i{n} {v} to {FLOAT[op.size]}")
    x = L.b.emit(f"fpext {FLOAT[op.size]} {f} to {F80}")
    if not signalling:
        return x
    mask, snan, payload = SNAN[op.size]
    is_snan = L.b.emit(f"and i1 {L.icmp('eq', n, L.op('and', n, v, const(mask, n)), const(snan, n))}"
                       f", {L.icmp('ne', n, L.op('and', n, v, const(payload, n)), '0')}")
    cleared = real(L, L.op("and", 80, bits80(L, x), const(~(1 << 62), 80)))
    return L.b.emit(f"select i1 {is_snan}, {F80} {cleared}, {F80} {x}")


def load_int(L, op) -> str:
    v = L.load(L.ea(op), op.size)
    return L.b.emit(f"sitofp i{op.size * 8} {v} to {F80}")


def fabs(L, x: str) -> str:
    return real(L, L.op("and", 80, bits80(L, x), const((1 << 79) - 1, 80)))


def fconst(bits: int) -> str:
    return f"0xK{bits:020X}"


# ---- running a host x87 instruction -----------------------------------------------------------
# shape -> (number of x87 results, constraints): the values go in st (and st(1)); "pop"
# instructions leave their result in st(1) and pop; "push" ones leave two values; "store" ones
# pop their operand into memory (the slot's second half) and leave nothing.
SHAPES = {
    "unary": (1, "={st},=&{ax},0"),
    "binary": (1, "={st},=&{ax},0,{st(1)}"),
    "pop": (1, "={st},=&{ax},{st},{st(1)},~{st(1)}"),
    "push": (2, "={st},={st(1)},=&{ax},0"),
    "store": (0, "=&{ax},{st},~{st}"),
    "load": (1, "={st},=&{ax}"),
    "compare": (0, "=&{ax},{st},{st(1)},~{st},~{st(1)}"),
}
# The function's x87 scratch slot: the guest's control word at byte 0, the host's saved at byte 2,
# a value stored by the instruction at byte 8.
SLOT_TYPE = "[2 x i64]"
SLOT_VALUE = 8


def _slot(L) -> str:
    return L.slot("x87", SLOT_TYPE)


def _slot_value(L) -> str:
    """Pointer to the slot's value field (what "{slot}" + SLOT_VALUE addresses in native's asm)."""
    return L.b.emit(f"getelementptr i8, ptr {_slot(L)}, i64 {SLOT_VALUE}")


def native(L, text: str, shape: str, *args: str, status: bool = True,
           memory: tuple[str, int] | None = None) -> tuple[list[str], str]:
    """Run the host x87 instruction `text` (AT&T syntax; "{slot}" in it is the scratch slot's
    address register) on x86_fp80 `args` under the guest's control word (its precision and
    rounding control; every exception masked), the host's restored after; its results (ST(0)
    first) and the status word it leaves in ax (exceptions cleared before it). status=False:
    `text` leaves the status word in ax itself. memory=(value, bytes): an operand stored in the
    slot's value field first (`text` addresses it as SLOT_VALUE({slot}))."""
    n, constraints = SHAPES[shape]
    if memory is not None:
        L.b.stmt(f"store i{memory[1] * 8} {memory[0]}, ptr {_slot_value(L)}")
    parts = constraints.split(",")
    operands = [c for c in parts if not c.startswith("~")]
    clobbers = [c for c in parts if c.startswith("~")]
    slot = _slot(L)
    L.b.stmt(f"store i16 {L.op('or', 16, _cw(L), str(EXCEPTIONS))}, ptr {slot}")
    k = f"${len(operands)}"                 # the slot operand follows every output and input
    asm = (f"fnstcw 2({k})\\0Afldcw ({k})\\0Afnclex\\0A{text.replace('{slot}', k)}"
           + ("\\0Afnstsw %ax" if status else "") + f"\\0Afldcw 2({k})")
    constraints = ",".join(operands + ["r"] + clobbers + [ASM_CLOBBERS, "~{memory}"])
    rty = "{" + ", ".join([F80] * n + ["i16"]) + "}" if n else "i16"
    argl = ", ".join([f"{F80} {a}" for a in args] + [f"ptr {slot}"])
    r = L.b.emit(f'call {rty} asm sideeffect "{asm}", "{constraints}"({argl})')
    if not n:
        return [], r
    outs = [L.b.emit(f"extractvalue {rty} {r}, {i}") for i in range(n + 1)]
    return outs[:n], outs[n]


# ---- loads and stores -------------------------------------------------------------------------
CONSTANTS = {"fldz": 0, "fld1": ONE}
# Rounded constants: (bits rounded to nearest and up, bits rounded down and toward zero).
ROUNDED = {"fldpi": (0x4000C90FDAA22168C235, 0x4000C90FDAA22168C234),
           "fldl2e": (0x3FFFB8AA3B295C17F0BC, 0x3FFFB8AA3B295C17F0BB),
           "fldlg2": (0x3FFD9A209A84FBCFF799, 0x3FFD9A209A84FBCFF798),
           "fldln2": (0x3FFEB17217F7D1CF79AC, 0x3FFEB17217F7D1CF79AB)}
# log2(10) rounds down to nearest: (nearest and down and toward zero, up)
L2T = (0x4000D49A784BCD1B8AFE, 0x4000D49A784BCD1B8AFF)


@x87_semantic("fld", "fild", "fldz", "fld1", "fldpi", "fldl2e", "fldl2t", "fldlg2", "fldln2")
def fld(L, insn):
    m = insn.mnemonic
    op = mem_op(insn)
    if m == "fild":
        v, ty = load_int(L, op), F80
    elif m == "fld" and op is not None and op.size != 10 and L.lifter.exact_flags:
        (v,), sw = native(L, f"fld{SUFFIX[op.size]} {SLOT_VALUE}({{slot}})", "load",
                          memory=(L.load(L.ea(op), op.size), op.size))
        push(L, v)
        set_sw(L, "0", C1, sw)          # IE for a signalling NaN, DE for a denormal
        return
    elif m == "fld" and op is not None:
        v, ty = (L.load(L.ea(op), 10), "i80") if op.size == 10 else (load_real(L, op), F80)
    elif m == "fld":
        v, ty = get(L, st_index(insn), "i80"), "i80"
    else:
        ty = "i80"
        if m in CONSTANTS:
            v = const(CONSTANTS[m], 80)
        else:
            up = L.icmp("eq", 16, _rc(L), "2")
            if m == "fldl2t":
                v = L.select(up, 80, const(L2T[1], 80), const(L2T[0], 80))
            else:
                near, down = ROUNDED[m]
                rc = _rc(L)
                chop = L.b.emit(f"or i1 {L.icmp('eq', 16, rc, '1')}, {L.icmp('eq', 16, rc, '3')}")
                v = L.select(chop, 80, const(down, 80), const(near, 80))
    push(L, v, ty)
    set_sw(L)


def roundup(L, r: str, x: str) -> str:
    """C1 after a rounding to integer: was the magnitude rounded up? (i16 holding C1 or 0)"""
    up = L.b.emit(f"fcmp ogt {F80} {fabs(L, r)}, {fabs(L, x)}")
    return L.select(up, 16, str(C1), "0")


@x87_semantic("fst", "fstp")
def fst(L, insn):
    """fst m32/m64 runs the host's fstp under the guest's CW: rounded by CW.RC (CW.PC does not
    apply to stores), with the hardware's C1, NaN quieting and exception flags."""
    op = mem_op(insn)
    if op is None:
        put(L, st_index(insn), get(L, 0, "i80"), "i80")
        set_sw(L)
    elif op.size == 10:
        L.store(L.ea(op), get(L, 0, "i80"), 10)
        set_sw(L)
    else:
        suffix = {4: "s", 8: "l"}[op.size]
        _, sw = native(L, f"fstp{suffix} {SLOT_VALUE}({{slot}})", "store", get(L, 0))
        p = L.b.emit(f"getelementptr i8, ptr {_slot(L)}, i64 {SLOT_VALUE}")
        n = op.size * 8
        L.store(L.ea(op), L.b.emit(f"load i{n}, ptr {p}"), op.size)
        set_sw(L, sw, C1, sw)
    if insn.mnemonic == "fstp":
        pop(L)


def round_int(L, x: str, rc: str) -> str:
    """x rounded to an integral x86_fp80 by the rounding control `rc` (i16); NaNs quieted."""
    b = L.b
    small = b.emit(f"fcmp olt {F80} {fabs(L, x)}, {fconst(TWO63)}")
    xs = b.emit(f"select i1 {small}, {F80} {x}, {F80} 0xK00000000000000000000")
    t = b.emit(f"fptosi {F80} {xs} to i64")
    tf = b.emit(f"sitofp i64 {t} to {F80}")
    frac = b.emit(f"fsub {F80} {xs}, {tf}")
    neg = b.emit(f"fcmp olt {F80} {frac}, 0xK00000000000000000000")
    pos = b.emit(f"fcmp ogt {F80} {frac}, 0xK00000000000000000000")
    half = fconst(0x3FFE8000000000000000)
    af = fabs(L, frac)
    over = b.emit(f"fcmp ogt {F80} {af}, {half}")
    tie = b.emit(f"fcmp oeq {F80} {af}, {half}")
    odd = L.cast("trunc", t, 64, 1)
    away = b.emit(f"or i1 {over}, {b.emit(f'and i1 {tie}, {odd}')}")
    # the step added to tf: -1, 0 or +1
    sign = L.select(neg, 64, "-1", "1")
    near = L.select(away, 64, sign, "0")
    down = L.select(neg, 64, "-1", "0")
    up = L.select(pos, 64, "1", "0")
    step = L.select(L.icmp("eq", 16, rc, "0"), 64, near,
                    L.select(L.icmp("eq", 16, rc, "1"), 64, down,
                             L.select(L.icmp("eq", 16, rc, "2"), 64, up, "0")))
    r = b.emit(f"sitofp i64 {L.op('add', 64, t, step)} to {F80}")
    # keep the sign of x (a result of zero is -0 for negative x)
    sign_bit = L.op("and", 80, bits80(L, x), const(1 << 79, 80))
    r = real(L, L.op("or", 80, bits80(L, r), sign_bit))
    nan = b.emit(f"fcmp uno {F80} {x}, {x}")
    quiet = real(L, L.op("or", 80, bits80(L, x), const(1 << 62, 80)))
    big = b.emit(f"select i1 {nan}, {F80} {quiet}, {F80} {x}")
    r = b.emit(f"select i1 {small}, {F80} {r}, {F80} {big}")
    # an unnormal (integer bit clear, exponent not zero) is an invalid operand: the indefinite
    xb = bits80(L, x)
    unnormal = b.emit(f"and i1 {L.icmp('sge', 64, L.cast('trunc', xb, 80, 64), '0')}, "
                      f"{L.icmp('ne', 80, L.op('and', 80, xb, const(0x7FFF << 64, 80)), '0')}")
    return b.emit(f"select i1 {unnormal}, {F80} {fconst(INDEFINITE)}, {F80} {r}")


@x87_semantic("fist", "fistp", "fisttp")
def fist(L, insn):
    op = mem_op(insn)
    n = op.size * 8
    if L.lifter.exact_flags:        # the host's store: its rounding, C1 and exception flags
        op_name = "fisttp" if insn.mnemonic == "fisttp" else "fistp"
        _, sw = native(L, f"{op_name}{INT_SUFFIX[op.size]} {SLOT_VALUE}({{slot}})", "store",
                       get(L, 0))
        L.store(L.ea(op), L.b.emit(f"load i{n}, ptr {_slot_value(L)}"), op.size)
        set_sw(L, sw, C1, sw)
        if insn.mnemonic != "fist":
            pop(L)
        return
    x = get(L, 0)
    rc = "3" if insn.mnemonic == "fisttp" else _rc(L)
    r = round_int(L, x, rc)
    lo = L.b.emit(f"fcmp oge {F80} {r}, {fconst(_f80(-(1 << (n - 1))))}")
    hi = L.b.emit(f"fcmp ole {F80} {r}, {fconst(_f80((1 << (n - 1)) - 1))}")
    ok = L.b.emit(f"and i1 {lo}, {hi}")
    rs = L.b.emit(f"select i1 {ok}, {F80} {r}, {F80} 0xK00000000000000000000")
    v = L.cast("trunc", L.b.emit(f"fptosi {F80} {rs} to i64"), 64, n)
    v = L.select(ok, n, v, const(1 << (n - 1), n))
    L.store(L.ea(op), v, op.size)
    set_sw(L, L.select(ok, 16, roundup(L, r, x), "0"))
    if insn.mnemonic != "fist":
        pop(L)


def _f80(value: int) -> int:
    """The 80-bit real of a (nonzero) integer."""
    sign = 1 << 79 if value < 0 else 0
    m = abs(value)
    e = m.bit_length() - 1
    return sign | (16383 + e) << 64 | (m << (63 - e))


@x87_semantic("frndint")
def frndint(L, insn):
    if L.lifter.exact_flags:
        (r,), sw = native(L, "frndint", "unary", get(L, 0))
        put(L, 0, r)
        set_sw(L, sw, C1, sw)
        return
    x = get(L, 0)
    r = round_int(L, x, _rc(L))
    put(L, 0, r)
    set_sw(L, roundup(L, r, x))


@x87_semantic("fxch")
def fxch(L, insn):
    i = st_index(insn)
    a, c = get(L, 0, "i80"), get(L, i, "i80")
    put(L, 0, c, "i80")
    put(L, i, a, "i80")
    set_sw(L)


FCMOV_CC = {"b": "b", "e": "e", "be": "be", "u": "p", "nb": "ae", "ne": "ne", "nbe": "a",
            "nu": "np"}


@x87_semantic("fcmovb", "fcmove", "fcmovbe", "fcmovu", "fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu",
          reads=lambda m: {"b": "cf", "e": "zf", "be": "cf zf", "u": "pf"}[m[5:].lstrip("n")])
def fcmov(L, insn):
    cc = FCMOV_CC[insn.mnemonic[5:]]
    cond = L.cond(cc)
    v = L.select(cond, 80, get(L, st_index(insn), "i80"), get(L, 0, "i80"))
    put(L, 0, v, "i80")


# ---- arithmetic -------------------------------------------------------------------------------
ARITH = ("add", "sub", "subr", "mul", "div", "divr")


@x87_semantic(*(f"f{op}{p}" for op in ARITH for p in ("", "p")), *(f"fi{op}" for op in ARITH))
def farith(L, insn):
    m = insn.mnemonic
    name = m[2:] if m.startswith("fi") else m[1:]
    name = name[:-1] if name.endswith("p") else name
    op = mem_op(insn)
    if op is not None and L.lifter.exact_flags:     # the memory operand as the host reads it
        suffix = (INT_SUFFIX if m.startswith("fi") else SUFFIX)[op.size]
        (r,), sw = native(L, f"{m}{suffix} {SLOT_VALUE}({{slot}})", "unary", get(L, 0),
                          memory=(L.load(L.ea(op), op.size), op.size))
        put(L, 0, r)
        set_sw(L, sw, C1, sw)
        return
    if op is not None:
        dest, src = 0, (load_int(L, op) if m.startswith("fi") else load_real(L, op, True))
    else:
        esc, rm = modrm(insn)
        dest, i = (0, rm & 7) if esc == 0xD8 else (rm & 7, 0)
        src = get(L, i)
    (r,), sw = native(L, f"f{name} %st(1), %st", "binary", get(L, dest), src)
    put(L, dest, r)
    set_sw(L, sw, C1, sw)
    if m.endswith("p"):
        pop(L)


@x87_semantic("fchs", "fabs")
def fsign(L, insn):
    x = get(L, 0, "i80")
    if insn.mnemonic == "fchs":
        v = L.op("xor", 80, x, const(1 << 79, 80))
    else:
        v = L.op("and", 80, x, const((1 << 79) - 1, 80))
    put(L, 0, v, "i80")
    set_sw(L)


# mnemonic -> (shape, condition codes taken from the host)
HOST_OPS = {"fsqrt": ("unary", C1), "f2xm1": ("unary", C1), "fsin": ("unary", C1 | C2),
            "fcos": ("unary", C1 | C2), "fscale": ("binary", C1), "fprem": ("binary", CCS),
            "fprem1": ("binary", CCS), "fyl2x": ("pop", C1), "fyl2xp1": ("pop", C1),
            "fpatan": ("pop", C1), "fxtract": ("push", C1)}


@x87_semantic(*HOST_OPS)
def fhost(L, insn):
    """Instructions that compute on ST(0) (and ST(1)) only, run on the host's x87."""
    m = insn.mnemonic
    shape, mask = HOST_OPS[m]
    args = [get(L, 0)] + ([get(L, 1)] if shape in ("binary", "pop") else [])
    outs, sw = native(L, m, shape, *args)
    if mask == CCS:                 # fprem: a NaN result leaves C0 and C3 as they were
        invalid = L.b.emit(f"fcmp uno {F80} {outs[0]}, {outs[0]}")
        old = L.b.emit(f"load i16, ptr {L.ptr('fpu_sw')}")
        kept = L.op("or", 16, L.op("and", 16, old, str(C0 | C3)),
                    L.op("and", 16, sw, str(~(C0 | C3) & 0xFFFF)))
        sw = L.select(invalid, 16, kept, sw)
    if shape == "pop":
        put(L, 1, outs[0])
        pop(L)
    elif shape == "push":
        put(L, 0, outs[1])
        push(L, outs[0])
    else:
        put(L, 0, outs[0])
    set_sw(L, sw, mask, sw)


@x87_semantic("fptan", "fsincos")
def fpush_if_in_range(L, insn):
    """fptan and fsincos push a second result unless the operand is out of range (C2 set, ST(0)
    unchanged); the host code pushes 1.0 in that case so its stack shape never varies."""
    asm = f"{insn.mnemonic}\\0Afnstsw %ax\\0Atestw $$0x400, %ax\\0Ajz 1f\\0Afld1\\0A1:"
    (top, second), sw = native(L, asm, "push", get(L, 0), status=False)
    out_of_range = L.icmp("ne", 16, L.op("and", 16, sw, str(C2)), "0")
    ok, done = L.b.new_label("x87_in_range"), L.b.new_label("x87_done")
    L.b.stmt(f"br i1 {out_of_range}, label %{done}, label %{ok}")
    L.b.label(ok)
    put(L, 0, second)
    push(L, top)
    L.b.label(done)
    set_sw(L, sw, C1 | C2, sw)


# ---- compares ---------------------------------------------------------------------------------
def _compare_source(L, insn):
    m = insn.mnemonic
    op = mem_op(insn)
    if m == "ftst":
        return fconst(0)
    if op is not None:
        return load_int(L, op) if m.startswith("fi") else load_real(L, op)
    return get(L, 1 if m in ("fcompp", "fucompp") else st_index(insn))


def host_compare(L, insn):
    """Run the compare on the host (ST(0) against its operand, which the host sees as ST(1) or in
    the slot); the host's status word with C0-C3 and the exception flags."""
    m = insn.mnemonic
    op = mem_op(insn)
    pops = "\\0Afnstsw %ax\\0Afstp %st(0)"
    if m == "ftst":
        return native(L, "ftst" + pops, "store", get(L, 0), status=False)
    if op is not None:
        suffix = (INT_SUFFIX if m.startswith("fi") else SUFFIX)[op.size]
        text = f"{m.removesuffix('p')}{suffix} {SLOT_VALUE}({{slot}})"
        return native(L, text + pops, "store", get(L, 0), status=False,
                      memory=(L.load(L.ea(op), op.size), op.size))
    c = get(L, 1 if m in ("fcompp", "fucompp") else st_index(insn))
    base = {"fcomp": "fcom", "fcompp": "fcom", "fucomp": "fucom", "fucompp": "fucom",
            "fcompi": "fcomi", "fucompi": "fucomi"}.get(m, m)
    text = base + (" %st(1), %st" if base.endswith("i") else " %st(1)")
    return native(L, text + pops + "\\0Afstp %st(0)", "compare", get(L, 0), c, status=False)


POPS = {"fcomp": 1, "fucomp": 1, "ficomp": 1, "fcompp": 2, "fucompp": 2, "fcompi": 1,
        "fucompi": 1}


@x87_semantic("fcom", "fcomp", "fcompp", "fucom", "fucomp", "fucompp", "ficom", "ficomp", "ftst")
def fcom(L, insn):
    """C3 C2 C0: 000 greater, 001 less, 100 equal, 111 unordered; C1 cleared."""
    if L.lifter.exact_flags:
        _, sw = host_compare(L, insn)
        set_sw(L, sw, CCS, sw)
        pop(L, POPS.get(insn.mnemonic, 0))
        return
    a, c = get(L, 0), _compare_source(L, insn)
    b = L.b
    lt = L.select(b.emit(f"fcmp ult {F80} {a}, {c}"), 16, str(C0), "0")
    eq = L.select(b.emit(f"fcmp ueq {F80} {a}, {c}"), 16, str(C3), "0")
    un = L.select(b.emit(f"fcmp uno {F80} {a}, {c}"), 16, str(C2), "0")
    set_sw(L, L.op("or", 16, L.op("or", 16, lt, eq), un), CCS)
    pop(L, POPS.get(insn.mnemonic, 0))


@x87_semantic("fcomi", "fcompi", "fucomi", "fucompi", writes="zf pf cf of sf af")
def fcomi(L, insn):
    """ZF PF CF as C3 C2 C0 of fcom; OF SF AF cleared."""
    if L.lifter.exact_flags:        # the host's exception flags (RFLAGS as below)
        _, sw = host_compare(L, insn)
        set_sw(L, "0", 0, sw)
    a, c = get(L, 0), get(L, st_index(insn))
    b = L.b
    L.set_flag("cf", b.emit(f"fcmp ult {F80} {a}, {c}"))
    L.set_flag("zf", b.emit(f"fcmp ueq {F80} {a}, {c}"))
    L.set_flag("pf", b.emit(f"fcmp uno {F80} {a}, {c}"))
    for f in ("of", "sf", "af"):
        L.set_flag(f, "0")
    pop(L, POPS.get(insn.mnemonic, 0))


@x87_semantic("fxam")
def fxam(L, insn):
    """The class of ST(0) in C3 C2 C0 (unsupported 000, NaN 001, normal 010, infinity 011,
    zero 100, empty 101, denormal 110) and its sign in C1."""
    x = get(L, 0, "i80")
    exp = L.cast("trunc", L.op("lshr", 80, x, "64"), 80, 16)
    exp = L.op("and", 16, exp, "32767")
    mant = L.cast("trunc", x, 80, 64)
    j = L.icmp("slt", 64, mant, "0")
    frac0 = L.icmp("eq", 64, L.op("shl", 64, mant, "1"), "0")
    e0, emax = L.icmp("eq", 16, exp, "0"), L.icmp("eq", 16, exp, "32767")
    m0 = L.icmp("eq", 64, mant, "0")
    cls = L.select(j, 16, str(C2), "0")                           # normal / unsupported
    cls = L.select(emax, 16, L.select(j, 16, L.select(frac0, 16, str(C2 | C0), str(C0)), "0"),
                   cls)
    cls = L.select(e0, 16, L.select(m0, 16, str(C3), str(C3 | C2)), cls)
    phys = _phys(L, 0)
    tag = L.b.emit(f"load i8, ptr {L.ptr('fpu_tag')}")
    valid = L.cast("trunc", L.op("lshr", 8, tag, phys), 8, 1)
    cls = L.select(valid, 16, cls, str(C3 | C0))
    sign = L.select(L.bit(x, 80, 79), 16, str(C1), "0")
    set_sw(L, L.op("or", 16, cls, sign), CCS)


# ---- control ----------------------------------------------------------------------------------
@x87_semantic("fnstcw", "fldcw")
def fcw(L, insn):
    addr = L.ea(mem_op(insn))
    if insn.mnemonic == "fnstcw":
        L.store(addr, _cw(L), 2)
    else:
        L.b.stmt(f"store i16 {L.load(addr, 2)}, ptr {L.ptr('fpu_cw')}")


@x87_semantic("fnstsw")
def fnstsw(L, insn):
    (op,) = insn.ops
    if op.kind == "mem":
        L.store(L.ea(op), status_word(L), 2)
    else:
        L.set_gpr(op.reg, status_word(L), 2)


def init(L) -> None:
    L.b.stmt(f"store i16 {FPU_CW_DEFAULT}, ptr {L.ptr('fpu_cw')}")
    L.b.stmt(f"store i16 0, ptr {L.ptr('fpu_sw')}")
    L.b.stmt(f"store i8 0, ptr {L.ptr('fpu_top')}")
    L.b.stmt(f"store i8 0, ptr {L.ptr('fpu_tag')}")


@x87_semantic("fninit", "fnclex", "wait", "fnop", "fincstp", "fdecstp", "ffree", "ffreep")
def fcontrol(L, insn):
    m = insn.mnemonic
    if m == "fninit":
        init(L)
    elif m == "fnclex":              # exception flags, ES (bit 7) and B (bit 15)
        p = L.ptr("fpu_sw")
        L.b.stmt(f"store i16 {L.op('and', 16, L.b.emit(f'load i16, ptr {p}'), '32512')}, ptr {p}")
    elif m in ("fincstp", "fdecstp"):
        _move_top(L, 1 if m == "fincstp" else -1)
        set_sw(L)
    elif m in ("ffree", "ffreep"):
        _set_tag(L, _phys(L, st_index(insn)), False)
        set_sw(L)
        if m == "ffreep":
            _move_top(L, 1)


# ---- environment and state images -------------------------------------------------------------
def _full_tag(L) -> str:
    """The 16-bit tag word (2 bits a physical register: 00 valid, 01 zero, 10 special, 11 empty)
    from the abridged tag and the register contents."""
    tags = L.b.emit(f"load i8, ptr {L.ptr('fpu_tag')}")
    word = "0"
    for p in range(8):
        x = L.b.emit(f"load i80, ptr {_reg_ptr(L, str(p))}, align 8")
        exp = L.op("and", 80, L.op("lshr", 80, x, "64"), "32767")
        mant = L.cast("trunc", x, 80, 64)
        zero = L.b.emit(f"and i1 {L.icmp('eq', 80, exp, '0')}, {L.icmp('eq', 64, mant, '0')}")
        special = L.b.emit(f"or i1 {L.icmp('eq', 80, exp, '0')}, {L.icmp('eq', 80, exp, '32767')}")
        special = L.b.emit(f"or i1 {special}, {L.icmp('sge', 64, mant, '0')}")
        t = L.select(zero, 16, "1", L.select(special, 16, "2", "0"))
        t = L.select(L.bit(tags, 8, p), 16, t, "3")
        word = L.op("or", 16, word, L.op("shl", 16, t, str(2 * p)))
    return word


def _store_env(L, addr: str) -> None:
    """The 28-byte environment of 64-bit mode: CW, SW, TW in 32-bit slots (upper halves 0xFFFF
    as the hardware writes them), then FIP, FCS:FOP, FDP, FDS as zero (not modelled)."""
    for k, v in enumerate((_cw(L), status_word(L), _full_tag(L))):
        word = L.op("or", 32, L.cast("zext", v, 16, 32), const(0xFFFF0000, 32))
        L.store(L.op("add", 64, addr, str(4 * k)), word, 4)
    for k in range(3, 7):
        L.store(L.op("add", 64, addr, str(4 * k)), "0", 4)


def _load_env(L, addr: str) -> None:
    L.b.stmt(f"store i16 {L.load(addr, 2)}, ptr {L.ptr('fpu_cw')}")
    _load_sw(L, L.load(L.op("add", 64, addr, "4"), 2))
    tw = L.load(L.op("add", 64, addr, "8"), 2)
    tag = "0"
    for p in range(8):
        t = L.op("and", 16, L.op("lshr", 16, tw, str(2 * p)), "3")
        valid = L.select(L.icmp("ne", 16, t, "3"), 8, str(1 << p), "0")
        tag = L.op("or", 8, tag, valid)
    L.b.stmt(f"store i8 {tag}, ptr {L.ptr('fpu_tag')}")


def _load_sw(L, sw: str) -> None:
    top = L.cast("trunc", L.op("and", 16, L.op("lshr", 16, sw, "11"), "7"), 16, 8)
    L.b.stmt(f"store i8 {top}, ptr {L.ptr('fpu_top')}")
    L.b.stmt(f"store i16 {L.op('and', 16, sw, const(~0x3800, 16))}, ptr {L.ptr('fpu_sw')}")


def _regs(L, addr: str, first: int, stride: int, save: bool) -> None:
    """Copy ST(0..7) to (save) or from the image: ST(i) at addr + first + stride * i."""
    for i in range(8):
        a = L.op("add", 64, addr, str(first + stride * i))
        p = _reg_ptr(L, _phys(L, i))
        if save:
            L.store(a, L.b.emit(f"load i80, ptr {p}, align 8"), 10)
            if stride == 16:
                L.store(L.op("add", 64, a, "10"), "0", 6)
        else:
            L.b.stmt(f"store i80 {L.load(a, 10)}, ptr {p}, align 8")


@x87_semantic("fnstenv", "fldenv", "fnsave", "frstor")
def fenv(L, insn):
    m = insn.mnemonic
    addr = L.ea(mem_op(insn))
    if m in ("fnstenv", "fnsave"):
        L.host_ptr(addr, 108 if m == "fnsave" else 28, PERM_W)
        _store_env(L, addr)
        if m == "fnsave":
            _regs(L, addr, 28, 10, True)
            init(L)
        else:                           # fnstenv masks every exception after storing
            L.b.stmt(f"store i16 {L.op('or', 16, _cw(L), '63')}, ptr {L.ptr('fpu_cw')}")
    else:
        L.host_ptr(addr, 108 if m == "frstor" else 28, PERM_R)   # fault before any change
        _load_env(L, addr)
        if m == "frstor":
            _regs(L, addr, 28, 10, False)


MXCSR_MASK = 0xFFFF


@x87_semantic("fxsave", "fxsave64", "fxrstor", "fxrstor64")
def fxsave(L, insn):
    """The 512-byte FXSAVE image: CW, SW, abridged tag, MXCSR and its mask, ST(0..7) and
    xmm0..15; FOP, FIP and FDP are stored as zero, bytes 416-511 are left alone."""
    addr = L.ea(mem_op(insn))
    check_aligned(L, addr)
    at = lambda k: L.op("add", 64, addr, str(k))          # noqa: E731
    if insn.mnemonic.startswith("fxsave"):
        L.host_ptr(addr, 512, PERM_W)                      # fault before any change
        L.store(addr, _cw(L), 2)
        L.store(at(2), status_word(L), 2)
        L.store(at(4), L.b.emit(f"load i8, ptr {L.ptr('fpu_tag')}"), 1)
        L.store(at(5), "0", 1)
        L.store(at(6), "0", 2)
        L.store(at(8), "0", 8)
        L.store(at(16), "0", 8)
        L.store(at(24), L.b.emit(f"load i32, ptr {L.ptr('mxcsr')}"), 4)
        L.store(at(28), str(MXCSR_MASK), 4)
        _regs(L, addr, 32, 16, True)
        for i in range(16):
            L.store(at(160 + 16 * i), L.get_xmm(i), 16)
        return
    L.host_ptr(addr, 512, PERM_R)
    mxcsr = L.load(at(24), 4)
    ok = L.icmp("eq", 32, L.op("and", 32, mxcsr, const(~MXCSR_MASK, 32)), "0")
    L.branch_or_fault(ok, SIGSEGV, "0")
    L.b.stmt(f"store i16 {L.load(addr, 2)}, ptr {L.ptr('fpu_cw')}")
    _load_sw(L, L.load(at(2), 2))
    L.b.stmt(f"store i8 {L.load(at(4), 1)}, ptr {L.ptr('fpu_tag')}")
    L.b.stmt(f"store i32 {mxcsr}, ptr {L.ptr('mxcsr')}")
    _regs(L, addr, 32, 16, False)
    for i in range(16):
        L.set_xmm(i, L.load(at(160 + 16 * i), 16))
