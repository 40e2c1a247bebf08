"""The CPU state is declared once (translator/state.py): its LLVM type, as laid out by LLVM for
the host target, must put every field where the ctypes mirror puts it."""
import ctypes

import llvmlite.binding as llvm

from translator.codegen import Codegen
from translator.state import FIELDS, LLVM_TYPE, CPUState, field_offset


def test_llvm_layout_matches_ctypes():
    cg = Codegen(0)
    mod = llvm.parse_assembly(f"%State = type {LLVM_TYPE}\n@g = external global %State\n")
    td = cg.tm.target_data
    ty = mod.get_global_variable("g").global_value_type
    for i, (name, _, _) in enumerate(FIELDS):
        assert td.get_element_offset(ty, i) == field_offset(name), name
    assert td.get_abi_size(ty) <= ctypes.sizeof(CPUState)


def test_rflags_round_trip():
    st = CPUState()
    st.set_rflags(0x8D5)            # of df sf zf af pf cf pattern
    assert st.rflags() == 0x8D5 | 0x202
