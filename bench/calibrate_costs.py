"""Measure, on the host CPU, the cost of each instruction class of the cycle model
(translator/costs.py), and print it next to the table that costs.py holds.

    .venv/bin/python bench/calibrate_costs.py              # measured vs costs.py, one class a line
    .venv/bin/python bench/calibrate_costs.py --only div64,load --reps 9
    .venv/bin/python bench/calibrate_costs.py --write      # also print the tables as Python
    .venv/bin/python bench/calibrate_costs.py --update     # and write them into costs.py

How a class is measured. Each class below has a representative body of a few instructions
(assembled with keystone, as translator/conformance/hostcpu.py does). The body is unrolled into
a loop in an executable page, called through ctypes with a scratch buffer, and the loop is timed
with perf_counter_ns over enough iterations to last ~2 ms; the best of --reps (15) runs is kept
(short runs and the minimum shrug off other processes sharing the CPU) and converted to cycles
at the TSC frequency, measured here against perf_counter_ns. A "cycle" of the model is therefore
one tick of the TSC (the nominal frequency: turbo does not change it), which is also what the
guest's rdtsc counts at `--accuracy cycle`.

    cost = (time(body) - scale * time(baseline)) / n

where n is the number of instructions of the class in the body and the optional baseline is the
same scaffolding without them (register set-up, fxch, a multiply that keeps values bounded).
Bodies are written so that the measured instructions form two independent dependency chains
wherever the instruction allows: the cost is then about half the latency, or the reciprocal
throughput when that is larger - "throughput-ish", about what compiled code with modest
instruction-level parallelism sees. Values stay normal (no denormals, no division faults).

Rounding into the table: every instruction class costs at least 1 cycle (so that modelled time
always advances); the memory-operand surcharges may be 0; rep string costs are kept in
1/256 cycles per iteration (costs.REP_SCALE). Expect a few per cent of noise between runs on a
shared machine (more on a busy one: run it on an idle machine).
"""
from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import platform
import re
import struct
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from translator import costs
from translator.conformance.hostcpu import assemble

REP_SCALE = getattr(costs, "REP_SCALE", 16)
# Scratch buffer layout (offsets from rbp, which holds the buffer's address in the loop).
BUF_SIZE = 0x10000
CONSTS = 0x800            # doubles: 3.0, 1/3, 0.5, 9.0, 2.5; floats at +0x40: 3.0f, 1/3f, 9.0f
SCRATCH = 0x900           # words the bodies store to and load from
SRC, DST = 0x1000, 0x4000  # rep string source and destination, 4096 bytes each, zero
FXAREA = 0xA000           # 512-byte fxsave area (16-byte aligned)
MXCSR_SAVE = 0xF000

PROLOGUE = ("push rbx; push rbp; push r12; push r13; push r14; push r15; mov rbp, rdi; "
            f"mov r15, rsi; stmxcsr dword ptr [rbp+{MXCSR_SAVE}]")
EPILOGUE = (f"ldmxcsr dword ptr [rbp+{MXCSR_SAVE}]; cld; "
            "pop r15; pop r14; pop r13; pop r12; pop rbp; pop rbx; ret")


@dataclass
class Spec:
    name: str                 # the class in costs.TABLE (or costs.REP_TABLE for rep_*)
    body: str
    n: float                  # instructions of the class per body
    setup: str = ""
    base: str = ""            # the scaffolding alone (subtracted)
    scale: float = 1.0        # how much of the baseline's time one body contains
    teardown: str = ""
    how: str = ""

    @property
    def kind(self) -> str:
        if self.name.startswith("rep_"):
            return "rep"
        return "surcharge" if self.name.startswith("mem_") else "insn"


def _twice(a: str, b: str) -> str:
    return f"{a}; {b}"


X87 = "fninit"
GPRS = "mov rax, 1; mov rdx, 2; mov rcx, 3"
ALU_BODY = "add rax, rcx; add rdx, rcx"
DIV = ("mov r8, 0x7fedcba987654321; mov r9, 0x6123456789abcdef; "
       "mov rcx, 0x12345657; mov rbx, 0x23456787")
