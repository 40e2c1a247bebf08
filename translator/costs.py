"""The cycle model's cost table: how many modelled cycles each retired guest instruction costs.

At ``--accuracy cycle`` (knob ``clock=virtual``) translated code adds ``cost(insn)`` to the state
field ``cycles`` for every instruction it retires, and the guest's clocks and rdtsc read time
from that count (runtime/clock.py)::

    from translator.costs import cost, rep_cost, NOMINAL_HZ
    cost(insn)              # -> modelled cycles of one decoded instruction (translator/decoder.py)
    rep_cost(insn)          # -> a rep string op's cost per iteration, in 1/REP_SCALE cycles
    NOMINAL_HZ              # modelled cycles per second (the TSC rate the guest sees)

The model. One throughput-ish cost per instruction class, added when the instruction retires:
no caches (every load hits L1), no pipeline, no branch predictor, no dependence on the values
computed (a division costs the same whatever it divides). A cost is the time per instruction of
a long run of that instruction arranged in two independent dependency chains, so about half its
latency or its reciprocal throughput, whichever is larger: roughly what compiled code with
modest instruction-level parallelism sees. ``cost`` is

    TABLE[class of the instruction]
      + TABLE["mem_read"]  when an operand is read from memory (add r, [m]; fadd m64; ...)
      + TABLE["mem_rmw"]   when the destination is in memory (add [m], r; inc [m]; ...)

except for the classes that are memory accesses themselves (``load``, ``store``, ``string``,
``atomic``, ...), whose measurement includes the access, and for lea, nop and prefetch, which do
not access memory. Every instruction costs at least one cycle, so modelled
time always advances. A rep string instruction costs ``REP_TABLE["rep_start"]`` through
``cost``; its iterations are charged by ``rep_cost``, kept in 1/256 cycles because a fast
string copy moves many bytes per cycle: translated code is to add
``(iterations * rep_cost(insn)) >> REP_SHIFT`` after the loop. ``syscall`` costs a whole round
trip through the host kernel; cpuid on this machine traps to the hypervisor, and its cost says so.

The unit is one tick of the host's TSC, whose rate is the nominal (non-turbo) frequency: on the
calibration machine a simple ALU instruction in a dependency chain takes 0.74 ticks (the core
runs above the TSC rate), so the cheapest classes round up to 1.

Calibration. The numbers below come from running ``bench/calibrate_costs.py --update`` on the
machine named in ``CALIBRATED``; that script says how each class is measured (a representative
instruction sequence run natively from an executable page, timed with perf_counter_ns, converted
to TSC ticks at the measured TSC rate). To recalibrate on another CPU, run the script, compare
its "measured" column with this table, and let ``--update`` write the new tables, date and CPU
here. Values are rounded: the few per cent of run-to-run noise can move a class that sits near
a half cycle by one. NOMINAL_HZ is the measured TSC rate rounded to a MHz (2.6 GHz here); the
virtual clock converts cycles to time with it, so a guest's rdtsc and clock_gettime agree.
"""
from __future__ import annotations

CALIBRATED = ("2026-11-22, Intel(R) Xeon(R) Processor (family 6 model 167, under a hypervisor), "
              "TSC 2600 MHz")
NOMINAL_HZ = 2_600_000_000

