"""Faults inside a hot region's loop (translator/irbuilder.py, IRBuilder.fault).

A fault in optimised code writes the guest state back at the faulting instruction: the faults
of a block in a loop share one exit per block (of the function elsewhere), where each local's
value arrives from the faulting site. A loop that loads from one array and stores into
another walks into an unmapped page with either access; the state at the fault must be the
architectural one there: rip at the faulting instruction, the registers as the instructions
before it left them (computed below from their definitions), the fault address, and the
stores before it done.
"""
from __future__ import annotations

import ctypes

import pytest

from runtime.memory import GuestMemory
from translator import Translator
from translator.conformance import assemble
from translator.knobs import Knobs
from translator.state import CPUState, Exit, PERM_R, PERM_W, PERM_X

CODE = 0x10000
SRC = 0x20000             # one page, the page after it unmapped
DST = 0x30000             # likewise
RAX, RCX, RDX, RSI, RDI = 0, 1, 2, 6, 7
LOOP = ["top: mov rdx, [rsi]", "add rax, rdx", "add rsi, 8", "mov [rdi], rax", "add rdi, 8",
        "dec rcx", "jnz top", "nop"]


def _memory(lines):
    """Guest memory with the program `lines` at CODE, SRC full of distinct words, DST empty."""
    mem = GuestMemory()
    mem.map(CODE, 0x1000, PERM_R | PERM_X)
    mem.map(SRC, 0x1000, PERM_R | PERM_W)
    mem.map(DST, 0x1000, PERM_R | PERM_W)
    for i in range(512):
        mem.write(SRC + 8 * i, (i * 0x9E3779B97F4A7C15 & (1 << 64) - 1).to_bytes(8, "little"))
    code = assemble("; ".join(lines), CODE)
    mem.poke(CODE, code)
    return mem, code


@pytest.fixture(scope="module")
def loop():
    mem, code = _memory(LOOP)
    tr = Translator(mem.fetch, Knobs(background="off"))
    blocks = tr.decode_region(CODE, include=lambda a: a == CODE)
    t = tr.compile_region(blocks)
    load = CODE
    store = CODE + len(assemble("; ".join(LOOP[:3]), CODE))
    yield mem, tr.entry(t.host, t.data), load, store
    del tr


@pytest.mark.parametrize("src_left,dst_left", [(5, 100), (100, 7), (1, 100), (100, 1)])
def test_a_fault_in_a_regions_loop_leaves_the_state_of_the_faulting_instruction(
        loop, src_left, dst_left):
    """The loads start `src_left` elements before SRC's page ends, the stores `dst_left`
    before DST's: whichever runs out first faults, on its first access past the page."""
    mem, fn, load, store = loop
    st = CPUState()
    rsi, rdi = SRC + 0x1000 - 8 * src_left, DST + 0x1000 - 8 * dst_left
    st.gpr[RSI], st.gpr[RDI], st.gpr[RCX], st.gpr[RAX] = rsi, rdi, 1000, 0x55
    st.rip = CODE
    st.ticks = 1 << 30
    code = fn(ctypes.addressof(st), mem.base, mem.perm_base)
    # The loop's trips before the fault, by its definition.
    trips = min(src_left, dst_left)
    total = 0x55
    for i in range(trips):
        total = (total + mem.read_u64(rsi + 8 * i)) & (1 << 64) - 1
        assert mem.read_u64(rdi + 8 * i) == total
    assert code == Exit.FAULT and st.fault_signal == 11
    if src_left <= dst_left:       # the load of trip `trips` faults
        assert st.rip == load and st.fault_addr == SRC + 0x1000
        assert st.gpr[RSI] == SRC + 0x1000 and st.gpr[RDI] == rdi + 8 * trips
    else:                          # its store does, after its load and add
        total = (total + mem.read_u64(rsi + 8 * trips)) & (1 << 64) - 1
        assert st.rip == store and st.fault_addr == DST + 0x1000
        assert st.gpr[RSI] == rsi + 8 * (trips + 1) and st.gpr[RDI] == DST + 0x1000
    assert st.gpr[RAX] == total and st.gpr[RCX] == 1000 - trips


# A hot region's block outside its loops and not at its head checks its accesses once, at its
# entry (FunctionLifter._block_entry_check): when that check fails, the region leaves for the
# block's own code elsewhere with the state as the block was entered, and that code (cold here)
# checks each access and faults at the instruction that faults.
TAIL = ["top: add rax, [rsi]", "add rsi, 8", "dec rcx", "jnz top",
        "tail: mov [rdi], rax", "mov rdx, [rsi]", "mov [rdi + 8], rdx", "jmp done",
        "nop", "done: nop"]


