"""The SSE floating-point and x87 forms at the datapath accuracy level: every architectural bit as
the host CPU produces it, the MXCSR exception flags (bits 0-5) and the x87 status word's
exception flags included, under non-default MXCSR modes too (rounding control, DAZ, FTZ: the
SSE vectors at datapath add them, translator/conformance/forms_sse.py).

Every third vector of each form is run (the whole tables run in ``jitbt conformance --accuracy
datapath``). Unmasked exceptions cannot run natively (the host process would trap), so those
tests run the host with the exception masked to learn which flags the input raises, then expect
jitbt to deliver SIGFPE where the manual says: at the SSE instruction itself with its destination
unchanged, and for the x87 at the next waiting instruction.
"""
from __future__ import annotations

import zlib

import pytest

from translator.conformance import assemble, require
from translator.conformance import forms_sse, forms_x87
from translator.conformance.harness import CODE, HostCPU, JitCPU, check_form, fxsave_image
from translator.knobs import knobs_for
from translator.state import SIGFPE, Exit

STRIDE = 3          # every third vector (coprime with the 2 and 5 vectors a group of a form makes)
SSE_FORMS = [f for f in forms_sse.ALL_FORMS if forms_sse.FLOATING.match(f.mnemonic)]
X87_FORMS = forms_x87.ALL_FORMS
MXCSR_FLAGS = 0x3F
PRE = 0x07          # invalid, denormal, divide by zero: detected before the result


@pytest.fixture(scope="module")
def datapath():
    return HostCPU(), JitCPU(knobs_for("datapath"))


def seed(form) -> int:
    return zlib.crc32(form.text.encode())


def exact(result):
    require(result, 8)
    assert result.mxcsr_flag_mismatches == 0 and result.fpu_flag_mismatches == 0


@pytest.mark.parametrize("form", SSE_FORMS, ids=[f.text for f in SSE_FORMS])
def test_sse_form_exact(datapath, form):
    host, jit = datapath
    vectors = forms_sse.vectors(form, seed(form), modes=True)
    assert any(v[4] & 0x8040 for v in vectors[::STRIDE])      # DAZ or FTZ among them
    exact(check_form(host, jit, form, vectors[::STRIDE]))


@pytest.mark.parametrize("form", X87_FORMS, ids=[f.text for f in X87_FORMS])
def test_x87_form_exact(datapath, form):
    host, jit = datapath
    exact(check_form(host, jit, form, forms_x87.vectors(form, seed(form))[::STRIDE]))


def f64(x: float) -> int:
    return forms_sse.f64(x)


# (form, xmm1, xmm2): inputs that raise an exception
SSE_RAISING = [
    ("divsd xmm1, xmm2", f64(1.0), 0),                              # divide by zero
    ("sqrtsd xmm1, xmm2", 0, f64(-1.0)),                            # invalid
    ("mulsd xmm1, xmm2", f64(1e300), f64(1e300)),                   # overflow, precision
    ("mulsd xmm1, xmm2", f64(1e-300), f64(1e-300)),                 # underflow, precision
    ("addsd xmm1, xmm2", f64(1.0), f64(1e-30)),                     # precision
    ("addps xmm1, xmm2", 0x3F800000, 0x00000001),                   # denormal, precision
    ("cvtsd2si eax, xmm2", 0, f64(1e20)),                           # invalid
    ("comisd xmm1, xmm2", 0x7FF8000000000000, 0),                   # invalid (a quiet NaN)
]