# class -> modelled cycles (bench/calibrate_costs.py --update on the CALIBRATED machine).
TABLE = {
    "nop": 1,                 # nop
    "alu": 1,                 # add r64, r64, two chains
    "shift": 1,               # shl r64, imm
    "shift_cl": 1,            # shl r64, cl
    "rotate_carry": 5,        # rcl/rcr r64, imm (chained by CF)
    "shift_double": 1,        # shld/shrd r64, r64, imm
    "bitscan": 1,             # popcnt r64, r64
    "mul": 1,                 # imul r64, r64
    "mul_wide": 1,            # mul r64 (rdx:rax)
    "div8": 6,                # div r8, two chains: dividend ^= quotient
    "div16": 5,               # div r16, two chains: dividend ^= quotient
    "div32": 4,               # div r32, two chains: dividend ^= quotient
    "div64": 7,               # div r64, two chains: dividend ^= quotient
    "idiv8": 6,               # idiv r8, two chains: dividend ^= quotient
    "idiv16": 11,             # idiv r16, two chains: dividend ^= quotient
    "idiv32": 4,              # idiv r32, two chains: dividend ^= quotient
    "idiv64": 6,              # idiv r64, two chains: dividend ^= quotient
    "load": 1,                # mov r64, [r64] pointer chase (L1), two chains
    "store": 1,               # mov [m], r64
    "mem_read": 2,            # add r64, [r64] (address on the chain) minus add r, r
    "mem_rmw": 2,             # add [m], r64 (chained through memory) minus add r, r
    "stack": 1,               # push r64; pop r64
    "pushf_popf": 11,         # pushfq; popfq
    "branch": 1,              # jcc to the next insn, taken and not taken (minus the adds)
    "jump": 1,                # jmp to the next instruction (minus the adds)
    "call_ret": 1,            # call to a ret: the pair, per instruction
    "loop": 5,                # loop to the next instruction
    "string": 3,              # movsq without rep
    "atomic": 12,             # lock add [m], r64
    "fence_full": 26,         # mfence
    "fence_load": 9,          # lfence
    "fence_store": 4,         # sfence
    "pause": 24,              # pause
    "rdtsc": 20,              # rdtsc
    "cpuid": 16713,           # cpuid leaf 0
    "syscall": 193,           # syscall getpid: the whole round trip through the host kernel
    "sse_move": 1,            # movaps xmm, xmm
    "sse_int": 1,             # paddd
    "sse_shuffle": 1,         # pshufd
    "sse_int_mul": 2,         # pmullw
    "sse_gpr": 1,             # movq xmm, r64 and back
    "sse_fp_add": 1,          # addsd/subsd
    "sse_fp_mul": 1,          # mulsd by 3 and by 1/3
    "sse_div_s": 4,           # divss by 3 and by 1/3
    "sse_div_d": 5,           # divsd by 3 and by 1/3
    "sse_sqrt_s": 4,          # x = sqrtss(x) * 3 (x stays 9), minus the mulss
    "sse_sqrt_d": 7,          # x = sqrtsd(x) * 3 (x stays 9), minus the mulsd
    "sse_cvt": 2,             # cvtsi2sd and cvttsd2si
    "mxcsr": 4,               # stmxcsr; ldmxcsr
    "x87_move": 1,            # fld st; fstp st
    "x87_add": 1,             # fadd/fsub 0.5, two chains swapped by fxch (minus the fxch)
    "x87_mul": 1,             # fmul by 3 and by 1/3, two chains (minus the fxch)
    "x87_div": 5,             # fdiv by 3 and by 1/3, two chains (minus the fxch)
    "x87_sqrt": 8,            # x = fsqrt(x) * 3 (x stays 9), minus fmul and fxch
    "x87_trig": 80,           # fsin on a copy of a constant
    "x87_tan": 91,            # fptan on a copy of a constant
    "x87_atan": 98,           # fpatan on a copy of a constant
    "x87_log": 37,            # fyl2x on a copy of a constant
    "x87_exp": 47,            # f2xm1 on a copy of a constant
    "x87_misc": 7,            # frndint on a copy of a constant
    "x87_compare": 1,         # fcomi/fucomi
    "x87_cvt": 1,             # fild m64; fistp m64
    "x87_control": 6,         # fnstcw; fldcw
    "x87_state": 53,          # fxsave; fxrstor
}

# rep string instructions: rep_start in cycles; the others in 1/REP_SCALE cycles per iteration.
REP_SHIFT = 8
REP_SCALE = 1 << REP_SHIFT
REP_TABLE = {
    "rep_start": 6,           # rep movsb with rcx = 1: the fixed cost of a rep instruction
    "rep_movsb": 3,           # rep movsb 4 KiB
    "rep_movsq": 12,          # rep movsq 4 KiB
    "rep_stosb": 3,           # rep stosb 4 KiB
    "rep_stosq": 14,          # rep stosq 4 KiB
    "rep_scas": 97,           # repne scasb over 4 KiB of zeros
    "rep_cmps": 98,           # repe cmpsb over two equal 4 KiB buffers
    "rep_lods": 97,           # taken as rep_scas
}

# ---- which class an instruction belongs to ----------------------------------------------------

_MOVES = {"mov", "movabs", "movzx", "movsx", "movsxd", "movq", "movd", "movaps", "movups",
          "movapd", "movupd", "movdqa", "movdqu", "lddqu", "movss", "movsd", "movhps", "movlps",
          "movhpd", "movlpd", "movhlps", "movlhps", "movnti", "movntdq", "movntps", "movntpd",
          "movbe"}
_STRING = {base + s for base in ("stos", "movs", "lods", "scas", "cmps") for s in "bwdq"}
_NO_ACCESS = {"lea", "nop", "endbr32", "endbr64", "prefetch", "prefetchnta", "prefetcht0",
              "prefetcht1", "prefetcht2", "prefetchw", "rdsspd", "rdsspq"}
