"""x87 precision control (CW bits 8-9) and rounding control (CW bits 10-11): representative
arithmetic (fadd fsub fmul fdiv and their reversed, popping, m32/m64 and integer-operand forms,
fsqrt), the rounding stores fst/fstp m32/m64 and fild followed by arithmetic, each run natively
and under jitbt from the same state under every precision (single 0, double 2, extended 3) and
rounding mode (nearest 0, down 1, up 2, toward zero 3). The whole x87 state and the memory must
match bit for bit (the status word's exception flags are counted apart by the harness).

Operands are chosen to round: random 64-bit significands, exact ties and near-ties at the 24-
and 53-bit positions, values at the single and double overflow and underflow thresholds, so that
each mode gives a different result somewhere.
"""
from __future__ import annotations

import random
import zlib

import pytest

from translator.conformance.harness import (Form, HostCPU, JitCPU, WholeBlock,
                                            assert_matches_host, fxsave_image, random_flags)

OFF = 16                                # memory operands are [rbx + 16]
PRECISIONS = {"single": 0, "double": 2, "extended": 3}
ROUNDINGS = {"nearest": 0, "down": 1, "up": 2, "zero": 3}
BIAS = 16383
J = 1 << 63                             # the explicit integer bit of an 80-bit significand

M = f"[rbx + {OFF}]"
FORMS = [
    # (text, memory operand kind or None)
    ("fadd st(0), st(1)", None), ("fsub st(0), st(1)", None), ("fmul st(0), st(1)", None),
    ("fdiv st(0), st(1)", None), ("fsubr st(0), st(1)", None), ("fdivr st(0), st(1)", None),
    ("fadd st(1), st(0)", None), ("fmulp st(1), st(0)", None), ("fdivp st(1), st(0)", None),
    (f"fadd dword ptr {M}", "f32"), (f"fmul qword ptr {M}", "f64"),
    (f"fdiv qword ptr {M}", "f64"), (f"fsub dword ptr {M}", "f32"),
    (f"fiadd dword ptr {M}", "i32"), (f"fimul word ptr {M}", "i16"),
    (f"fidivr dword ptr {M}", "i32"),
    ("fsqrt", None),
    (f"fst dword ptr {M}", None), (f"fst qword ptr {M}", None),
    (f"fstp dword ptr {M}", None), (f"fstp qword ptr {M}", None),
    (f"fild qword ptr {M}", "i64"),
    (f"fild qword ptr {M}; faddp st(1), st(0)", "i64"),
    (f"fild dword ptr {M}; fdivp st(1), st(0)", "i32"),
    (f"fild qword ptr {M}; fmul st(0), st(0); fstp qword ptr {M}", "i64"),
]
WIDTH = {"f32": 32, "f64": 64, "i16": 16, "i32": 32, "i64": 64}


def real80(sign: int, exp: int, mant: int) -> int:
    return sign << 79 | exp << 64 | mant


def operands(rng: random.Random) -> list[int]:
    """80-bit values that round differently in each mode and precision."""
    out = [real80(0, BIAS, J), real80(1, BIAS + 1, J | 1 << 62),
           real80(0, BIAS - 2, J | 0x5555 << 40)]
    for keep in (24, 53):                   # ties, just under and just over, at 24 and 53 bits
        half = 1 << (63 - keep)
        for odd in (0, 1):
            base = J | odd << (64 - keep) | rng.getrandbits(keep - 2) << (65 - keep)
            for delta in (0, -1, 1):
                out.append(real80(rng.getrandbits(1), BIAS + rng.randint(-3, 3),
                                  base | (half + delta) & (half * 2 - 1)))
    for exp in (BIAS + 127, BIAS + 128, BIAS - 126, BIAS - 149, BIAS + 1023, BIAS + 1024,
                BIAS - 1022, BIAS - 1074, BIAS - 16000, BIAS + 16000):
        out.append(real80(rng.getrandbits(1), exp, J | rng.getrandbits(63)))
    out += [real80(rng.getrandbits(1), BIAS + rng.randint(-40, 40), J | rng.getrandbits(63))
            for _ in range(24)]
    return out


def memory_value(rng: random.Random, kind: str) -> int:
    if kind.startswith("i"):
        n = WIDTH[kind]
        return rng.getrandbits(n) if rng.random() < 0.5 else rng.getrandbits(rng.randint(1, n))
    if kind == "f32":                       # sign, exponent near 1, random significand
        return rng.getrandbits(1) << 31 | (127 + rng.randint(-20, 20)) << 23 | rng.getrandbits(23)
    return rng.getrandbits(1) << 63 | (1023 + rng.randint(-20, 20)) << 52 | rng.getrandbits(52)


def vectors(text: str, kind: str | None, cw: int) -> list[tuple]:
    """Six-item harness vectors: ST(0) from operands(), ST(1) random, ST(7) empty, a random TOP;
    the memory operand (if any) random of its kind; the x87 control word `cw`."""
    rng = random.Random(zlib.crc32(f"{text} {cw}".encode()))
    out = []
    pool = operands(rng)
    for a in pool:
        stack = [a] + [rng.choice(pool) for _ in range(6)] + [0]
        memory = bytearray(rng.getrandbits(8) for _ in range(64))
        if kind is not None:
            memory[OFF:OFF + WIDTH[kind] // 8] = memory_value(rng, kind).to_bytes(WIDTH[kind] // 8,
                                                                                 "little")
        top = rng.getrandbits(3)
        tag = 0xFF & ~(1 << ((top + 7) & 7))
        fpu = fxsave_image(cw, top << 11, tag, stack)
        out.append(({"rbx": 0}, random_flags(rng), bytes(memory), {}, 0x1F80, fpu))
    return out


@pytest.fixture(scope="module")
def host_and_jit():
    return HostCPU(), JitCPU()


@pytest.mark.parametrize("rc", ROUNDINGS.values(), ids=ROUNDINGS.keys())
@pytest.mark.parametrize("pc", PRECISIONS.values(), ids=PRECISIONS.keys())
@pytest.mark.parametrize("text,kind", FORMS, ids=[t for t, _ in FORMS])
def test_x87_under_control_word_matches_host(host_and_jit, text, kind, pc, rc):
    host, jit = host_and_jit
    if "; " in text:
        jit = WholeBlock(jit)
    cw = 0x7F | pc << 8 | rc << 10                  # every exception masked
    assert_matches_host(host, jit, Form(text, text.split()[0]), vectors(text, kind, cw))


def test_modes_change_results(host_and_jit):
    """The vectors do tell the modes apart: 1/3 differs across every precision and rounding."""
    jit = host_and_jit[1]
    jit.prepare(bytes.fromhex("d8f1"))                # fdiv st(0), st(1)
    seen = set()
    for pc in PRECISIONS.values():
        for rc in ROUNDINGS.values():
            fpu = fxsave_image(0x7F | pc << 8 | rc << 10, 0, 0xFF,
                               [real80(0, BIAS, J), real80(0, BIAS + 1, J | J >> 1)] + [0] * 6)
            image = jit.run_x87({}, 0, None, None, 0x1F80, fpu)[-1]
            seen.add(image[32:42])
    assert len(seen) == 6          # down and zero agree on 1/3, and nearest with one of them
