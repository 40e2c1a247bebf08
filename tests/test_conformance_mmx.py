"""MMX forms (the mm-register forms of MMX, SSE and SSE2, and maskmovdqu) run on the host CPU and
under jitbt from the same state: general registers, flags, memory, xmm/MXCSR and the x87 state
the mm registers alias (TOP, tag, R0-R7) must match.

The forms and their input vectors (lane-typed edge values crossed pairwise, plus seeded random
values, each from a random x87 state) are in translator/conformance/forms_mmx.py; ``jitbt
conformance`` runs the same table outside pytest. The tests below the table check what the host
cannot be asked (faults) and MMX code mixed with x87 code in one block.
"""
from __future__ import annotations

import random

import pytest

from runtime import cpu
from translator.conformance import assemble, check_form, require
from translator.conformance.harness import WholeBlock
from translator.conformance.forms_mmx import (ALL_FORMS, MIN_VECTORS, MMXForm, check, vectors,
                                              x87_state)
from translator.state import SIGSEGV, Exit


@pytest.mark.parametrize("form", ALL_FORMS, ids=[f.text for f in ALL_FORMS])
def test_mmx_form_matches_host_cpu(cpus, form):
    host, jit = cpus
    require(check(host, jit, form), MIN_VECTORS)


def test_form_count():
    assert len(ALL_FORMS) >= 190


def test_cpu_model_claims_mmx():
    assert cpu.cpuid(1)[3] & 1 << 23
    assert b"without MMX" not in cpu.BRAND


@pytest.mark.parametrize("text", ["paddb mm1, qword ptr [rbx]",
                                  "movq qword ptr [rbx], mm1",
                                  "cvtps2pi mm1, qword ptr [rbx]"])
def test_faulting_form_leaves_x87_state(cpus, text):
    """An MMX form whose memory operand faults changes nothing: TOP, the tag and the registers
    stay as they were (rbx = 0 is never mapped)."""
    _, jit = cpus
    jit.prepare(assemble(text))
    fpu = x87_state(random.Random(1), {1: 0x1122334455667788})
    code, *_, fx = jit.run_x87({"rbx": 0}, 0, None, None, 0x1F80, fpu)
    assert code == Exit.FAULT and jit.state.fault_signal == SIGSEGV
    assert fx[:5] == fpu[:5] and fx[32:160] == fpu[32:160]


def test_cvtpd2pi_misaligned_memory_faults(cpus):
    _, jit = cpus
    jit.prepare(assemble("cvtpd2pi mm1, xmmword ptr [rbx + 8]"))
    code, *_ = jit.run_x87({"rbx": jit.mem_address}, 0, bytes(64))
    assert code == Exit.FAULT and jit.state.fault_signal == SIGSEGV


SEQUENCES = [
    # MMX arithmetic in one block, through memory and general registers
    ("movq mm0, rax; movd mm1, ecx; paddw mm0, mm1; pmullw mm1, mm0; psrlq mm0, 3; "
     "movq qword ptr [rbx + 16], mm0; pshufw mm2, mm1, 0x1b; pmovmskb edx, mm2; movq rsi, mm1"),
    # x87 (from an empty stack) then MMX, emms and x87 again: the mode changes within the block
    ("emms; fld qword ptr [rbx + 24]; fld st(0); faddp st(1), st(0); "
     "movq mm3, qword ptr [rbx + 16]; paddd mm3, mm3; emms; fld qword ptr [rbx + 24]; "
     "fstp qword ptr [rbx + 32]"),
    # mm and xmm together
    ("movq2dq xmm1, mm2; cvtpi2ps xmm3, mm2; cvtps2pi mm4, xmm3; movdq2q mm5, xmm1; "
     "psubq mm5, mm4; pextrw eax, mm5, 1"),
]


@pytest.mark.parametrize("text", SEQUENCES, ids=range(len(SEQUENCES)))
def test_mmx_sequence_matches_host_cpu(cpus, text):
    """Several MMX (and x87) instructions as one block: stores to the aliased registers, their
    exponent and the TOP/tag updates must survive the optimiser's view across instructions."""
    host, jit = cpus
    slots = [("mm0", "i16"), ("mm1", "i16")] if "fld" not in text else [("mem", "i32")]
    form = MMXForm(text, slots, pointers=("rbx",))
    form.mnemonic = text.split()[0]
    require(check_form(host, WholeBlock(jit), form, vectors(form, 7)), MIN_VECTORS)


CONVERSIONS = [f for f in ALL_FORMS if f.mnemonic.startswith("cvt")]


@pytest.fixture(scope="module")
def datapath_cpus():
    from translator.conformance import HostCPU, JitCPU
    from translator.knobs import knobs_for
    return HostCPU(), JitCPU(knobs_for("datapath"))


@pytest.mark.parametrize("form", CONVERSIONS, ids=[f.text for f in CONVERSIONS])
def test_conversion_exception_flags_at_datapath(datapath_cpus, form):
    """At datapath the MXCSR exception flags (and cvtpi2ps's rounding) are the hardware's too."""
    host, jit = datapath_cpus
    result = require(check(host, jit, form), MIN_VECTORS)
    assert result.mxcsr_flag_mismatches == 0