_FIXED = {  # mnemonic -> class, for the ones named outright
    **dict.fromkeys(("nop", "endbr32", "endbr64", "prefetch", "prefetchnta", "prefetcht0",
                     "prefetcht1", "prefetcht2", "prefetchw", "rdsspd", "rdsspq", "fnop",
                     "wait"), "nop"),
    **dict.fromkeys(("push", "pop", "leave", "enter"), "stack"),
    **dict.fromkeys(("pushf", "pushfq", "popf", "popfq"), "pushf_popf"),
    **dict.fromkeys(("jmp",), "jump"),
    **dict.fromkeys(("call", "ret"), "call_ret"),
    **dict.fromkeys(("jrcxz", "jecxz", "jcxz"), "branch"),
    **dict.fromkeys(("loop", "loope", "loopne"), "loop"),
    **dict.fromkeys(("imul", "mul"), "mul"),
    **dict.fromkeys(("rcl", "rcr"), "rotate_carry"),
    **dict.fromkeys(("shld", "shrd"), "shift_double"),
    **dict.fromkeys(("bsf", "bsr", "popcnt", "lzcnt", "tzcnt"), "bitscan"),
    "mfence": "fence_full", "lfence": "fence_load", "sfence": "fence_store", "pause": "pause",
    "rdtsc": "rdtsc", "rdtscp": "rdtsc", "cpuid": "cpuid",
    **dict.fromkeys(("syscall", "int", "int3", "into", "ud2", "hlt"), "syscall"),
    **dict.fromkeys(("cmpxchg8b", "cmpxchg16b"), "atomic"),
    **dict.fromkeys(("ldmxcsr", "stmxcsr"), "mxcsr"),
    **dict.fromkeys(("pmullw", "pmulhw", "pmulhuw", "pmuludq", "pmaddwd", "psadbw"),
                    "sse_int_mul"),
    **dict.fromkeys(("pshufd", "pshufhw", "pshuflw", "shufps", "shufpd", "pslldq", "psrldq",
                     "packsswb", "packssdw", "packuswb"), "sse_shuffle"),
    **dict.fromkeys(("pmovmskb", "movmskps", "movmskpd", "pextrw", "pinsrw"), "sse_gpr"),
    **dict.fromkeys(("rcpps", "rcpss", "rsqrtps", "rsqrtss"), "sse_fp_mul"),
    **dict.fromkeys(("divss", "divps"), "sse_div_s"),
    **dict.fromkeys(("divsd", "divpd"), "sse_div_d"),
    **dict.fromkeys(("sqrtss", "sqrtps"), "sse_sqrt_s"),
    **dict.fromkeys(("sqrtsd", "sqrtpd"), "sse_sqrt_d"),
    # x87
    **dict.fromkeys(("fld1", "fldz", "fldpi", "fldl2e", "fldl2t", "fldlg2", "fldln2", "fxch",
                     "fchs", "fabs", "ffree", "ffreep", "fincstp", "fdecstp"), "x87_move"),
    **dict.fromkeys(("fadd", "faddp", "fiadd", "fsub", "fsubp", "fsubr", "fsubrp", "fisub",
                     "fisubr"), "x87_add"),
    **dict.fromkeys(("fmul", "fmulp", "fimul"), "x87_mul"),
    **dict.fromkeys(("fdiv", "fdivp", "fdivr", "fdivrp", "fidiv", "fidivr"), "x87_div"),
    "fsqrt": "x87_sqrt",
    **dict.fromkeys(("fsin", "fcos", "fsincos"), "x87_trig"),
    "fptan": "x87_tan", "fpatan": "x87_atan",
    **dict.fromkeys(("fyl2x", "fyl2xp1"), "x87_log"),
    "f2xm1": "x87_exp",
    **dict.fromkeys(("frndint", "fscale", "fxtract", "fprem", "fprem1"), "x87_misc"),
    **dict.fromkeys(("fcom", "fcomp", "fcompp", "fcomi", "fcompi", "fucom", "fucomp",
                     "fucompp", "fucomi", "fucompi", "ficom", "ficomp", "ftst", "fxam"),
                    "x87_compare"),
    **dict.fromkeys(("fild", "fist", "fistp", "fisttp"), "x87_cvt"),
    **dict.fromkeys(("fldcw", "fnstcw", "fnstsw", "fnclex", "fninit", "fldenv", "fnstenv"),
                    "x87_control"),
    **dict.fromkeys(("fxsave", "fxsave64", "fxrstor", "fxrstor64", "fnsave", "frstor"),
                    "x87_state"),
}
# classes whose measurement includes their memory access (no surcharge on top)
_ACCESSING = {"load", "store", "pushf_popf", "string", "rep_start", "atomic", "x87_cvt",
              "x87_control", "x87_state", "mxcsr", "nop", "syscall", "cpuid"}
