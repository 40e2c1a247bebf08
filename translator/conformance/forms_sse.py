"""The SSE/SSE2 instruction forms, with their input vectors: general registers, flags,
xmm0..xmm15, MXCSR (bits 6-15; the exception flags 0-5 are not modelled yet and are counted apart)
and memory must match the host CPU.

Forms come from a table (mnemonic x operand kind x lane type). Each form names the lane type of
its destination and source (``f32 f64 i8 i16 i32 i64``); inputs are that type's edge values
(zeros of both signs, ones, extremes, denormals, infinities, quiet and signalling NaNs with
payloads, values at the integer-conversion limits, sign-bit byte patterns) crossed pairwise,
destination lane against source lane, several pairs to a register, plus seeded random values
(zlib.crc32 of the form text). Conversions that round by MXCSR.RC run under all four rounding
modes; everything else under the default MXCSR with random exception flags. At datapath (the
exact flag model, where the host runs the floating-point instructions under the guest's MXCSR)
each vector of a floating-point form is also run under a non-default MXCSR, cycling through the
rounding modes with and without DAZ and FTZ (the lower levels round to nearest and ignore
DAZ/FTZ, see translator/semantics/sse_fp.py)::

    host, jit = HostCPU(), JitCPU()
    result = check(host, jit, ALL_FORMS[0])     # addps xmm1, xmm2: a harness.Result
"""
from __future__ import annotations

import random
import re
import struct
import zlib

from .harness import MXCSR_DEFAULT, Form, HostCPU, JitCPU, Result, check_form, random_flags
from .hostcpu import GPR_NAMES

FAMILY = "SSE"
MIN_VECTORS = 24

MEM = {4: "dword ptr [rbx + 16]", 8: "qword ptr [rbx + 16]", 16: "xmmword ptr [rbx + 16]"}