DIV16 = "mov r8, 0x7654; mov r9, 0x6543; mov rcx, 0x123; mov rbx, 0x345"
DIV8 = "mov r8, 0xd7; mov r9, 0xc5; mov rcx, 7; mov rbx, 11"
XMM_D = (f"movsd xmm0, qword ptr [rbp+{CONSTS}]; movapd xmm2, xmm0; "
         f"movsd xmm4, qword ptr [rbp+{CONSTS}]; movsd xmm5, qword ptr [rbp+{CONSTS + 8}]; "
         f"movsd xmm1, qword ptr [rbp+{CONSTS + 16}]")
XMM_S = (f"movss xmm0, dword ptr [rbp+{CONSTS + 0x40}]; movaps xmm2, xmm0; "
         f"movss xmm4, dword ptr [rbp+{CONSTS + 0x40}]; "
         f"movss xmm5, dword ptr [rbp+{CONSTS + 0x44}]")
SQRT_D = f"movsd xmm0, qword ptr [rbp+{CONSTS + 24}]; movapd xmm2, xmm0; " \
         f"movsd xmm4, qword ptr [rbp+{CONSTS}]; movsd xmm5, qword ptr [rbp+{CONSTS + 8}]"
SQRT_S = f"movss xmm0, dword ptr [rbp+{CONSTS + 0x48}]; movaps xmm2, xmm0; " \
         f"movss xmm4, dword ptr [rbp+{CONSTS + 0x40}]; movss xmm5, dword ptr [rbp+{CONSTS + 0x44}]"
# x87: st0 = st1 = 1.0 (two chains swapped with fxch), st2 = 3.0, st3 = 1/3
X87_MUL = (f"fninit; fld qword ptr [rbp+{CONSTS + 8}]; fld qword ptr [rbp+{CONSTS}]; "
           "fld1; fld1")
X87_SQRT = (f"fninit; fld qword ptr [rbp+{CONSTS + 8}]; fld qword ptr [rbp+{CONSTS}]; "
            f"fld qword ptr [rbp+{CONSTS + 24}]; fld qword ptr [rbp+{CONSTS + 24}]")
X87_ADD = (f"fninit; fld qword ptr [rbp+{CONSTS + 16}]; fld qword ptr [rbp+{CONSTS + 16}]; "
           "fld1; fld1")
# st0 = 2.5, st1 = 0.5
X87_ONE = f"fninit; fld qword ptr [rbp+{CONSTS + 16}]; fld qword ptr [rbp+{CONSTS + 32}]"
FX = "fxch st(1)"
X87_MUL_BODY = (f"fmul st(0), st(2); {FX}; fmul st(0), st(2); {FX}; "
                f"fmul st(0), st(3); {FX}; fmul st(0), st(3); {FX}")
SSE_MUL_BODY = "mulsd xmm0, xmm4; mulsd xmm2, xmm4; mulsd xmm0, xmm5; mulsd xmm2, xmm5"
SSE_MULS_BODY = "mulss xmm0, xmm4; mulss xmm2, xmm4; mulss xmm0, xmm5; mulss xmm2, xmm5"
# jne, je, jmp and loop to the next instruction
JNE0, JE0 = ".byte 0x75, 0x00", ".byte 0x74, 0x00"
JMP0, LOOP0 = ".byte 0xeb, 0x00", ".byte 0xe2, 0x00"
MOVSQ = ".byte 0x48, 0xa5"


def _rep(insn: str, count: int, setup_regs: str = "") -> str:
    return (f"lea rsi, [rbp+{SRC}]; lea rdi, [rbp+{DST}]; mov ecx, {count}; {setup_regs}"
            + (f"; {insn}" if insn else ""))