@pytest.mark.parametrize("text,a,c", SSE_RAISING, ids=[t for t, _, _ in SSE_RAISING])
def test_sse_unmasked_exception_faults(datapath, text, a, c):
    host, jit = datapath
    code = assemble(text)
    host.prepare(code)
    jit.prepare(code)
    xmm = {1: a | 0x1234 << 96, 2: c}
    regs = {"rax": 0x1111222233334444}
    h = host.run_full(regs, 0, bytes(64), xmm, forms_sse.MXCSR_DEFAULT)
    raised = h[4] & MXCSR_FLAGS
    assert raised
    # Masked: no fault, the host's state and flags.
    _, j_regs, _, _, j_xmm, j_mxcsr = jit.run_full(regs, 0, bytes(64), xmm,
                                                    forms_sse.MXCSR_DEFAULT)
    assert (j_regs["rax"], j_xmm[1], j_mxcsr) == (h[0]["rax"], h[3][1], h[4])
    # Every exception unmasked but the raised ones: still no fault.
    others = forms_sse.MXCSR_DEFAULT & ~((MXCSR_FLAGS & ~raised) << 7)
    code_, j_regs, _, _, j_xmm, j_mxcsr = jit.run_full(regs, 0, bytes(64), xmm, others)
    assert code_ == Exit.CONTINUE and j_xmm[1] == h[3][1] and j_mxcsr & MXCSR_FLAGS == raised
    # Each raised exception unmasked on its own: SIGFPE at the instruction, nothing written but
    # the flags (only the pre-computation ones when the unmasked one is one of them).
    for bit in range(6):
        if not raised >> bit & 1:
            continue
        mxcsr = forms_sse.MXCSR_DEFAULT & ~(1 << (bit + 7))
        code_, j_regs, _, _, j_xmm, j_mxcsr = jit.run_full(regs, 0, bytes(64), xmm, mxcsr)
        assert code_ == Exit.FAULT and jit.state.fault_signal == SIGFPE and jit.state.rip == CODE
        assert j_xmm[1] == xmm[1] and j_regs["rax"] == regs["rax"]
        expected = raised & PRE if (1 << bit) & PRE else raised
        assert j_mxcsr == mxcsr | expected


ZE = 0x04
X87_CW_UNMASK_ZE = 0x037F & ~ZE


def x87_state(cw: int, sw: int = 0):
    """ST(0) = 1.0 and ST(1) = 0.0 at TOP = 0 (the rest empty), under `cw`."""
    one, zero = 0x3FFF8000000000000000, 0
    return fxsave_image(cw, sw, 0x03, [one, zero])


def test_x87_unmasked_exception_faults_at_next_waiting_instruction(datapath):
    host, jit = datapath
    text = "fdiv st(0), st(1)"
    host.prepare(assemble(text))
    h = host.run_x87({}, 0, bytes(64), None, forms_sse.MXCSR_DEFAULT, x87_state(0x037F))
    h_sw = int.from_bytes(h[5][2:4], "little")
    assert h_sw & ZE                            # the host says: divide by zero
    first = assemble(text)
    jit.prepare_block(first + assemble("fld1"))
    code_, *_, fx = jit.run_x87({}, 0, bytes(64), None, forms_sse.MXCSR_DEFAULT,
                                x87_state(X87_CW_UNMASK_ZE))
    sw = int.from_bytes(fx[2:4], "little")
    assert code_ == Exit.FAULT and jit.state.fault_signal == SIGFPE
    assert jit.state.rip == CODE + len(first)   # at the fld1, which did not run
    assert sw & 0x3F == h_sw & 0x3F and sw & 0x8080 == 0x8080
    assert sw >> 11 & 7 == 0                    # nothing pushed


@pytest.mark.parametrize("text,faults", [("fld1", True), ("fwait", True), ("fnstsw ax", False),
                                         ("fnclex", False), ("fninit", False)])
def test_x87_pending_exception(datapath, text, faults):
    """A flag pending unmasked in the status word: waiting instructions fault first."""
    _, jit = datapath
    jit.prepare(assemble(text))
    code_, *_ = jit.run_x87({}, 0, bytes(64), None, forms_sse.MXCSR_DEFAULT,
                            x87_state(X87_CW_UNMASK_ZE, ZE | 0x8080))
    assert (code_ == Exit.FAULT and jit.state.fault_signal == SIGFPE) == faults
    if faults:
        assert jit.state.rip == CODE
