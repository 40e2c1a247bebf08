"""Every instruction form jitbt implements, run on the host CPU and under jitbt from the same
state: all registers, defined flags, memory and the next rip must match (remill-style tables of
inputs, with the flags the manual leaves undefined compared separately).

The forms and their input vectors are in translator/conformance/forms_int.py (mnemonic x operand
kind x width; edge values crossed with each other plus seeded random values); ``jitbt
conformance`` runs the same table outside pytest.
"""
from __future__ import annotations

import random
import zlib

import pytest

from runtime import cpu
from translator.conformance import (FLAGS, MXCSR_DEFAULT, Form, assert_matches_host, check_form,
                                    random_flags, require)
from translator.conformance.forms_int import ALL_FORMS, MEM, PAIRS, PTR, check, vectors
from translator.conformance.hostcpu import GPR_NAMES
from translator.plain import replace
from translator.semantics import SEMANTICS


@pytest.mark.parametrize("form,slots", ALL_FORMS, ids=[f.text for f, _ in ALL_FORMS])
def test_form_matches_host_cpu(cpus, form, slots):
    host, jit = cpus
    require(check(host, jit, (form, slots)))


class HostWithoutFeature:
    """The host CPU executing code as a processor without BMI1 (or ABM) does: tzcnt (lzcnt) is
    bsf (bsr) with an F3 prefix it ignores, so the host runs the bytes without it."""

    def __init__(self, host):
        self.host = host

    def prepare(self, code):
        self.host.prepare(code.replace(b"\xf3", b"", 1))

    def __getattr__(self, name):
        return getattr(self.host, name)


COUNT_FORMS = [f"{m} {d}, {s}" for m in ("tzcnt", "lzcnt") for w in (16, 32, 64)
               for d, s in (PAIRS[w][0], (PAIRS[w][1][0], MEM.format(ptr=PTR[w])))]


@pytest.mark.parametrize("claimed", [True, False], ids=["claimed", "not-claimed"])
@pytest.mark.parametrize("text", COUNT_FORMS)
def test_count_zeros_follow_cpu_model(cpus, monkeypatch, text, claimed):
    """tzcnt/lzcnt do what the model says (runtime/cpu.py: BMI1 and ABM), against the host
    running them as they are (claimed) or as the bsf/bsr of an older processor."""
    host, jit = cpus
    m = text.split()[0]
    monkeypatch.setattr(cpu, "BMI1" if m == "tzcnt" else "ABM", claimed)
    sem = SEMANTICS[m]
    undefined = "of sf af pf" if claimed else "cf of sf af pf"
    monkeypatch.setitem(SEMANTICS, m,
                        replace(sem, undefined=frozenset(undefined.split())))
    if not claimed:
        host = HostWithoutFeature(host)
    w = {"cx": 16, "ecx": 32, "rcx": 64, "r9w": 16, "r9d": 32, "r9": 64}[text.split()[1][:-1]]
    d, s = text.split(" ", 1)[1].split(", ")
    slots = [(d, w), ("mem", w) if "[" in s else (s, w)]
    form = Form(text, m, "sparse")
    assert_matches_host(host, jit, form, vectors(form, slots, seed=zlib.crc32(text.encode())))


def test_shift_double_16bit_large_counts(cpus):
    """16-bit shld/shrd with a masked count of 17..31 are undefined; jitbt shifts dst:src:dst as
    Intel processors do. Result and CF/SF/ZF/PF are compared on an Intel host only."""
    host, jit = cpus
    intel = "GenuineIntel" in open("/proc/cpuinfo").read()
    rng = random.Random(16)
    for text in ("shld dx, r14w, cl", "shrd dx, r14w, cl", "shld word ptr [rbx + 8], r14w, cl",
                 "shrd word ptr [rbx + 8], r14w, cl", "shld dx, r14w, 23", "shrd dx, r14w, 31"):
        vecs = []
        for _ in range(64):
            regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
            regs["rbx"] = 0
            regs["rcx"] = (regs["rcx"] & ~0xFF) | (rng.randrange(17, 32) + 32 * rng.randrange(8))
            vecs.append((regs, random_flags(rng), bytes(rng.getrandbits(8) for _ in range(64))))
        result = check_form(host, jit, Form(text, text[:4]), vecs)
        assert result.vectors == 64
        if intel:
            assert not result.mismatches, (text, result.mismatches[0])


def test_form_count():
    """The issue's bar for the foundation is every instruction gcc emits for simple C; the table
    covers each of them at every width and operand kind they have."""
    assert len(ALL_FORMS) >= 400
    assert len(FLAGS) == 7


