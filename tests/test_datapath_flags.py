"""At the datapath level every flag matches the host CPU after every integer instruction form,
the ones the manual leaves undefined included (translator/knobs.py: the exact flag model).

Undefined flags are vendor-specific: the reference is the host, an Intel core, so on any other
host these tests are skipped. The forms are those of ``jitbt conformance`` (forms_int.py), plus
the operand kinds where Intel's undefined flags depend on more than the operation: a rotate by an
immediate keeps OF for a register and computes it for memory, and 16-bit shld/shrd by 17..31;
then random sequences, which may read the flags an instruction left undefined. About 25 s of CPU
time in all.
"""
from __future__ import annotations

import random
import zlib

import pytest

from translator.conformance import (CODE, Form, HostCPU, JitCPU, assemble, check_form,
                                    flag_dict, random_flags)
from translator.conformance.forms_int import ALL_FORMS, check, vectors
from translator.conformance.hostcpu import GPR_NAMES
from translator.knobs import knobs_for
from translator.state import Exit


def _vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


VENDOR = _vendor()
pytestmark = pytest.mark.skipif(
    VENDOR != "GenuineIntel",
    reason=f"undefined flags are vendor-specific and datapath reproduces an Intel host's; this "
           f"host is {VENDOR}")


@pytest.fixture(scope="module")
def datapath_cpus():
    jit = JitCPU(knobs_for("datapath"))
    assert jit.exact, "the datapath level must use the exact flag model"
    return HostCPU(), jit


def _require_all_flags(result):
    assert result.vectors >= 10, f"{result.form.text}: only {result.vectors} vectors"
    assert not result.mismatches, (
        f"{result.form.text}: {len(result.mismatches)} of {result.vectors} vectors differ at "
        f"datapath (undefined flags included); first: {result.mismatches[0]}")


@pytest.mark.parametrize("form,slots", ALL_FORMS, ids=[f.text for f, _ in ALL_FORMS])
def test_integer_form_all_flags(datapath_cpus, form, slots):
    host, jit = datapath_cpus
    _require_all_flags(check(host, jit, (form, slots)))


ROTATE_IMM = [(f"{m} {dst}, {n}", m, w) for m in ("rol", "ror", "rcl", "rcr")
              for w, dst in ((8, "byte ptr [rbx + 8]"), (32, "dword ptr [rbx + 8]"), (16, "r9w"),
                             (64, "r9")) for n in (2, 9, 33)]


@pytest.mark.parametrize("text,mnemonic,bits", ROTATE_IMM, ids=[t for t, _, _ in ROTATE_IMM])
def test_rotate_by_immediate(datapath_cpus, text, mnemonic, bits):
    """OF of a rotate by an immediate other than one: kept for a register, computed (as for the
    first one-bit step) for memory; 33 is a masked count of one, OF defined."""
    host, jit = datapath_cpus
    slot = ("mem", bits) if "[" in text else (text.split()[1].rstrip(","), bits)
    form = Form(text, mnemonic, "alu")
    _require_all_flags(check_form(host, jit, form, vectors(form, [slot],
                                                           seed=zlib.crc32(text.encode()))))


@pytest.mark.parametrize("text", ["shld dx, r14w, cl", "shrd word ptr [rbx + 8], r14w, cl",
                                  "shld word ptr [rbx + 8], r14w, 23", "shrd dx, r14w, 31"])
def test_shift_double_16bit_large_counts(datapath_cpus, text):
    host, jit = datapath_cpus
    rng = random.Random(zlib.crc32(text.encode()))
    vecs = []
    for _ in range(48):
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
        regs["rbx"] = 0
        regs["rcx"] = (regs["rcx"] & ~0xFF) | (rng.randrange(17, 32) + 32 * rng.randrange(8))
        vecs.append((regs, random_flags(rng), bytes(rng.getrandbits(8) for _ in range(64))))
    _require_all_flags(check_form(host, jit, Form(text, text[:4]), vecs))


@pytest.mark.parametrize("seed", range(60))
def test_random_sequence_all_flags(datapath_cpus, seed):
    """Random straight-line sequences (test_sequences.py's), now free to read flags an earlier
    instruction left undefined (``imul rax, rcx; setz dl``): every flag matches at the end."""
    from test_sequences import random_insn
    host, jit = datapath_cpus
    rng = random.Random(seed)
    seq = [random_insn(rng) for _ in range(rng.randrange(2, 12))]
    code = assemble("; ".join(seq))
    host.prepare(code)
    jit.prepare_block(code)
    for _ in range(20):
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n not in ("rsp", "rbx")}
        flags = random_flags(rng)
        h_regs, h_flags, _ = host.run(regs, flags)
        exit_code, j_regs, j_flags, _ = jit.run(regs, flags)
        assert exit_code == Exit.CONTINUE and jit.state.rip == CODE + len(code), seq
        assert j_regs == h_regs, seq
        assert flag_dict(j_flags) == flag_dict(h_flags), (seq, hex(flags))
