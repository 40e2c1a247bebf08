"""The MMX instruction forms (the mm-register forms of MMX, SSE and SSE2) and maskmovdqu, with
their input vectors: general registers, flags, memory, xmm0..xmm15, MXCSR and the whole x87 state
(an FXSAVE image: TOP, the abridged tag and R0-R7, which the mm registers alias) must match the
host CPU.

Forms come from a table (mnemonic x operand kind: mm,mm / mm,m64 / mm,imm8 / mm<->r32,r64 /
mm<->xmm). Each vector starts the x87 unit in a random state (TOP, tag, register contents, C0-C3),
so that the switch to MMX mode (TOP = 0, every register valid, the written register's exponent
all ones) is checked every time; the mm operands are placed in the physical registers they alias.
Operand values are the lane-typed edge values of forms_sse.py crossed pairwise, destination lane
against source lane, plus seeded random values (zlib.crc32 of the form text); the conversions
that round by MXCSR.RC run under all four modes::

    host, jit = HostCPU(), JitCPU()
    result = check(host, jit, ALL_FORMS[0])     # paddb mm1, mm2: a harness.Result
"""
from __future__ import annotations

import random
import zlib

from .forms_sse import EDGES, WIDTH
from .forms_sse import _lanes as put_lanes
from .forms_x87 import random80
from .harness import (MXCSR_DEFAULT, Form, HostCPU, JitCPU, Result, check_form, fxsave_image,
                      random_flags)
from .hostcpu import GPR_NAMES

FAMILY = "MMX"
MIN_VECTORS = 24
OFF = 16                                      # memory operands are [rbx + 16]
MEM = {2: "word ptr [rbx + 16]", 4: "dword ptr [rbx + 16]", 8: "qword ptr [rbx + 16]",
       16: "xmmword ptr [rbx + 16]"}
MASKMOV_AT = 21                               # maskmov* store to [rdi]: an unaligned offset
U64 = (1 << 64) - 1


class MMXForm(Form):
    """A form with its operand slots [(where, lane type)], where is mmN, xmmN, a gpr or "mem";
    `bits` is how much of each slot the lanes fill (64, or 128 for two doubles or an xmm)."""

    def __init__(self, text, slots, bits=64, rc=False, pointers=()):
        super().__init__(text, text.split()[0], "mmx", pointers)
        self.slots, self.bits, self.rc = slots, bits, rc


def forms() -> list[MMXForm]:
    out = []

    def add(text, slots, **kw):
        out.append(MMXForm(text, slots, **kw))

    def binary(m, lanes, regs=("mm1", "mm2")):
        d, s = regs
        add(f"{m} {d}, {s}", [(d, lanes), (s, lanes)])
        add(f"{m} {d}, {MEM[8]}", [(d, lanes), ("mem", lanes)])

    lanes_of = {"b": "i8", "w": "i16", "d": "i32", "q": "i64"}
    for s in "bwdq":
        binary("padd" + s, lanes_of[s], ("mm7", "mm0") if s == "d" else ("mm1", "mm2"))
        binary("psub" + s, lanes_of[s])
    for s in "bw":
        for m in ("padds", "psubs", "paddus", "psubus", "pcmpeq", "pcmpgt"):
            binary(m + s, lanes_of[s])
    binary("pcmpeqd", "i32")
    binary("pcmpgtd", "i32")
    for m in ("pmullw", "pmulhw", "pmulhuw", "pmaddwd", "pavgw", "pminsw", "pmaxsw"):
        binary(m, "i16")
    for m in ("pavgb", "pminub", "pmaxub", "psadbw"):
        binary(m, "i8")
    binary("pmuludq", "i32")
    for m in ("pand", "pandn", "por", "pxor"):
        binary(m, "i32")
    add("pxor mm3, mm3", [("mm3", "i32")])
    binary("packsswb", "i16")
    binary("packuswb", "i16")
    binary("packssdw", "i32")
    for h in "lh":
        for s in ("bw", "wd", "dq"):
            binary(f"punpck{h}{s}", lanes_of[s[0]])
    for m in ("psll", "psrl", "psra"):
        for s in ("wdq" if m != "psra" else "wd"):
            lanes = lanes_of[s]
            for n in (0, 1, WIDTH[lanes] - 1, WIDTH[lanes], 200):
                add(f"{m}{s} mm1, {n}", [("mm1", lanes)])
            add(f"{m}{s} mm1, mm2", [("mm1", lanes), ("mm2", "cnt")])
            add(f"{m}{s} mm1, {MEM[8]}", [("mm1", lanes), ("mem", "cnt")])
    for imm in (0x1B, 0xD8):
        add(f"pshufw mm1, mm2, {imm:#x}", [("mm1", "i16"), ("mm2", "i16")])
    add(f"pshufw mm6, {MEM[8]}, 0x39", [("mm6", "i16"), ("mem", "i16")])
    for n in (0, 3, 6):
        add(f"pextrw ecx, mm2, {n}", [("mm2", "i16")])
        add(f"pinsrw mm1, edx, {n}", [("mm1", "i16"), ("rdx", "i16")])
    add("pextrw r10d, mm5, 1", [("mm5", "i16")])
    add(f"pinsrw mm1, {MEM[2]}, 2", [("mm1", "i16"), ("mem", "i16")])
    add("pmovmskb ecx, mm2", [("mm2", "i8")])
    add("pmovmskb r9d, mm7", [("mm7", "i8")])
    # moves
    add("movd mm1, eax", [("mm1", "i32"), ("rax", "i32")])
    add("movd mm7, r9d", [("mm7", "i32"), ("r9", "i32")])
    add(f"movd mm1, {MEM[4]}", [("mm1", "i32"), ("mem", "i32")])
    add("movd ecx, mm2", [("mm2", "i32")])
    add(f"movd {MEM[4]}, mm2", [("mem", "i32"), ("mm2", "i32")])
    add("movq mm1, rax", [("mm1", "i64"), ("rax", "i64")])
    add("movq mm0, r12", [("mm0", "i64"), ("r12", "i64")])
    add(f"movq mm1, {MEM[8]}", [("mm1", "i64"), ("mem", "i64")])
    add("movq r12, mm6", [("mm6", "i64")])
    add(f"movq {MEM[8]}, mm2", [("mem", "i64"), ("mm2", "i64")])
    add("movq mm1, mm2", [("mm1", "i64"), ("mm2", "i64")])
    add(f"movntq {MEM[8]}, mm2", [("mem", "i64"), ("mm2", "i64")])
    add("movq2dq xmm1, mm2", [("xmm1", "i64"), ("mm2", "i64")])
    add("movdq2q mm1, xmm2", [("mm1", "i64"), ("xmm2", "i64")])
    add("maskmovq mm1, mm2", [("mm1", "i8"), ("mm2", "i8")], pointers=("rdi",))
    add("maskmovdqu xmm1, xmm2", [("xmm1", "i8"), ("xmm2", "i8")], bits=128,
        pointers=("rdi",))
    add("maskmovdqu xmm9, xmm14", [("xmm9", "i8"), ("xmm14", "i8")], bits=128,
        pointers=("rdi",))
    add("emms", [])
    # conversions (only the source is crossed: the destination is all output)
    for m in ("cvtpi2ps", "cvtpi2pd"):
        add(f"{m} xmm1, mm2", [("mm2", "i32")])
        add(f"{m} xmm1, {MEM[8]}", [("mem", "i32")])
    for m in ("cvtps2pi", "cvttps2pi"):
        rc = m == "cvtps2pi"
        add(f"{m} mm1, xmm2", [("xmm2", "f32")], rc=rc)
        add(f"{m} mm1, {MEM[8]}", [("mem", "f32")], rc=rc)
    for m in ("cvtpd2pi", "cvttpd2pi"):
        rc = m == "cvtpd2pi"
        add(f"{m} mm1, xmm2", [("xmm2", "f64")], bits=128, rc=rc)
        add(f"{m} mm3, {MEM[16]}", [("mem", "f64")], bits=128, rc=rc)
    return out


