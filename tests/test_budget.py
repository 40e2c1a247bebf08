"""The tick budget of hot regions (translator/lifter.py, FunctionLifter.goto).

A loop inside a hot region counts its back edges in the state's ticks and leaves for the
runtime (Exit.BUDGET) once they are spent, so that signals and stop requests are served however
long the guest loops. A back edge to the region's head leaves with DRAIN ticks left, the others
when none are: a loop that comes back to the head leaves there, where the region is entered
again, and an inner loop that does not leaves at its own back edge DRAIN back edges later.
(Leaving at an inner loop's back edge put the guest in that block's cold code, which ran the
rest of the loop nest cold until it came back to the head.) Either way the state at the exit
is the guest's at the address it names: the expected values below follow from the
instructions and that rule, not from a jitbt run.
"""
from __future__ import annotations

import ctypes

import pytest

from runtime.memory import GuestMemory
from translator import Translator
from translator.conformance import assemble
from translator.knobs import Knobs
from translator.lifter import DRAIN
from translator.state import CPUState, Exit, PERM_R, PERM_X

BASE = 0x400000
RAX, RCX, RBX = 0, 1, 3
# head: the region's head, on the outer loop; inner: a loop of its own inside it.
LOOPS = ["add rbx, 1", "jmp inner",
         "inner: add rax, 1", "cmp rax, rcx", "jb inner",
         "xor eax, eax", "jmp {head}"]


def _load(lines):
    """The program `lines` at BASE ({head} is BASE), in guest memory, with a translator."""
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    code = assemble("; ".join(lines).format(head=hex(BASE)), BASE)
    mem.poke(BASE, code)
    return mem, code, Translator(mem.fetch, Knobs(background="off"))


@pytest.fixture(scope="module")
def region():
    mem, _, tr = _load(LOOPS)
    blocks = tr.decode_region(BASE)
    inner = next(b.start for b in blocks if b.insns[0].mnemonic == "add"
                 and b.insns[0].op_str.startswith("rax"))
    t = tr.compile_region(blocks)
    assert t.hot and t.address == BASE and len(blocks) == 3
    yield mem, tr.entry(t.host, t.data), inner
    del tr                     # (kept alive until here: it owns the compiled code)


def _run(mem, fn, rcx: int, ticks: int) -> tuple[int, CPUState]:
    st = CPUState()
    st.gpr[RCX] = rcx
    st.rip = BASE
    st.ticks = ticks
    return fn(ctypes.addressof(st), mem.base, mem.perm_base), st


@pytest.mark.parametrize("ticks", [DRAIN + 1, DRAIN + 3, DRAIN + 9])
def test_a_spent_budget_leaves_at_the_head_when_the_loop_comes_back_there(region, ticks):
    """The inner loop's 10 trips (9 back edges) take the ticks to DRAIN or below, but not to 0;
    the outer loop's back edge then reaches the head: the region leaves there."""
    mem, fn, _ = region
    code, st = _run(mem, fn, 10, ticks)
    assert code == Exit.BUDGET and st.rip == BASE
    assert st.gpr[RBX] == 1 and st.gpr[RAX] == 0     # one outer trip, the inner loop done


def test_an_inner_loop_that_does_not_come_back_leaves_after_draining(region):
    """An inner loop longer than the budget: it leaves at its own back edge when the ticks
    reach 0, with rax counting its trips."""
    mem, fn, inner = region
    code, st = _run(mem, fn, 1 << 40, DRAIN + 5)
    assert code == Exit.BUDGET and st.rip == inner
    assert st.gpr[RAX] == DRAIN + 5 and st.gpr[RBX] == 1


def test_a_loop_with_budget_left_runs_on(region):
    """With more ticks than the loops use, neither back edge leaves: the outer loop's
    DRAIN + 20 - 9 trips later it does, at the head."""
    mem, fn, _ = region
    code, st = _run(mem, fn, 10, DRAIN + 20)
    assert code == Exit.BUDGET and st.rip == BASE
    # each outer trip: 9 inner back edges and 1 to the head; it leaves at the 2nd head edge
    assert st.gpr[RBX] == 2 and st.gpr[RAX] == 0


# The head reads CF first (adc: the carry of the last trip's add, across dec, which leaves CF
# alone); the inner loop's head writes every flag before reading any.
CARRY = ["adc rbx, 0", "jmp inner",
         "inner: add rsi, 1", "cmp rsi, rdi", "jb inner",
         "add rax, rdx", "dec rcx", "jnz {head}", "nop"]


@pytest.fixture(scope="module")
def carry_region():
    mem, code, tr = _load(CARRY)
    end = BASE + len(code) - 1                      # the nop: the region leaves there
    blocks = tr.decode_region(BASE, include=lambda a: BASE <= a < end)
    t = tr.compile_region(blocks)
    yield mem, tr.entry(t.host, t.data)
    del tr


@pytest.mark.parametrize("trips", [1, 2, 5])
def test_a_budget_exit_writes_back_the_flags_its_target_reads_first(carry_region, trips):
    """The back edges' exits write back the flags their targets read before writing them:
    leaving at the head after `trips` trips, CF must be the carry of the last trip's add (the
    next adc reads it), and rbx the carries of the trips before it; the registers follow
    from the instructions. rdx makes every second add carry."""
    mem, fn = carry_region
    st = CPUState()
    rdx = 1 << 63
    st.gpr[RCX], st.gpr[0], st.gpr[2], st.gpr[3] = 100, 0, rdx, 0
    st.gpr[6], st.gpr[7] = 0, 3                     # the inner loop: 3 trips, then 1 each
    st.rip = BASE
    st.ticks = DRAIN + 3 + (trips - 1)    # back edges: 2 inner and the head's, then the head's
    code = fn(ctypes.addressof(st), mem.base, mem.perm_base)
    carries = [(i * rdx % (1 << 64) + rdx) >> 64 for i in range(trips)]   # each add's
    assert code == Exit.BUDGET and st.rip == BASE
    assert st.gpr[0] == trips * rdx % (1 << 64) and st.gpr[RCX] == 100 - trips
    assert st.cf == carries[-1]
    assert st.gpr[RBX] == sum(carries[:-1])


@pytest.mark.parametrize("ticks", [1, 5, 40])
def test_the_dispatcher_spends_the_state_ticks(ticks):
    """Blocks the dispatcher runs spend the state's ticks as chained transfers do: it leaves
    (Exit.BUDGET) when they are spent, so a thread that sets them to 0 (the background
    compiler, when a hot region is ready: runtime/machine.py) has the guest come back at the
    next block. A one-block loop that returns to the dispatcher every trip (chain=off) runs
    exactly `ticks` trips."""
    from runtime.dispatcher import Dispatcher
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    mem.poke(BASE, assemble(f"add rax, 1; jmp {BASE:#x}", BASE))
    tr = Translator(mem.fetch, Knobs(background="off", chain="off"))
    disp = Dispatcher(tr.codegen)
    (t,) = tr.compile_blocks([tr.decoder.decode_block(mem.fetch, BASE)], hot=False)
    disp.insert(t)
    st = CPUState()
    st.rip, st.ticks = BASE, ticks
    code = disp.run(ctypes.addressof(st), mem.base, mem.perm_base)
    assert code == Exit.BUDGET and st.rip == BASE
    assert st.gpr[RAX] == ticks and st.ticks == 0