# A cmp or sub and the conditions read after it in the same block: the lifter compares the
# operands directly (icmp slt for jl/setl...) while no flag has been written since, and falls
# back to the flags once one has (inc keeps CF but changes SF/OF/ZF; sahf writes five).
COMPARE_SEQUENCES = [
    "cmp rax, rcx; setl dl; setg sil; setb dil; seta r8b; sete r9b; setle r10b; setge r11b; "
    "setbe r12b; setae r13b; setne r14b",
    "cmp eax, ecx; inc eax; setl dl; setb sil; setbe dil; setg r8b",
    "sub cx, ax; cmovl rdx, rsi; cmovae rdi, r8; cmovg r9, r10; setbe r11b",
    "cmp al, cl; mov edx, 5; lea rsi, [rdx + 3]; setle dl; seta sil",
    "cmp qword ptr [rbx + 8], rax; setg dl; setb sil; sete dil",
    "sub rax, rcx; adc rdx, 0; setl sil; setb dil",
    "cmp r8d, r9d; sahf; setl dl; setae sil; setg dil",
    "cmp rax, 7; sbb rdx, rdx; cmp esi, edi; setge cl; setle r10b",
]


@pytest.mark.parametrize("text", COMPARE_SEQUENCES, ids=range(len(COMPARE_SEQUENCES)))
def test_conditions_after_a_compare_match_host_cpu(cpus, text):
    from translator.conformance.harness import WholeBlock
    host, jit = cpus
    rng = random.Random(zlib.crc32(text.encode()))
    edges = [0, 1, 7, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
             (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
    vecs = []
    for i in range(160):
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
        a = rng.choice(edges) if i % 2 else rng.getrandbits(64)
        regs["rax"], regs["r8"] = a, a
        regs["rcx"] = regs["r9"] = a if i % 5 == 0 else rng.choice(edges + [rng.getrandbits(64)])
        regs["rsi"], regs["rdi"] = (a, a) if i % 7 == 0 else (regs["rsi"], regs["rdi"])
        regs["rbx"] = 0
        mem = bytes(rng.getrandbits(8) for _ in range(64))
        if i % 3 == 0:
            mem = mem[:8] + a.to_bytes(8, "little") + mem[16:]
        vecs.append((regs, random_flags(rng), mem))
    result = check_form(host, WholeBlock(jit), Form(text, text.split()[0]), vecs)
    assert result.vectors == len(vecs)
    assert not result.mismatches, result.mismatches[0]


# Indexed memory operands and immediates the interpreter reads from the record: the prepared
# handler library holds these shapes in every addressing form (translator/handlers.py,
# address_variants), though its programs and the forms above may have used others; each runs
# against the host CPU, by every tier. rcx is a small odd index, so the operand stays in the
# buffer and pshufd's is 16-byte aligned.
INDEXED = [("add rax, qword ptr [rbx + rcx*4 + 8]", "add", "add r8 m8bi"),
           ("sub qword ptr [rbx + rcx*8 + 8], 1", "sub", "sub m8bi i8"),
           ("shr dword ptr [rbx + rcx*2 + 8], 3", "shr", "shr m4bi i1"),
           ("ror eax, 13", "ror", "ror r4 i1"),
           ("movupd xmm0, xmmword ptr [rbx + rcx*1 + 8]", "movupd", "movupd xmm m16bi"),
           ("pshufd xmm1, xmmword ptr [rbx + rcx*8 + 8], 0x1b", "pshufd", "pshufd xmm m16bi i1"),
           ("psrld xmm2, 9", "psrld", "psrld xmm i1"),
           ("shufps xmm3, xmm4, 0x88", "shufps", "shufps xmm xmm i1")]


@pytest.mark.parametrize("text,mnemonic,shape", INDEXED, ids=[t for t, _, _ in INDEXED])
def test_indexed_forms_and_immediates_match_host_cpu(cpus, text, mnemonic, shape):
    host, jit = cpus
    if jit.tier == "interp":
        from translator.handlers import HandlerLibrary
        lib = HandlerLibrary(jit.translator.codegen, jit.translator.knobs)
        lib.load()
        assert shape in lib.addr, f"{shape} missing from the prepared library"
    rng = random.Random(zlib.crc32(text.encode()))
    vectors = []
    for index in (1, 3, 5, 7):
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
        regs["rbx"], regs["rcx"] = 0, index
        xmm = {i: rng.getrandbits(128) for i in range(16)}
        mem = bytearray(rng.getrandbits(8) for _ in range(128))
        vectors.append((regs, random_flags(rng), mem, xmm, MXCSR_DEFAULT))
    require(check_form(host, jit, Form(text, mnemonic, pointers=("rbx",)), vectors), 4)
