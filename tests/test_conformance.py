"""Every instruction form jitbt implements, run on the host CPU and under jitbt from the same
state: all registers, defined flags, memory and the next rip must match (remill-style tables of
inputs, with the flags the manual leaves undefined compared separately).

The forms and their input vectors are in translator/conformance/forms_int.py (mnemonic x operand
kind x width; edge values crossed with each other plus seeded random values); ``jitbt
conformance`` runs the same table outside pytest.
"""
from __future__ import annotations

import dataclasses
import random
import zlib

import pytest

from runtime import cpu
from translator.conformance import (FLAGS, Form, assert_matches_host, check_form, random_flags,
                                    require)
from translator.conformance.forms_int import ALL_FORMS, MEM, PAIRS, PTR, check, vectors
from translator.conformance.hostcpu import GPR_NAMES
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
                        dataclasses.replace(sem, undefined=frozenset(undefined.split())))
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
