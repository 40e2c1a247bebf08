"""SSE/SSE2 instruction forms run on the host CPU and under jitbt from the same state: all
general registers, flags, xmm0..xmm15, MXCSR (bits 6-15; the exception flags 0-5 are not modelled
yet and are counted apart) and memory must match.

The forms and their input vectors (lane-typed edge values crossed pairwise, plus seeded random
values; conversions under every MXCSR rounding mode) are in translator/conformance/forms_sse.py;
``jitbt conformance`` runs the same table outside pytest.
"""
from __future__ import annotations

import re

import pytest

from translator.conformance import MXCSR_DEFAULT, HostCPU, JitCPU, assemble, require
from translator.conformance.forms_sse import ALL_FORMS, MIN_VECTORS, check
from translator.semantics import hostexec
from translator.state import SIGSEGV, Exit


@pytest.mark.parametrize("form", ALL_FORMS, ids=[f.text for f in ALL_FORMS])
def test_sse_form_matches_host_cpu(cpus, form):
    host, jit = cpus
    require(check(host, jit, form), MIN_VECTORS)


ARITHMETIC = [f for f in ALL_FORMS if re.match(r"(add|sub|mul|div)(ps|pd|ss|sd) ", f.text)]


@pytest.mark.parametrize("form", ARITHMETIC, ids=[f.text for f in ARITHMETIC])
def test_arithmetic_in_the_legacy_encoding_matches_host_cpu(monkeypatch, form):
    """Below datapath add/sub/mul/div run the host's own instruction (hostexec.plain_xmm_op):
    its VEX form where code is generated for a CPU with AVX (what the test above runs on
    such a host), the legacy SSE form for generic code and CPUs without AVX: this one."""
    monkeypatch.setattr(hostexec, "_VEX", False)
    require(check(HostCPU(), JitCPU(tier="hot"), form), MIN_VECTORS)


def test_form_count():
    assert len(ALL_FORMS) >= 250


@pytest.mark.parametrize("text", ["movaps xmm1, xmmword ptr [rbx + 8]",
                                  "movdqa xmmword ptr [rbx + 4], xmm1",
                                  "addps xmm1, xmmword ptr [rbx + 8]",
                                  "pxor xmm1, xmmword ptr [rbx + 1]",
                                  "movntdq xmmword ptr [rbx + 8], xmm1"])
def test_misaligned_operand_faults(cpus, text):
    """Legacy SSE 16-byte memory operands must be 16-byte aligned (#GP: SIGSEGV), except the
    unaligned moves; the host would die of it, so only jitbt runs these."""
    _, jit = cpus
    jit.prepare(assemble(text))
    code, regs, _, _, xmm, _ = jit.run_full({"rbx": jit.mem_address}, 0, bytes(64),
                                            {1: 12345})
    assert code == Exit.FAULT and jit.state.fault_signal == SIGSEGV
    assert xmm[1] == 12345


def test_ldmxcsr_reserved_bits_fault(cpus):
    _, jit = cpus
    jit.prepare(assemble("ldmxcsr dword ptr [rbx]"))
    code, *_ = jit.run_full({"rbx": jit.mem_address}, 0, (0x11F80).to_bytes(4, "little"))
    assert code == Exit.FAULT and jit.state.fault_signal == SIGSEGV
    assert jit.state.mxcsr == MXCSR_DEFAULT
