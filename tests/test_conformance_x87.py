"""x87 instruction forms run on the host CPU and under jitbt from the same state: general registers,
flags, memory, xmm/MXCSR and the x87 state (control word, status word with TOP and C0-C3, tag,
ST(0)..ST(7)) must match; the status word's exception flags (bits 0-5) are counted apart.

The forms and their input vectors (edge values of each operand format crossed pairwise, plus
seeded random values; rounding forms under every CW.RC mode) are in
translator/conformance/forms_x87.py; ``jitbt conformance`` runs the same table outside pytest.
"""
from __future__ import annotations

import pytest

from translator.conformance import require
from translator.conformance.forms_x87 import ALL_FORMS, MIN_VECTORS, check


@pytest.mark.parametrize("form", ALL_FORMS, ids=[f.text for f in ALL_FORMS])
def test_x87_form_matches_host_cpu(cpus, form):
    host, jit = cpus
    require(check(host, jit, form), MIN_VECTORS)


def test_form_count():
    assert len(ALL_FORMS) >= 150
