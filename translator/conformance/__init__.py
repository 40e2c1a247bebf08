"""The differential conformance harness: every instruction form jitbt implements, run natively on
the host CPU and under jitbt from the same state, with the whole resulting state compared.

- hostcpu.py: ``HostCPU`` runs instruction bytes natively from a given register, flag, memory,
  xmm, MXCSR and x87 state; ``assemble`` is keystone.
- harness.py: ``JitCPU`` does the same through jitbt; ``Form``, ``Result``, ``check_form``.
- forms_int.py, forms_sse.py, forms_x87.py, forms_mmx.py: the form tables and input vectors of
  each family.
- report.py: runs the families for ``jitbt conformance`` and keeps forms.txt, the list of
  covered forms (regenerate with ``jitbt conformance --list > translator/conformance/forms.txt``).

Usage::

    from translator.conformance import HostCPU, JitCPU, forms_int
    host, jit = HostCPU(), JitCPU()
    result = forms_int.check(host, jit, forms_int.ALL_FORMS[0])
    print(result.vectors, len(result.mismatches))
"""
from __future__ import annotations

from .harness import (CODE, FLAGS, Form, JitCPU, Result, assert_matches_host, check_form,
                      flag_dict, random_flags, require)
from .hostcpu import FLAG_BITS, GPR_NAMES, MXCSR_DEFAULT, HostCPU, assemble, fxsave_image

__all__ = ["CODE", "FLAGS", "FLAG_BITS", "GPR_NAMES", "MXCSR_DEFAULT", "Form", "HostCPU", "JitCPU",
           "Result", "assemble", "assert_matches_host", "check_form", "flag_dict", "fxsave_image",
           "random_flags", "require"]