def _div(op: str, width: int, signed: bool) -> Spec:
    a, b = ("r8", "r9")
    if width == 64:
        ext, mov, regs = ("cqo" if signed else "xor edx, edx"), "mov rax, {s}", ("rcx", "rbx")
        xor = "xor {s}, rax"
    elif width == 32:
        ext, mov, regs = ("cdq" if signed else "xor edx, edx"), "mov eax, {s}d", ("ecx", "ebx")
        xor = "xor {s}d, eax"
    elif width == 16:
        ext, mov, regs = ("cwd" if signed else "xor edx, edx"), "mov eax, {s}d", ("cx", "bx")
        xor = "xor {s}d, eax"
    else:
        ext, regs = "", ("cl", "bl")
        mov = "movsx eax, {s}b" if signed else "movzx eax, {s}b"
        xor = "xor {s}d, eax"

    def chain(s, d, with_div):
        parts = [mov.format(s=s)] + ([ext] if ext else []) + ([f"{op} {d}"] if with_div else []) \
            + [xor.format(s=s)]
        return "; ".join(parts)
    setup = {64: DIV, 32: DIV, 16: DIV16, 8: DIV8}[width]
    return Spec(f"{op}{width}", _twice(chain(a, regs[0], True), chain(b, regs[1], True)), 2,
                setup, _twice(chain(a, regs[0], False), chain(b, regs[1], False)),
                how=f"{op} r{width}, two chains: dividend ^= quotient")


def _x87_one(name: str, op: str, pushes: int = 1, pops: int = 1, st: int = 1) -> Spec:
    """One x87 operation on fresh copies of constants: throughput of a microcoded instruction."""
    loads = "; ".join([f"fld st({st})"] * pushes)
    stores = "; ".join(["fstp st(0)"] * pops)
    base = f"{loads}; " + "; ".join(["fstp st(0)"] * pushes)
    return Spec(name, f"{loads}; {op}; {stores}", 1, X87_ONE, base, teardown=X87,
                how=f"{op} on a copy of a constant")


