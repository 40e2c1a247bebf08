"""The CPU state is declared once (translator/state.py): the offsets LLVM uses for its fields in
translated code must be exactly where the ctypes mirror puts them. Checked by compiling, through
the same codegen paths as translated blocks (cold and optimising tiers), a function that returns
each field's offset."""
import ctypes

import pytest

from translator.codegen import Codegen
from translator.runtime_ir import MODULE_HEADER
from translator.state import FIELDS, CPUState, field_offset


@pytest.mark.parametrize("opt_level", [0, 2])     # the optimiser folds offsets itself
def test_translated_code_sees_the_ctypes_layout(opt_level):
    cg = Codegen(opt_level)
    body = "\n".join(
        f"  %p{i} = getelementptr %State, ptr null, i64 0, i32 {i}\n"
        f"  %o{i} = ptrtoint ptr %p{i} to i64\n"
        f"  %q{i} = getelementptr i64, ptr %out, i64 {i}\n"
        f"  store i64 %o{i}, ptr %q{i}" for i in range(len(FIELDS)))
    ir = MODULE_HEADER + f"define void @offsets(ptr %out) {{\n{body}\n  ret void\n}}\n"
    addr = cg.compile(ir, ["offsets"])["offsets"]
    out = (ctypes.c_int64 * len(FIELDS))()
    ctypes.CFUNCTYPE(None, ctypes.c_void_p)(addr)(ctypes.addressof(out))
    for i, (name, _, _) in enumerate(FIELDS):
        assert out[i] == field_offset(name), name


def test_power_on_state_and_rflags_round_trip():
    st = CPUState()
    assert st.fpu_cw == 0x037F and st.mxcsr == 0x1F80     # what Linux starts a process with
    st.set_rflags(0x8D5)            # of sf zf af pf cf
    assert st.rflags() == 0x8D5 | 0x202