# instructions that read but do not write a memory first operand
_READS_FIRST = {"cmp", "test", "bt", "push", "jmp", "call", "mul", "imul", "div", "idiv",
                "ucomiss", "ucomisd", "comiss", "comisd"}
_SSE_FP_SUFFIX = ("ss", "sd", "ps", "pd")


def _sse_class(mn: str) -> str | None:
    if mn.startswith("cvt"):
        return "sse_cvt"
    if mn.startswith(("pmul", "pmadd")):
        return "sse_int_mul"
    if mn.startswith(("punpck", "unpck")):
        return "sse_shuffle"
    if mn.startswith("p") or mn in ("andps", "andpd", "andnps", "andnpd", "orps", "orpd",
                                    "xorps", "xorpd"):
        return "sse_int"
    if mn.endswith(_SSE_FP_SUFFIX):
        stem = mn[:-2]
        if stem in ("add", "sub", "min", "max", "comi", "ucomi") or stem.startswith("cmp"):
            return "sse_fp_add"
        if stem == "mul":
            return "sse_fp_mul"
    return None


def classify(insn) -> str:
    """The class (a key of TABLE, or "rep_start") of one decoded instruction."""
    mn = insn.mnemonic
    ops = insn.ops
    xmm = any(op.kind == "xmm" for op in ops)
    if insn.lock or (mn == "xchg" and any(op.kind == "mem" for op in ops)):
        return "atomic"
    if mn in _STRING and not xmm:
        return "rep_start" if insn.rep else "string"
    if mn in _MOVES:
        if ops and ops[0].kind == "mem":
            return "store"
        if any(op.kind == "mem" for op in ops):
            return "load"
        if xmm and any(op.kind == "reg" for op in ops):
            return "sse_gpr"
        return "sse_move" if xmm else "alu"
    if mn in ("div", "idiv"):
        size = ops[0].size if ops else 8
        return f"{mn}{min(max(size, 1), 8) * 8}"
    if mn in ("imul", "mul"):
        return "mul_wide" if len(ops) == 1 else "mul"
    if mn in ("shl", "sal", "shr", "sar", "rol", "ror"):
        return "shift_cl" if len(ops) > 1 and ops[1].kind == "reg" else "shift"
    if mn in _FIXED:
        return _FIXED[mn]
    if mn.startswith("j"):
        return "branch"
    if mn in ("fld", "fst", "fstp"):
        if ops and ops[0].kind == "mem":
            return "store" if mn != "fld" else "load"
        return "x87_move"
    if mn.startswith("fcmov"):
        return "x87_move"
    if xmm or mn.startswith(("cvt", "p")):
        cls = _sse_class(mn)
        if cls:
            return cls
    return "alu"


_cache: dict[tuple, int] = {}


def cost(insn) -> int:
    """Modelled cycles of one retired instruction (a decoded ``translator.decoder.Insn``)."""
    key = (insn.mnemonic, tuple((op.kind, op.size) for op in insn.ops), insn.lock, insn.rep)
    c = _cache.get(key)
    if c is None:
        cls = classify(insn)
        c = REP_TABLE["rep_start"] if cls == "rep_start" else TABLE[cls]
        mem = [i for i, op in enumerate(insn.ops) if op.kind == "mem"]
        if mem and cls not in _ACCESSING and insn.mnemonic not in _NO_ACCESS:
            writes = mem[0] == 0 and insn.mnemonic not in _READS_FIRST \
                and not insn.mnemonic.startswith("f")
            c += TABLE["mem_rmw" if writes else "mem_read"]
        _cache[key] = c = max(1, c)
    return c


def rep_cost(insn) -> int:
    """A rep string instruction's cost per iteration in 1/REP_SCALE cycles (0 without rep)."""
    if not insn.rep or insn.mnemonic not in _STRING:
        return 0
    kind = insn.mnemonic[:4]
    if kind in ("movs", "stos"):
        return REP_TABLE[f"rep_{kind}b" if insn.mnemonic.endswith("b") else f"rep_{kind}q"]
    return REP_TABLE[f"rep_{kind}"]