SPECS: list[Spec] = [
    Spec("nop", "nop; nop", 2, how="nop"),
    Spec("alu", "add rax, rcx; add rdx, rcx", 2, GPRS, how="add r64, r64, two chains"),
    Spec("shift", "shl rax, 3; shl rdx, 3", 2, GPRS, how="shl r64, imm"),
    Spec("shift_cl", "shl rax, cl; shl rdx, cl", 2, GPRS, how="shl r64, cl"),
    Spec("rotate_carry", "rcl rax, 3; rcr rdx, 3", 2, GPRS, how="rcl/rcr r64, imm (chained by CF)"),
    Spec("shift_double", "shld rax, rcx, 3; shrd rdx, rcx, 3", 2, GPRS,
         how="shld/shrd r64, r64, imm"),
    Spec("bitscan", "popcnt rax, rax; popcnt rdx, rdx", 2, GPRS, how="popcnt r64, r64"),
    Spec("mul", "imul rax, rcx; imul rdx, rcx", 2, GPRS, how="imul r64, r64"),
    Spec("mul_wide", "mov rax, r8; mul rcx; mov r8, rax; mov rax, r9; mul rcx; mov r9, rax", 2,
         GPRS + "; mov r8, 5; mov r9, 7",
         "mov rax, r8; mov r8, rax; mov rax, r9; mov r9, rax", how="mul r64 (rdx:rax)"),
    *[_div(op, w, op == "idiv") for op in ("div", "idiv") for w in (8, 16, 32, 64)],
    Spec("load", "mov rax, [rax]; mov rdx, [rdx]", 2,
         "lea rax, [rbp]; mov [rbp], rax; lea rdx, [rbp+64]; mov [rbp+64], rdx",
         how="mov r64, [r64] pointer chase (L1), two chains"),
    Spec("store", f"mov [rbp+{SCRATCH}], rax; mov [rbp+{SCRATCH + 8}], rdx", 2, GPRS,
         how="mov [m], r64"),
    Spec("mem_read", "add rax, [rax]; add rdx, [rdx]", 2,
         "lea rax, [rbp+256]; lea rdx, [rbp+320]; xor ecx, ecx",
         "add rax, rcx; add rdx, rcx", how="add r64, [r64] (address on the chain) minus add r, r"),
    Spec("mem_rmw", "add [rbp+384], rcx; add [rbp+448], rcx", 2, GPRS,
         "add rax, rcx; add rdx, rcx", how="add [m], r64 (chained through memory) minus add r, r"),
    Spec("stack", "push rax; pop rdx", 2, GPRS, how="push r64; pop r64"),
    Spec("pushf_popf", "pushfq; popfq", 2, GPRS, how="pushfq; popfq"),
    Spec("branch", f"add rax, rcx; {JNE0}; add rdx, rcx; {JE0}", 2, GPRS, ALU_BODY,
         how="jcc to the next insn, taken and not taken (minus the adds)"),
    Spec("jump", f"add rax, rcx; {JMP0}; add rdx, rcx; {JMP0}", 2, GPRS, ALU_BODY,
         how="jmp to the next instruction (minus the adds)"),
    Spec("call_ret", "call fn", 2, how="call to a ret: the pair, per instruction"),
    Spec("loop", LOOP0, 1, "mov rcx, -1", how="loop to the next instruction"),
    Spec("string", f"lea rsi, [rbp+{SRC}]; lea rdi, [rbp+{DST}]; " + "; ".join([MOVSQ] * 8), 8,
         base=f"lea rsi, [rbp+{SRC}]; lea rdi, [rbp+{DST}]", how="movsq without rep"),
    Spec("atomic", "lock add qword ptr [rbp+512], rcx; lock add qword ptr [rbp+576], rcx", 2, GPRS,
         how="lock add [m], r64"),
    Spec("fence_full", "mfence", 1, how="mfence"),
    Spec("fence_load", "lfence", 1, how="lfence"),
    Spec("fence_store", "sfence", 1, how="sfence"),
    Spec("pause", "pause", 1, how="pause"),
    Spec("rdtsc", "rdtsc", 1, how="rdtsc"),
    Spec("cpuid", "xor eax, eax; cpuid", 1, base="xor eax, eax", how="cpuid leaf 0"),
    Spec("syscall", "mov eax, 39; syscall", 1, base="mov eax, 39",
         how="syscall getpid: the whole round trip through the host kernel"),
    # SSE
    Spec("sse_move", "movaps xmm0, xmm1; movaps xmm2, xmm3", 2, how="movaps xmm, xmm"),
    Spec("sse_int", "paddd xmm0, xmm1; paddd xmm2, xmm1", 2, how="paddd"),
    Spec("sse_shuffle", "pshufd xmm0, xmm0, 0x1b; pshufd xmm2, xmm2, 0x1b", 2, how="pshufd"),
    Spec("sse_int_mul", "pmullw xmm0, xmm1; pmullw xmm2, xmm1", 2, how="pmullw"),
    Spec("sse_gpr", "movq xmm0, rax; movq rax, xmm0; movq xmm2, rdx; movq rdx, xmm2", 4, GPRS,
         how="movq xmm, r64 and back"),
    Spec("sse_fp_add", "addsd xmm0, xmm1; addsd xmm2, xmm1; subsd xmm0, xmm1; subsd xmm2, xmm1", 4,
         XMM_D, how="addsd/subsd"),
    Spec("sse_fp_mul", SSE_MUL_BODY, 4, XMM_D, how="mulsd by 3 and by 1/3"),
    Spec("sse_div_s", "divss xmm0, xmm4; divss xmm2, xmm4; divss xmm0, xmm5; divss xmm2, xmm5", 4,
         XMM_S, how="divss by 3 and by 1/3"),
    Spec("sse_div_d", "divsd xmm0, xmm4; divsd xmm2, xmm4; divsd xmm0, xmm5; divsd xmm2, xmm5", 4,
         XMM_D, how="divsd by 3 and by 1/3"),
    Spec("sse_sqrt_s", "sqrtss xmm0, xmm0; mulss xmm0, xmm4; sqrtss xmm2, xmm2; mulss xmm2, xmm4",
         2, SQRT_S, SSE_MULS_BODY, 0.5, how="x = sqrtss(x) * 3 (x stays 9), minus the mulss"),
    Spec("sse_sqrt_d", "sqrtsd xmm0, xmm0; mulsd xmm0, xmm4; sqrtsd xmm2, xmm2; mulsd xmm2, xmm4",
         2, SQRT_D, SSE_MUL_BODY, 0.5, how="x = sqrtsd(x) * 3 (x stays 9), minus the mulsd"),
    Spec("sse_cvt", "cvtsi2sd xmm0, rax; cvttsd2si rax, xmm0; cvtsi2sd xmm2, rdx; "
         "cvttsd2si rdx, xmm2", 4, GPRS, how="cvtsi2sd and cvttsd2si"),
    Spec("mxcsr", f"stmxcsr dword ptr [rbp+{SCRATCH}]; ldmxcsr dword ptr [rbp+{SCRATCH}]", 2,
         how="stmxcsr; ldmxcsr"),
    # x87
    Spec("x87_move", "fld st(0); fstp st(0)", 2, "fninit; fld1", teardown=X87,
         how="fld st; fstp st"),
    Spec("x87_add", f"fadd st(0), st(2); {FX}; fadd st(0), st(2); {FX}; "
         f"fsub st(0), st(2); {FX}; fsub st(0), st(2); {FX}", 4, X87_ADD, f"{FX}; " * 3 + FX,
         teardown=X87, how="fadd/fsub 0.5, two chains swapped by fxch (minus the fxch)"),
    Spec("x87_mul", X87_MUL_BODY, 4, X87_MUL, f"{FX}; " * 3 + FX, teardown=X87,
         how="fmul by 3 and by 1/3, two chains (minus the fxch)"),
    Spec("x87_div", X87_MUL_BODY.replace("fmul", "fdiv"), 4, X87_MUL, f"{FX}; " * 3 + FX,
         teardown=X87, how="fdiv by 3 and by 1/3, two chains (minus the fxch)"),
    Spec("x87_sqrt", f"fsqrt; fmul st(0), st(2); {FX}; fsqrt; fmul st(0), st(2); {FX}", 2,
         X87_SQRT, X87_MUL_BODY, 0.5, teardown=X87,
         how="x = fsqrt(x) * 3 (x stays 9), minus fmul and fxch"),
    _x87_one("x87_trig", "fsin"),
    _x87_one("x87_tan", "fptan", pops=2),
    _x87_one("x87_atan", "fpatan", pushes=2, pops=1),
    _x87_one("x87_log", "fyl2x", pushes=2, pops=1),
    _x87_one("x87_exp", "f2xm1"),
    _x87_one("x87_misc", "frndint"),
    Spec("x87_compare", "fcomi st(0), st(1); fucomi st(0), st(1)", 2, "fninit; fld1; fldz",
         teardown=X87, how="fcomi/fucomi"),
    Spec("x87_cvt", f"fild qword ptr [rbp+{SCRATCH}]; fistp qword ptr [rbp+{SCRATCH + 8}]", 2,
         "fninit", teardown=X87, how="fild m64; fistp m64"),
    Spec("x87_control", f"fnstcw word ptr [rbp+{SCRATCH}]; fldcw word ptr [rbp+{SCRATCH}]", 2,
         "fninit", teardown=X87, how="fnstcw; fldcw"),
    Spec("x87_state", f"fxsave [rbp+{FXAREA}]; fxrstor [rbp+{FXAREA}]", 2, "fninit",
         teardown=X87, how="fxsave; fxrstor"),
    # rep string instructions: cycles per iteration (4096 iterations minus 1 iteration)
    Spec("rep_start", _rep("rep movsb", 1), 1, base=_rep("", 1),
         how="rep movsb with rcx = 1: the fixed cost of a rep instruction"),
    Spec("rep_movsb", _rep("rep movsb", 4096), 4095, base=_rep("rep movsb", 1),
         how="rep movsb 4 KiB"),
    Spec("rep_movsq", _rep("rep movsq", 512), 511, base=_rep("rep movsq", 1),
         how="rep movsq 4 KiB"),
    Spec("rep_stosb", _rep("rep stosb", 4096, "xor eax, eax"), 4095,
         base=_rep("rep stosb", 1, "xor eax, eax"), how="rep stosb 4 KiB"),
    Spec("rep_stosq", _rep("rep stosq", 512, "xor eax, eax"), 511,
         base=_rep("rep stosq", 1, "xor eax, eax"), how="rep stosq 4 KiB"),
    Spec("rep_scas", _rep("repne scasb", 4096, "mov eax, 1"), 4095,
         base=_rep("repne scasb", 1, "mov eax, 1"), how="repne scasb over 4 KiB of zeros"),
    Spec("rep_cmps", _rep("repe cmpsb", 4096), 4095, base=_rep("repe cmpsb", 1),
         how="repe cmpsb over two equal 4 KiB buffers"),
]
# rep instructions whose per-iteration cost is not measured on its own: what they are taken as
REP_SAME = {"rep_lods": "rep_scas"}


