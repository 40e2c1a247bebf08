"""Random straight-line sequences of instructions, run as one block on the host CPU and under
jitbt: the final state must match. This is what checks flag liveness (flags computed only when a
later instruction or the block end needs them) and the lifter's state handling across
instructions, which single-instruction forms cannot see."""
from __future__ import annotations

import random

import pytest

from runtime import cpu
from translator.conformance import CODE, FLAGS, GPR_NAMES, assemble, flag_dict, random_flags
from translator.semantics import SEMANTICS
from translator.state import Exit

REGS = ["rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10"]
R32 = {"rax": "eax", "rcx": "ecx", "rdx": "edx", "rsi": "esi", "rdi": "edi", "r8": "r8d",
       "r9": "r9d", "r10": "r10d"}
CCS = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g")


def random_insn(rng):
    a, b = rng.sample(REGS, 2)
    kind = rng.randrange(15)
    if kind == 12:
        m = rng.choice(["shld", "shrd"])
        if rng.random() < 0.3:
            return f"{m} {R32[a]}, {R32[b]}, {rng.choice([1, 5, 31, 'cl'])}"
        return f"{m} {a}, {b}, {rng.choice([1, 1, 7, 63, 'cl'])}"
    if kind == 13:
        return f"{rng.choice(['rcl', 'rcr'])} {a}, {rng.choice([1, 1, 3, 33, 'cl'])}"
    if kind == 14:
        # tzcnt/lzcnt run as the model says (runtime/cpu.py), the host as it is: only the claimed
        # ones can be compared here (test_conformance.py checks the others against bsf/bsr)
        m = rng.choice(["popcnt", "bsf", "bsr"] + ["tzcnt"] * cpu.BMI1 + ["lzcnt"] * cpu.ABM)
        if rng.random() < 0.3:
            return f"{m} {R32[a]}, {R32[b]}"
        return f"{m} {a}, {b}"

    if kind < 4:
        m = rng.choice(["add", "adc", "sub", "sbb", "cmp", "and", "or", "xor", "test"])
        if rng.random() < 0.3:
            return f"{m} {R32[a]}, {R32[b]}"
        return f"{m} {a}, {rng.choice([b, str(rng.randrange(-128, 128))])}"
    if kind == 4:
        return f"{rng.choice(['inc', 'dec', 'neg', 'not'])} {a}"
    if kind == 5:
        return f"{rng.choice(['shl', 'shr', 'sar', 'rol', 'ror'])} {a}, {rng.choice([1, 1, 3, 17])}"
    if kind == 6:
        return f"set{rng.choice(CCS)} {'cl' if a != 'rcx' else 'dl'}"
    if kind == 7:
        return f"cmov{rng.choice(CCS)} {a}, {b}"
    if kind == 8:
        return rng.choice(["clc", "stc", "cmc"])
    if kind == 9:
        return f"imul {a}, {b}"
    if kind == 10:
        return f"lea {a}, [{b} + {a}*2 + 5]"
    return f"mov {R32[a]}, {R32[b]}"


def undefined_after(insns: list[str]) -> set:
    """Flags whose value at the end is undefined by the manual (last touched by an instruction
    that leaves them undefined); sequences that read such a flag are not generated."""
    undefined = set()
    for text in insns:
        sem = SEMANTICS[text.split()[0]]
        undefined -= sem.writes
        undefined |= sem.undefined
        if text.startswith(("shl", "shr", "sar", "rol", "ror", "rcl", "rcr")) \
                and text.endswith(", 1"):
            undefined.discard("of")
    return undefined


def make_sequence(rng, n):
    out = []
    while len(out) < n:
        text = random_insn(rng)
        sem = SEMANTICS[text.split()[0]]
        if sem.reads & undefined_after(out):
            continue         # would read an undefined flag: hardware and jitbt may differ
        out.append(text)
    return out


@pytest.mark.parametrize("seed", range(90))
def test_random_sequence_matches_host_cpu(cpus, seed):
    host, jit = cpus
    rng = random.Random(seed)
    seq = make_sequence(rng, rng.randrange(2, 12))
    code = assemble("; ".join(seq))
    host.prepare(code)
    jit.prepare_block(code)
    ignore = undefined_after(seq)
    for _ in range(20):
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n not in ("rsp", "rbx")}
        flags = random_flags(rng)
        h_regs, h_flags, _ = host.run(regs, flags)
        code_, j_regs, j_flags, _ = jit.run(regs, flags)
        assert code_ == Exit.CONTINUE and jit.state.rip == CODE + len(code)
        assert {k: hex(v) for k, v in j_regs.items()} == {k: hex(v) for k, v in h_regs.items()}, seq
        hf, jf = flag_dict(h_flags), flag_dict(j_flags)
        for f in FLAGS:
            if f not in ignore:
                assert hf[f] == jf[f], (f, seq)