@pytest.fixture(scope="module")
def tail():
    mem, code = _memory(TAIL)
    tail_at = CODE + len(assemble("; ".join(TAIL[:4]), CODE))
    done_at = CODE + len(code) - 1                 # (the last nop)
    tr = Translator(mem.fetch, Knobs(background="off"))
    blocks = tr.decode_region(CODE, include=lambda a: a in (CODE, tail_at))
    assert [b.start for b in blocks] == [CODE, tail_at]
    region = tr.compile_region(blocks)
    (cold,) = tr.compile_blocks([blocks[1]], hot=False)
    # An empty lookup table: a chained exit finds nothing there and returns (Exit.CONTINUE).
    table = (ctypes.c_uint64 * (4 * 65536))()
    yield mem, tr.entry(region.host, region.data), tr.entry(cold.host, cold.data), tail_at, \
        done_at, table
    del tr


def _tail_state(table, rsi: int, rdi: int, trips: int) -> CPUState:
    st = CPUState()
    st.gpr[RSI], st.gpr[RDI], st.gpr[RCX], st.gpr[RAX], st.gpr[RDX] = rsi, rdi, trips, 7, 0x77
    st.rip, st.ticks, st.table, st.hot = CODE, 1 << 30, ctypes.addressof(table), 1 << 40
    return st


@pytest.mark.parametrize("left", [5, 9])
def test_a_block_past_the_loop_runs_its_accesses_checked_at_its_entry(tail, left):
    """The loop's `left - 1` trips leave one element of the page for the tail's load."""
    mem, region, _, _, done_at, table = tail
    rsi, rdi, trips = SRC + 0x1000 - 8 * left, DST + 0x800, left - 1
    st = _tail_state(table, rsi, rdi, trips)
    code = region(ctypes.addressof(st), mem.base, mem.perm_base)
    total = (7 + sum(mem.read_u64(rsi + 8 * i) for i in range(trips))) & (1 << 64) - 1
    last = mem.read_u64(rsi + 8 * trips)
    assert code == Exit.CONTINUE and st.rip == done_at
    assert st.gpr[RAX] == total and st.gpr[RDX] == last and st.gpr[RSI] == rsi + 8 * trips
    assert mem.read_u64(rdi) == total and mem.read_u64(rdi + 8) == last


@pytest.mark.parametrize("left", [1, 4])
def test_a_block_whose_entry_check_fails_leaves_for_its_own_code_which_faults_precisely(
        tail, left):
    """The loop reads the page's last `left` elements; the tail's load then reads past the
    page. The region leaves at the tail's first instruction with nothing of it done; the
    tail's cold code then stores rax and faults at the load, as the instructions define."""
    mem, region, cold, tail_at, _, table = tail
    rsi, rdi = SRC + 0x1000 - 8 * left, DST + 0x100 + 16 * left
    st = _tail_state(table, rsi, rdi, left)
    mem.write(rdi, bytes(16))
    code = region(ctypes.addressof(st), mem.base, mem.perm_base)
    total = (7 + sum(mem.read_u64(rsi + 8 * i) for i in range(left))) & (1 << 64) - 1
    assert code == Exit.CONTINUE and st.rip == tail_at
    assert st.gpr[RAX] == total and st.gpr[RSI] == SRC + 0x1000 and st.gpr[RCX] == 0
    assert st.gpr[RDX] == 0x77 and mem.read_u64(rdi) == 0      # the tail has not run
    code = cold(ctypes.addressof(st), mem.base, mem.perm_base)
    assert code == Exit.FAULT and st.fault_signal == 11
    assert st.rip == tail_at + len(assemble("mov [rdi], rax", tail_at))
    assert st.fault_addr == SRC + 0x1000 and mem.read_u64(rdi) == total
    assert st.gpr[RDX] == 0x77 and mem.read_u64(rdi + 8) == 0


def test_a_regions_module_calls_the_runtimes_window_search_without_defining_it():
    """The loop's accesses try their windows first; a miss calls the window search compiled
    once a process with the runtime's own code (the dispatcher's module and the entry
    trampoline's, which store its address in the state), so that a region's module does not
    carry (and LLVM does not optimise again) the search and its page scan: 10-12 ms of -O2 per
    region. The faults above run through it."""
    from translator.runtime_ir import RUNTIME_DEFS
    mem, _ = _memory(LOOP)
    tr = Translator(mem.fetch, Knobs(background="off"))
    ir = tr._region_ir(tr.decode_region(CODE, include=lambda a: a == CODE), "r")
    assert "%win.fn(" in ir
    assert "@jitbt_window" not in ir and "@extent" not in ir
    assert "define internal preserve_mostcc {i64, i64} @jitbt_window(" in RUNTIME_DEFS
