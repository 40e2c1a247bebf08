"""The x87 instruction forms, with their input vectors: general registers, flags, memory,
xmm/MXCSR and the x87 state (control word, status word with TOP and C0-C3, tag, ST(0)..ST(7)) must
match the host CPU; the status word's exception flags (bits 0-5) are counted apart.

Forms come from a table (mnemonic x operand kind: m32/m64/m80 reals, m16/m32/m64 integers, st(i)
in both directions, popping forms). Each vector starts with seven valid registers (ST(7) empty, so
a push never overflows) at a random TOP: ST(0) and the source operand (a register or memory) are
edge values crossed pairwise (zeros, ones, halves that round differently, the largest and smallest
normals of each format, denormals, infinities, quiet and signalling NaNs with payloads, the
indefinite, values at the integer conversion limits), plus seeded random values (zlib.crc32 of the
form text). Forms that round by CW.RC (fist, frndint, the constants) run under all four modes::

    host, jit = HostCPU(), JitCPU()
    result = check(host, jit, ALL_FORMS[0])     # fld dword ptr [rbx + 16]: a harness.Result
"""
from __future__ import annotations

import random
import struct
import zlib

from .harness import Form, HostCPU, JitCPU, Result, check_form, fxsave_image, random_flags
from .hostcpu import GPR_NAMES

FAMILY = "x87"
MIN_VECTORS = 24

CW = 0x037F
OFF = 16                                     # memory operands are [rbx + 16]