def f32(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _ints(bits: int) -> list[int]:
    m, s = (1 << bits) - 1, 1 << (bits - 1)
    byte80 = int.from_bytes(b"\x80" * (bits // 8), "little")
    return [0, 1, 2, m, m - 1, s, s - 1, s + 1, m // 3, (m // 3) << 1, byte80, byte80 >> 1 | 1,
            0x7F & m, 0xFF & m, 0x100 & m, 0x8000 & m]


_LIMITS = [2.0 ** 31, -(2.0 ** 31), 2.0 ** 63, -(2.0 ** 63), 2.0 ** 31 - 1, 2.0 ** 31 - 0.5]
EDGES = {
    "f32": [0, 0x80000000, f32(1), f32(-1), f32(0.5), f32(1.5), f32(-2.5), f32(3.5), f32(-0.5),
            0x7F7FFFFF, 0xFF7FFFFF, 0x00800000, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000,
            0x7FC00000, 0x7FC12345, 0xFFC00001, 0x7F800001, 0xFF812345, 0x4EFFFFFF, 0x5EFFFFFF,
            f32(1e10), f32(-7.25)] + [f32(x) for x in _LIMITS],
    "f64": [0, 1 << 63, f64(1), f64(-1), f64(0.5), f64(1.5), f64(-2.5), f64(3.5), f64(-0.5),
            0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x0010000000000000, 1, 0x800FFFFFFFFFFFFF,
            0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0x7FF8000012345678,
            0xFFF8000000000001, 0x7FF0000000000001, 0xFFF4000087654321, 0x43DFFFFFFFFFFFFF,
            f64(2147483647.5), f64(-2147483648.5), f64(-2147483649.0), f64(-2147483648.9),
            f64(1e300), f64(1e-300), f64(3.4e38)] + [f64(x) for x in _LIMITS],
    "i8": _ints(8), "i16": _ints(16), "i32": _ints(32), "i64": _ints(64),
    # shift counts (the low qword of an xmm or memory source)
    "cnt": [0, 1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 1 << 32, 1 << 63,
            (1 << 64) - 1],
}
WIDTH = {"f32": 32, "f64": 64, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "cnt": 64}
# The floating-point forms: their results depend on MXCSR.RC, DAZ and FTZ.
FLOATING = re.compile(r"^(add|sub|mul|div|min|max|sqrt|rcp|rsqrt|cmp|u?comis|cvt)")
# (RC, DAZ, FTZ) as MXCSR bits, every combination but the default
MODES = [rc << 13 | daz << 6 | ftz << 15 for daz in (1, 0) for ftz in (1, 0) for rc in range(4)
         if rc or daz or ftz]
SUFFIX_LANES = {"ps": "f32", "pd": "f64", "ss": "f32", "sd": "f64"}
INT_LANES = {"b": "i8", "w": "i16", "d": "i32", "q": "i64"}


class SSEForm(Form):
    """A form with its operand slots: [(where, lane type)], where is xmmN, a gpr or "mem"."""

    def __init__(self, text, mnemonic, slots, scalar=False, rc=False):
        super().__init__(text, mnemonic, "sse")
        self.slots = slots
        self.scalar = scalar       # only lane 0 of the inputs is crossed
        self.rc = rc               # run under every MXCSR rounding mode
        m = re.search(r"\[rbx \+ (\d+)\]", text)
        self.offset = int(m.group(1)) if m else 16


def forms() -> list[SSEForm]:
    out = []

    def add(text, slots, scalar=False, rc=False):
        out.append(SSEForm(text, text.split()[0], slots, scalar, rc))

    def binary(m, lanes, mem_size=16, scalar=False, rex=False, rc=False, imm=""):
        add(f"{m} xmm1, xmm2{imm}", [("xmm1", lanes), ("xmm2", lanes)], scalar, rc)
        add(f"{m} xmm1, {MEM[mem_size]}{imm}", [("xmm1", lanes), ("mem", lanes)], scalar, rc)
        if rex:
            add(f"{m} xmm9, xmm14{imm}", [("xmm9", lanes), ("xmm14", lanes)], scalar, rc)

    # floating point
    for op in ("add", "sub", "mul", "div", "min", "max"):
        for s, lanes in SUFFIX_LANES.items():
            scalar = s[0] == "s"
            binary(op + s, lanes, {"ss": 4, "sd": 8}.get(s, 16), scalar, rex=s == "ps")
    for s, lanes in SUFFIX_LANES.items():
        scalar = s[0] == "s"
        binary("sqrt" + s, lanes, {"ss": 4, "sd": 8}.get(s, 16), scalar)
        for i, pred in enumerate(("eq", "lt", "le", "unord", "neq", "nlt", "nle", "ord")):
            add(f"cmp{pred}{s} xmm1, xmm2", [("xmm1", lanes), ("xmm2", lanes)], scalar)
            if i % 2 == len(s) % 2 or s[0] == "s":
                mem = MEM[{"ss": 4, "sd": 8}.get(s, 16)]
                add(f"cmp{s} xmm1, {mem}, {i}", [("xmm1", lanes), ("mem", lanes)], scalar)
    for m in ("rcpps", "rsqrtps"):                 # the host's own approximation, bit for bit
        binary(m, "f32", rex=True)
    for m in ("rcpss", "rsqrtss"):
        binary(m, "f32", 4, scalar=True)
    for s in ("ps", "pd", "ss"):                   # immediates above 7: only bits 2:0 count
        lanes = SUFFIX_LANES[s]
        add(f"cmp{s} xmm1, xmm2, 13", [("xmm1", lanes), ("xmm2", lanes)], s[0] == "s")
    for m in ("comiss", "ucomiss", "comisd", "ucomisd"):
        lanes, size = ("f32", 4) if m.endswith("ss") else ("f64", 8)
        add(f"{m} xmm1, xmm2", [("xmm1", lanes), ("xmm2", lanes)], True)
        add(f"{m} xmm1, {MEM[size]}", [("xmm1", lanes), ("mem", lanes)], True)
    for op in ("and", "andn", "or", "xor"):
        binary(op + "ps", "f32")
        binary(op + "pd", "f64")
        binary("p" + op, "i32", rex=True)
    for imm in (0x1B, 0xE4, 0x4E):
        binary("shufps", "f32", imm=f", {imm:#x}")
    for imm in (0, 1, 2, 3):
        add(f"shufpd xmm1, xmm2, {imm}", [("xmm1", "f64"), ("xmm2", "f64")])
    for m in ("unpcklps", "unpckhps", "unpcklpd", "unpckhpd"):
        binary(m, SUFFIX_LANES[m[-2:]])
    # conversions
    for m, lanes in (("cvtsi2ss", "f32"), ("cvtsi2sd", "f64")):
        for size, reg, ilanes in ((4, "eax", "i32"), (8, "rax", "i64")):
            add(f"{m} xmm1, {reg}", [("xmm1", lanes), ("rax", ilanes)], True)
            add(f"{m} xmm1, {MEM[size]}", [("xmm1", lanes), ("mem", ilanes)], True)
    for m, frm, size in (("cvtss2sd", "f32", 4), ("cvtsd2ss", "f64", 8)):
        binary(m, frm, size, scalar=True)
    for m in ("cvtss2si", "cvtsd2si", "cvttss2si", "cvttsd2si"):
        lanes, size = ("f32", 4) if m[-4] == "s" else ("f64", 8)
        for reg in ("eax", "r10"):
            rc = not m.startswith("cvtt")
            add(f"{m} {reg}, xmm2", [("xmm2", lanes)], True, rc)
            add(f"{m} {reg}, {MEM[size]}", [("mem", lanes)], True, rc)
    for m, lanes, size in (("cvtdq2ps", "i32", 16), ("cvtdq2pd", "i32", 8), ("cvtps2dq", "f32", 16),
                           ("cvttps2dq", "f32", 16), ("cvtpd2dq", "f64", 16),
                           ("cvttpd2dq", "f64", 16), ("cvtps2pd", "f32", 8),
                           ("cvtpd2ps", "f64", 16)):
        rc = m in ("cvtps2dq", "cvtpd2dq")
        add(f"{m} xmm1, xmm2", [("xmm1", lanes), ("xmm2", lanes)], rc=rc)
        add(f"{m} xmm1, {MEM[size]}", [("xmm1", lanes), ("mem", lanes)], rc=rc)
    # packed integers
    for s in "bwdq":
        binary("padd" + s, INT_LANES[s], rex=s == "d")
        binary("psub" + s, INT_LANES[s])
    for s in "bw":
        for m in ("padds", "psubs", "paddus", "psubus"):
            binary(m + s, INT_LANES[s])
        for m in ("pcmpeq", "pcmpgt"):
            binary(m + s, INT_LANES[s])
    binary("pcmpeqd", "i32")
    binary("pcmpgtd", "i32")
    for m in ("pmullw", "pmulhw", "pmulhuw", "pmaddwd", "pavgw", "pminsw", "pmaxsw"):
        binary(m, "i16")
    for m in ("pavgb", "pminub", "pmaxub", "psadbw"):
        binary(m, "i8")
    binary("pmuludq", "i64")
    for m in ("psll", "psrl", "psra"):
        for s in ("wdq" if m != "psra" else "wd"):
            lanes, w = INT_LANES[s], WIDTH[INT_LANES[s]]
            for n in (0, 1, w - 1, w, 200):
                add(f"{m}{s} xmm1, {n}", [("xmm1", lanes)])
            add(f"{m}{s} xmm1, xmm2", [("xmm1", lanes), ("xmm2", "cnt")])
            add(f"{m}{s} xmm1, {MEM[16]}", [("xmm1", lanes), ("mem", "cnt")])
    for m in ("pslldq", "psrldq"):
        for n in (0, 1, 7, 15, 16, 255):
            add(f"{m} xmm1, {n}", [("xmm1", "i8")])
    binary("packsswb", "i16")
    binary("packuswb", "i16")
    binary("packssdw", "i32")
    for h in "lh":
        for s, lanes in (("bw", "i8"), ("wd", "i16"), ("dq", "i32"), ("qdq", "i64")):
            binary(f"punpck{h}{s}", lanes)
    for m in ("pshufd", "pshuflw", "pshufhw"):
        lanes = "i32" if m == "pshufd" else "i16"
        for imm in (0x1B, 0xD8):
            add(f"{m} xmm1, xmm2, {imm:#x}", [("xmm1", lanes), ("xmm2", lanes)])
        add(f"{m} xmm9, {MEM[16]}, 0x39", [("xmm9", lanes), ("mem", lanes)])
    for n in (0, 5, 7):
        add(f"pextrw ecx, xmm2, {n}", [("xmm2", "i16")])
        add(f"pinsrw xmm1, edx, {n}", [("xmm1", "i16"), ("rdx", "i16")])
    add("pinsrw xmm1, word ptr [rbx + 16], 2", [("xmm1", "i16"), ("mem", "i16")])
    add("pmovmskb ecx, xmm2", [("xmm2", "i8")])
    add("movmskps ecx, xmm2", [("xmm2", "f32")])
    add("movmskpd r11d, xmm2", [("xmm2", "f64")])
    # moves
    for m in ("movaps", "movups", "movapd", "movupd", "movdqa", "movdqu"):
        add(f"{m} xmm1, xmm2", [("xmm1", "i32"), ("xmm2", "i32")])
        add(f"{m} xmm13, {MEM[16]}", [("xmm13", "i32"), ("mem", "i32")])
        add(f"{m} {MEM[16]}, xmm2", [("mem", "i32"), ("xmm2", "i32")])
    add("movups xmm1, xmmword ptr [rbx + 8]", [("xmm1", "i32"), ("mem", "i32")])
    add("movdqu xmmword ptr [rbx + 3], xmm2", [("mem", "i32"), ("xmm2", "i32")])
    add("lddqu xmm1, xmmword ptr [rbx + 5]", [("xmm1", "i32"), ("mem", "i32")])
    for m, size in (("movss", 4), ("movsd", 8)):
        add(f"{m} xmm1, xmm2", [("xmm1", "i32"), ("xmm2", "i32")])
        add(f"{m} xmm1, {MEM[size]}", [("xmm1", "i32"), ("mem", "i32")])
        add(f"{m} {MEM[size]}, xmm2", [("mem", "i32"), ("xmm2", "i32")])
    add("movd xmm1, eax", [("xmm1", "i32"), ("rax", "i32")])
    add("movd xmm1, dword ptr [rbx + 16]", [("xmm1", "i32"), ("mem", "i32")])
    add("movd ecx, xmm2", [("xmm2", "i32")])
    add("movd dword ptr [rbx + 16], xmm2", [("mem", "i32"), ("xmm2", "i32")])
    add("movq xmm1, rax", [("xmm1", "i64"), ("rax", "i64")])
    add("movq xmm1, qword ptr [rbx + 16]", [("xmm1", "i64"), ("mem", "i64")])
    add("movq r12, xmm9", [("xmm9", "i64")])
    add("movq qword ptr [rbx + 16], xmm2", [("mem", "i64"), ("xmm2", "i64")])
    add("movq xmm1, xmm2", [("xmm1", "i64"), ("xmm2", "i64")])
    for m in ("movhps", "movlps", "movhpd", "movlpd"):
        add(f"{m} xmm1, {MEM[8]}", [("xmm1", "i64"), ("mem", "i64")])
        add(f"{m} {MEM[8]}, xmm2", [("mem", "i64"), ("xmm2", "i64")])
    add("movhlps xmm1, xmm2", [("xmm1", "i64"), ("xmm2", "i64")])
    add("movlhps xmm1, xmm2", [("xmm1", "i64"), ("xmm2", "i64")])
    for m in ("movntdq", "movntps", "movntpd"):
        add(f"{m} {MEM[16]}, xmm2", [("mem", "i32"), ("xmm2", "i32")])
    add("movnti dword ptr [rbx + 16], ecx", [("mem", "i32"), ("rcx", "i32")])
    add("movnti qword ptr [rbx + 16], r9", [("mem", "i64"), ("r9", "i64")])
    add("stmxcsr dword ptr [rbx + 16]", [], rc=True)
    add("ldmxcsr dword ptr [rbx + 16]", [("mxcsr", "i32")])
    return out


def _lanes(value: int, width: int, lanes: dict[int, int]) -> int:
    """`value` with lane k (of `width` bits) replaced by lanes[k]."""
    mask = (1 << width) - 1
    for k, v in lanes.items():
        value = value & ~(mask << (k * width)) | (v & mask) << (k * width)
    return value


def vectors(form: SSEForm, seed: int, modes: bool = False):
    """(regs, rflags, mem, xmm, mxcsr) tuples: edge pairs spread over the lanes, then random.
    `modes`: a floating-point form's vectors run once more under a non-default MXCSR each."""
    rng = random.Random(seed)
    slots = form.slots
    kinds = [k for _, k in slots]
    width = min((WIDTH[k] for k in kinds), default=64)
    nlanes = 1 if form.scalar or not slots else 128 // width
    if "cnt" in kinds or any(w[:3] not in ("xmm", "mem") for w, _ in slots):
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
    modes = modes and FLOATING.match(form.mnemonic) is not None
    for k, group in enumerate(groups):
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
        regs["rbx"] = 0                      # the memory operand is [rbx + offset]
        xmm = {i: rng.getrandbits(128) for i in range(16)}
        mem = bytearray(rng.getrandbits(8) for _ in range(64))
        mxcsr = MXCSR_DEFAULT | rng.getrandbits(6)
        for s, (where, kind) in enumerate(slots):
            w = WIDTH[kind]
            values = {k: combo[s] for k, combo in enumerate(group)}
            if where.startswith("xmm"):
                n = int(where[3:])
                xmm[n] = _lanes(xmm[n], w, values)
            elif where == "mem":
                o = form.offset
                old = int.from_bytes(mem[o:o + 16], "little")
                mem[o:o + 16] = _lanes(old, w, values).to_bytes(16, "little")
            elif where == "mxcsr":               # ldmxcsr's operand: a valid MXCSR value
                o = form.offset
                v = MXCSR_DEFAULT | (values[0] & 0xE07F)
                mem[o:o + 4] = v.to_bytes(4, "little")
            else:
                regs[where] = _lanes(regs[where], w, values)
        for rc in (range(4) if form.rc else (0,)):
            out.append((dict(regs), random_flags(rng), bytes(mem), dict(xmm),
                        mxcsr & ~0x6000 | rc << 13))
        if modes:
            out.append((dict(regs), random_flags(rng), bytes(mem), dict(xmm),
                        mxcsr & 0x1FBF | MODES[k % len(MODES)]))
    return out


ALL_FORMS = forms()


def form_of(case) -> Form:
    return case


def check(host: HostCPU, jit: JitCPU, case) -> Result:
    """Run one form of ALL_FORMS on both CPUs with its vectors (seeded by the form text)."""
    return check_form(host, jit, case, vectors(case, zlib.crc32(case.text.encode()), jit.exact))