class NativeCode:
    """Executable pages holding one measurement loop, called as f(buffer, iterations)."""

    FN = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64)

    def __init__(self, size: int = 1 << 16):
        self.code = mmap.mmap(-1, size, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.code))
        self.size = size

    def load(self, text: str):
        blob = assemble(text, self.addr)
        if len(blob) > self.size:
            raise ValueError("measurement loop too large")
        self.code.seek(0)
        self.code.write(blob)
        return self.FN(self.addr)


def make_buffer():
    buf = mmap.mmap(-1, BUF_SIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    buf[CONSTS:CONSTS + 40] = struct.pack("<5d", 3.0, 1 / 3, 0.5, 9.0, 2.5)
    buf[CONSTS + 0x40:CONSTS + 0x4C] = struct.pack("<3f", 3.0, 1 / 3, 9.0)
    return buf, ctypes.addressof(ctypes.c_char.from_buffer(buf))


def loop_text(spec_body: str, setup: str, teardown: str, unroll: int) -> str:
    body = "; ".join([spec_body] * unroll)
    return (f"{PROLOGUE}; {setup + '; ' if setup else ''}top: {body}; dec r15; jnz top; "
            f"{teardown + '; ' if teardown else ''}{EPILOGUE}; fn: ret")


def time_body(native: NativeCode, buf_addr: int, body: str, setup: str, teardown: str,
              reps: int, target_ns: int = 2_000_000) -> float:
    """Best nanoseconds per body over `reps` runs of a loop lasting about target_ns."""
    unroll = max(1, min(32, 128 // (body.count(";") + 1)))
    fn = native.load(loop_text(body, setup, teardown, unroll))
    iters = 16
    while True:                       # grow the loop until one run lasts long enough
        t0 = time.perf_counter_ns()
        fn(buf_addr, iters)
        dt = time.perf_counter_ns() - t0
        if dt > target_ns // 8 or iters > 1 << 30:
            break
        iters *= 4
    iters = max(1, int(iters * target_ns / max(dt, 1)))
    best = None
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn(buf_addr, iters)
        dt = time.perf_counter_ns() - t0
        best = dt if best is None else min(best, dt)
    return best / (iters * unroll)


def tsc_hz(native: NativeCode) -> float:
    """The TSC frequency, measured against perf_counter_ns over 0.3 s."""
    fn = native.load("rdtsc; shl rdx, 32; or rax, rdx; ret")
    t0, c0 = time.perf_counter_ns(), fn(0, 0)
    time.sleep(0.3)
    t1, c1 = time.perf_counter_ns(), fn(0, 0)
    return (c1 - c0) * 1e9 / (t1 - t0)


def measure(specs, reps: int, hz: float) -> dict[str, float]:
    native = NativeCode()
    buf, buf_addr = make_buffer()
    out = {}
    for spec in specs:
        t = time_body(native, buf_addr, spec.body, spec.setup, spec.teardown, reps)
        if spec.base:
            t -= spec.scale * time_body(native, buf_addr, spec.base, spec.setup, spec.teardown,
                                        reps)
        out[spec.name] = t * hz / 1e9 / spec.n
    del buf
    return out


def rounded(spec: Spec, cycles: float) -> int:
    if spec.kind == "rep":
        return max(1, round(cycles * REP_SCALE)) if spec.name != "rep_start" \
            else max(1, round(cycles))
    return max(0 if spec.kind == "surcharge" else 1, round(cycles))


def cpu_name() -> str:
    """Model name, family and model from /proc/cpuinfo, and whether it runs under a hypervisor."""
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                break                       # the end of the first CPU's block
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown CPU"
    extra = f"family {info.get('cpu family', '?')} model {info.get('model', '?')}"
    if "hypervisor" in info.get("flags", "").split():
        extra += ", under a hypervisor"
    return f"{info.get('model name', 'unknown CPU')} ({extra})"


def tables_text(specs, measured: dict, hz: float) -> str:
    """The calibration as Python: CALIBRATED, NOMINAL_HZ, TABLE and REP_TABLE."""
    today = datetime.now(UTC).date().isoformat()
    lines = [f'CALIBRATED = ("{today}, {cpu_name()}, "\n              "TSC {hz / 1e6:.0f} MHz")',
             f"NOMINAL_HZ = {round(hz / 1e6) * 1_000_000:_}"]
    for title, kind in (("TABLE", ("insn", "surcharge")), ("REP_TABLE", ("rep",))):
        lines.append(f"{title} = {{")
        for s in specs:
            if s.kind in kind:
                lines.append(f'    "{s.name}": {rounded(s, measured[s.name])},'.ljust(30)
                             + f"# {s.how}")
        if kind == ("rep",):
            for alias, same in REP_SAME.items():
                if same in measured:
                    lines.append(f'    "{alias}": {rounded(Spec(alias, "", 1), measured[same])},'
                                 .ljust(30) + f"# taken as {same}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def update_costs(text: str) -> None:
    """Replace the calibrated assignments in translator/costs.py by `text`'s."""
    path = ROOT / "translator" / "costs.py"
    src = path.read_text()
    for name in ("CALIBRATED", "NOMINAL_HZ", "TABLE", "REP_TABLE"):
        pattern = rf'^{name} = (\{{.*?^\}}|\(.*?"\)|.*?)$'
        new = re.search(pattern, text, re.MULTILINE | re.DOTALL).group(0)
        old = re.search(pattern, src, re.MULTILINE | re.DOTALL)
        if not old:
            raise SystemExit(f"{path}: no {name} = ... to replace")
        src = src[:old.start()] + new + src[old.end():]
    path.write_text(src)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated classes to measure")
    ap.add_argument("--reps", type=int, default=15, help="runs per class; the best is kept")
    ap.add_argument("--write", action="store_true",
                    help="also print the tables as Python to paste into translator/costs.py")
    ap.add_argument("--update", action="store_true",
                    help="write the measured tables into translator/costs.py")
    args = ap.parse_args(argv)
    specs = SPECS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {s.name for s in SPECS}
        if unknown:
            ap.error(f"unknown classes: {', '.join(sorted(unknown))}")
        specs = [s for s in SPECS if s.name in wanted]
    hz = tsc_hz(NativeCode(mmap.PAGESIZE))
    print(f"# {cpu_name()}, TSC {hz / 1e6:.0f} MHz (measured), pid {os.getpid()}")
    measured = measure(specs, args.reps, hz)
    print(f"{'class':<14}{'measured':>10}{'table':>7}{'costs.py':>9}  how")
    for spec in specs:
        c = measured[spec.name]
        table = getattr(costs, "REP_TABLE" if spec.kind == "rep" else "TABLE", {})
        current = table.get(spec.name, "-")
        unit = f"/{REP_SCALE}" if spec.kind == "rep" and spec.name != "rep_start" else ""
        print(f"{spec.name:<14}{c:>10.2f}{rounded(spec, c):>7}{str(current) + unit:>9}  {spec.how}")
    if args.write or args.update:
        text = tables_text(specs, measured, hz)
        if args.write:
            print("\n" + text, end="")
        if args.update:
            if specs is not SPECS:
                ap.error("--update needs every class measured (no --only)")
            update_costs(text)
            print("translator/costs.py updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