def _host_misaligned_sse() -> bool:
    """Does the host have AMD's misaligned SSE mode (cpuinfo flag misalignsse)? Its MXCSR bit
    17 (MM) is then writable, and the MXCSR_MASK fxsave stores has it set (0x2FFFF against an
    Intel core's 0xFFFF). jitbt's CPU model does not claim the mode (runtime/cpu.py), so its
    fxsave stores 0xFFFF: on such a host, that byte of the image is the host's own feature, not
    a difference in the instruction."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and "misalignsse" in line.split() for line in f)
    except OSError:
        return False


# fxsave's image bytes that are not compared: the last instruction's opcode and pointers (6-23:
# the host's are its harness's), and on a host with misaligned SSE mode, MXCSR_MASK's bits 16-23.
FXSAVE_IGNORE = [(6, 24)] + ([(30, 31)] if _host_misaligned_sse() else [])


def f80(x: float) -> int:
    """The 80-bit real of a double (exact)."""
    b = struct.unpack("<Q", struct.pack("<d", x))[0]
    sign, exp, frac = b >> 63, (b >> 52) & 0x7FF, b & ((1 << 52) - 1)
    if exp == 0x7FF:
        return sign << 79 | 0x7FFF << 64 | 1 << 63 | frac << 11
    if exp == 0:
        if frac == 0:
            return sign << 79
        e = frac.bit_length() - 1            # a double denormal is an 80-bit normal
        return sign << 79 | (e - 1074 + 16383) << 64 | frac << (63 - e)
    return sign << 79 | (exp - 1023 + 16383) << 64 | (1 << 63 | frac << 11)


def f32(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


_LIMITS = [32767.5, -32768.5, 32768.0, -32769.0, 2.0 ** 31 - 0.5, -(2.0 ** 31) - 0.5, 2.0 ** 31,
           -(2.0 ** 31), 2.0 ** 63, -(2.0 ** 63), 2.0 ** 63 - 1024, 0.49999999999999994]
EDGES = {
    "f80": [0, 1 << 79, f80(1), f80(-1), f80(0.5), f80(1.5), f80(2.5), f80(-2.5), f80(3.5),
            f80(-0.5), f80(3.141592653589793), f80(1e10), f80(-7.25), f80(1e-300), f80(1e300),
            0x7FFEFFFFFFFFFFFFFFFF, 0xFFFEFFFFFFFFFFFFFFFF, 0x00018000000000000000,
            0x00000000000000000001, 0x80007FFFFFFFFFFFFFFF, 0x7FFF8000000000000000,
            0xFFFF8000000000000000, 0x7FFFC000000000000000, 0xFFFFC000000012345678,
            0x7FFF8000000000000001, 0xFFFFC000000000000000, 0x3FFF8000000000000401,
            0x3FFF8000008000000000, 0x3FFF8000000000000C00, 0x403E7FFFFFFFFFFFFFFF]
    + [f80(x) for x in _LIMITS],
    "f32": [0, 0x80000000, f32(1), f32(-1), f32(0.5), f32(2.5), f32(-7.25), 0x7F7FFFFF,
            0x00800000, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC12345,
            0x7F800001, f32(1e10), f32(3.0)],
    "f64": [0, 1 << 63, f64(1), f64(-1), f64(0.5), f64(2.5), f64(-7.25), 0x7FEFFFFFFFFFFFFF,
            0x0010000000000000, 1, 0x800FFFFFFFFFFFFF, 0x7FF0000000000000, 0xFFF0000000000000,
            0x7FF8000000000000, 0xFFF8000012345678, 0x7FF0000000000001, f64(1e300), f64(3.0)],
    "i16": [0, 1, 0xFFFF, 0x8000, 0x7FFF, 3, 0xFFFD, 1000],
    "i32": [0, 1, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 3, 0xFFFFFFFD, 16777217],
    "i64": [0, 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1, 3, (1 << 53) + 1, (1 << 64) - 3],
}
WIDTH = {"f80": 80, "f32": 32, "f64": 64, "i16": 16, "i32": 32, "i64": 64}
MEMS = {"f32": "dword", "f64": "qword", "f80": "tbyte", "i16": "word", "i32": "dword",
        "i64": "qword"}


class X87Form(Form):
    """A form with the kind of its source operand: "stN", a memory type (f32 f64 f80 i16 i32 i64)
    or None; `image` names a memory image (cw, env, save, fxsave) the instruction loads."""

    def __init__(self, text, src=None, rc=False, image=None, mem_ignore=()):
        super().__init__(text, text.split()[0], "x87")
        self.src, self.rc, self.image = src, rc, image
        self.mem_ignore = tuple((OFF + a, OFF + b) for a, b in mem_ignore)


def mem(kind):
    return f"{MEMS[kind]} ptr [rbx + {OFF}]"


def forms() -> list[X87Form]:
    out = []

    def add(text, src=None, **kw):
        out.append(X87Form(text, src, **kw))

    for k in ("f32", "f64", "f80"):
        add(f"fld {mem(k)}", k)
    for i in (0, 1, 5):
        add(f"fld st({i})", f"st{i}")
    for k in ("i16", "i32", "i64"):
        add(f"fild {mem(k)}", k)
    for m in ("fldz", "fld1", "fldpi", "fldl2e", "fldl2t", "fldlg2", "fldln2"):
        add(m, rc=True)
    for k in ("f32", "f64"):
        add(f"fst {mem(k)}")
        add(f"fstp {mem(k)}")
    add(f"fstp {mem('f80')}")
    for i in (0, 1, 3, 6):
        add(f"fst st({i})", f"st{i}")
        add(f"fstp st({i})", f"st{i}")
    for k in ("i16", "i32"):
        add(f"fist {mem(k)}", rc=True)
    for k in ("i16", "i32", "i64"):
        add(f"fistp {mem(k)}", rc=True)
        add(f"fisttp {mem(k)}")
    for i in (1, 4, 6):
        add(f"fxch st({i})", f"st{i}")
    for cc in ("b", "e", "be", "u", "nb", "ne", "nbe", "nu"):
        add(f"fcmov{cc} st(0), st(2)", "st2")
    for op in ("add", "sub", "subr", "mul", "div", "divr"):
        add(f"f{op} {mem('f32')}", "f32")
        add(f"f{op} {mem('f64')}", "f64")
        add(f"f{op} st(0), st(3)", "st3")
        add(f"f{op} st(3), st(0)", "st3")
        add(f"f{op}p st(1), st(0)", "st1")
        add(f"f{op}p st(5), st(0)", "st5")
        add(f"fi{op} {mem('i16')}", "i16")
        add(f"fi{op} {mem('i32')}", "i32")
    for m in ("fchs", "fabs", "fsqrt", "f2xm1", "fsin", "fcos", "fptan", "fsincos", "fxtract"):
        add(m)
    add("frndint", rc=True)
    for m in ("fscale", "fprem", "fprem1", "fyl2x", "fyl2xp1", "fpatan"):
        add(m, "st1")
    for m in ("fcom", "fcomp"):
        add(f"{m} {mem('f32')}", "f32")
        add(f"{m} {mem('f64')}", "f64")
        add(f"{m} st(2)", "st2")
    for m in ("ficom", "ficomp"):
        add(f"{m} {mem('i16')}", "i16")
        add(f"{m} {mem('i32')}", "i32")
    add("fucom st(2)", "st2")
    add("fucomp st(4)", "st4")
    add("fcompp", "st1")
    add("fucompp", "st1")
    add("ftst")
    add("fxam")
    for m in ("fcomi", "fucomi", "fcomip", "fucomip"):
        add(f"{m} st(0), st(1)", "st1")
        add(f"{m} st(0), st(3)", "st3")
    # control
    add(f"fnstcw {mem('i16')}", rc=True)
    add(f"fldcw {mem('i16')}", image="cw")
    add("fnstsw ax")
    add(f"fnstsw {mem('i16')}")
    for m in ("fninit", "fnclex", "fincstp", "fdecstp", "fnop", "fwait"):
        add(m)
    add("ffree st(2)")
    add("ffree st(0)")
    add(f"fnstenv [rbx + {OFF}]", mem_ignore=[(12, 28)])
    add(f"fldenv [rbx + {OFF}]", image="env")
    add(f"fnsave [rbx + {OFF}]", mem_ignore=[(12, 28)])
    add(f"frstor [rbx + {OFF}]", image="save")
    add(f"fxsave [rbx + {OFF}]", mem_ignore=FXSAVE_IGNORE)
    add(f"fxsave64 [rbx + {OFF}]", mem_ignore=FXSAVE_IGNORE)
    add(f"fxrstor [rbx + {OFF}]", image="fxsave")
    add(f"fxrstor64 [rbx + {OFF}]", image="fxsave")
    return out


def random80(rng: random.Random) -> int:
    """A random 80-bit real: mostly normals near 1, some of any exponent or any bits."""
    r = rng.random()
    sign = rng.getrandbits(1) << 79
    if r < 0.6:
        return sign | (16383 + rng.randint(-70, 70)) << 64 | 1 << 63 | rng.getrandbits(63)
    if r < 0.9:
        return sign | rng.randint(1, 0x7FFE) << 64 | 1 << 63 | rng.getrandbits(63)
    return rng.getrandbits(80) | 1 << 63


def random_value(rng, kind):
    return random80(rng) if kind == "f80" else rng.getrandbits(WIDTH[kind])


def _image(form, rng, stack, top, tag):
    """The memory image an fldcw/fldenv/frstor/fxrstor form loads: a valid random x87 state."""
    cw = 0x7F | rng.getrandbits(4) << 8
    if form.image == "cw":
        return cw.to_bytes(2, "little")
    sw = rng.getrandbits(16) & 0x4700 | rng.getrandbits(3) << 11
    tw = 0
    for p in range(8):
        tw |= (3 if rng.random() < 0.3 else rng.getrandbits(2)) << 2 * p
    if form.image in ("env", "save"):
        env = b"".join((v | 0xFFFF0000).to_bytes(4, "little") for v in (cw, sw, tw)) + bytes(16)
        regs = b"".join(v.to_bytes(10, "little") for v in stack)
        return env + (regs if form.image == "save" else b"")
    abridged = sum(1 << p for p in range(8) if (tw >> 2 * p) & 3 != 3)
    fx = bytearray(fxsave_image(cw, sw, abridged, stack))
    fx[24:28] = (0x1F80 | rng.getrandbits(6)).to_bytes(4, "little")
    fx[28:32] = (0xFFFF).to_bytes(4, "little")
    for i in range(16):
        fx[160 + 16 * i:176 + 16 * i] = rng.getrandbits(128).to_bytes(16, "little")
    return bytes(fx)


def vectors(form: X87Form, seed: int):
    rng = random.Random(seed)
    st0 = EDGES["f80"]
    src = form.src
    kind = "f80" if src is None or src.startswith("st") else src
    if src is None:
        pairs = [(a, None) for a in st0]
    else:
        pairs = [(a, c) for a in st0 for c in EDGES[kind]]
    pairs += [(random80(rng), random_value(rng, kind)) for _ in range(24)]
    out = []
    for a, c in pairs:
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
        regs["rbx"] = 0
        stack = [a] + [random80(rng) for _ in range(6)] + [0]
        memory = bytearray(rng.getrandbits(8) for _ in range(OFF + 512 + 16))
        if src is not None and src.startswith("st"):
            i = int(src[2:])
            stack[i] = c if i else a
        elif src is not None:
            memory[OFF:OFF + WIDTH[kind] // 8] = c.to_bytes(WIDTH[kind] // 8, "little")
        top = rng.getrandbits(3)
        tag = 0xFF & ~(1 << ((top + 7) & 7))
        if form.image:
            image = _image(form, rng, [random80(rng) for _ in range(8)], top, tag)
            memory[OFF:OFF + len(image)] = image
        sw = rng.getrandbits(16) & 0x4700 | top << 11
        for rc in (range(4) if form.rc else (0,)):
            fpu = fxsave_image(CW | rc << 10, sw, tag, stack)
            xmm = {i: rng.getrandbits(128) for i in range(16)}
            out.append((dict(regs), random_flags(rng), bytes(memory), xmm, 0x1F80, fpu))
    return out


ALL_FORMS = forms()


def form_of(case) -> Form:
    return case


def check(host: HostCPU, jit: JitCPU, case) -> Result:
    """Run one form of ALL_FORMS on both CPUs with its vectors (seeded by the form text)."""
    return check_form(host, jit, case, vectors(case, zlib.crc32(case.text.encode())))