def x87_state(rng: random.Random, mm: dict[int, int]) -> bytes:
    """An FXSAVE image of a random x87 state (TOP, tag, C0-C3, contents) whose physical
    registers RI hold mm[I] in their low 64 bits."""
    top = rng.getrandbits(3)
    stack = [random80(rng) for _ in range(8)]       # ST(0)..ST(7)
    for i, value in mm.items():
        k = (i - top) & 7                           # RI is ST((I - TOP) & 7)
        stack[k] = stack[k] & ~U64 | value
    sw = rng.getrandbits(16) & 0x4700 | top << 11
    return fxsave_image(0x037F, sw, rng.getrandbits(8), stack)


def vectors(form: MMXForm, seed: int):
    """(regs, rflags, mem, xmm, mxcsr, fpu) tuples: edge pairs spread over the lanes, then
    random ones."""
    rng = random.Random(seed)
    slots = form.slots
    kinds = [k for _, k in slots]
    width = min((WIDTH[k] for k in kinds), default=64)
    nlanes = form.bits // width
    if "cnt" in kinds or any(not w.startswith(("mm", "xmm", "mem")) for w, _ in slots):
        nlanes = 1                          # one shift count, one general register a vector
    edges = [EDGES[k] for k in kinds]
    if len(slots) >= 2:
        combos = [(a, c) for a in edges[0] for c in edges[1]]
    elif slots:
        combos = [(a,) for a in edges[0]]
    else:
        combos = []
    groups = [combos[i:i + nlanes] for i in range(0, len(combos), nlanes)]
    groups += [[tuple(rng.getrandbits(WIDTH[k]) for k in kinds) for _ in range(nlanes)]
               for _ in range(24)]
    out = []
    for group in groups:
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
        regs["rbx"] = 0                      # the memory operand is [rbx + 16]
        regs["rdi"] = MASKMOV_AT if form.pointers == ("rdi",) else regs["rdi"]
        xmm = {i: rng.getrandbits(128) for i in range(16)}
        mm = {i: rng.getrandbits(64) for i in range(8)}
        mem = bytearray(rng.getrandbits(8) for _ in range(64))
        for s, (where, kind) in enumerate(slots):
            w = WIDTH[kind]
            values = {k: combo[s] for k, combo in enumerate(group)}
            if where.startswith("xmm"):
                n = int(where[3:])
                xmm[n] = put_lanes(xmm[n], w, values)
            elif where.startswith("mm"):
                n = int(where[2:])
                mm[n] = put_lanes(mm[n], w, values) & U64
            elif where == "mem":
                old = int.from_bytes(mem[OFF:OFF + 16], "little")
                mem[OFF:OFF + 16] = put_lanes(old, w, values).to_bytes(16, "little")
            else:
                regs[where] = put_lanes(regs[where], w, values)
        mxcsr = MXCSR_DEFAULT | rng.getrandbits(6)
        for rc in (range(4) if form.rc else (0,)):
            out.append((dict(regs), random_flags(rng), bytes(mem), dict(xmm),
                        mxcsr | rc << 13, x87_state(rng, mm)))
    return out


ALL_FORMS = forms()


def form_of(case) -> Form:
    return case


def check(host: HostCPU, jit: JitCPU, case) -> Result:
    """Run one form of ALL_FORMS on both CPUs with its vectors (seeded by the form text)."""
    return check_form(host, jit, case, vectors(case, zlib.crc32(case.text.encode())))
