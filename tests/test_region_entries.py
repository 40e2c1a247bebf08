"""Side entries of hot regions (knob ``entries``; translator/lifter.py, side_entries).

A hot region is entered at its head and, by default, at the return sites of its calls and the
heads of its loops: the function reads the state's rip on entry and goes there through the
heads of the loops around it, running none of their code. The expected registers below follow
from the instructions, not from a jitbt run.
"""
from __future__ import annotations

import ctypes

import pytest

from runtime.memory import GuestMemory
from translator import Translator
from translator.conformance import assemble
from translator.knobs import Knobs
from translator.lifter import side_entries
from translator.state import CPUState, Exit, PERM_R, PERM_W, PERM_X

CODE = 0x10000
STACK = 0x20000
RAX, RCX, RBX, RSP = 0, 1, 3, 4
# A loop that calls a function: `after` (the return site) is a side entry of the region.
PROGRAM = ["f: add rax, 1", "ret",
           "head: call f", "after: add rbx, 1", "dec rcx", "jnz head", "syscall"]
HEAD = CODE + 5                                         # add rax, 1 (4 bytes); ret


def _translator(entries: str):
    mem = GuestMemory()
    mem.map(CODE, 0x1000, PERM_R | PERM_X)
    mem.map(STACK, 0x1000, PERM_R | PERM_W)
    code = assemble("; ".join(PROGRAM), CODE)
    mem.poke(CODE, code)
    after = HEAD + 5                                    # call rel32
    syscall_end = CODE + code.index(b"\x0f\x05") + 2
    tr = Translator(mem.fetch, Knobs(background="off", entries=entries))
    blocks = tr.decode_region(HEAD, include=lambda a: a < syscall_end)
    return mem, tr, blocks, after, syscall_end


@pytest.fixture(scope="module", params=["returns"])
def region(request):
    mem, tr, blocks, after, syscall_end = _translator(request.param)
    out = tr._enter_region(blocks, fresh=False)
    yield mem, tr, out, after, syscall_end
    del tr


def _run(mem, tr, t, rip: int, rcx: int) -> tuple[int, CPUState]:
    st = CPUState()
    st.gpr[RCX], st.gpr[RSP] = rcx, STACK + 0x800
    st.rip = rip
    st.ticks = 1 << 30
    return tr.entry(t.host, t.data)(ctypes.addressof(st), mem.base, mem.perm_base), st


def test_the_return_site_is_entered_in_the_cache_with_the_regions_code(region):
    mem, tr, out, after, _ = region
    head, *sides = out
    assert head.address == HEAD and [t.address for t in sides] == [after]
    assert sides[0].hot and sides[0].host == head.host
    assert tr.cache.get(after) is sides[0]
    assert after in side_entries([tr.decoder.decode_block(tr.fetch, s, tr.max_insns)
                                  for s, _ in head.ranges])


def test_entered_at_its_head_the_region_runs_the_whole_loop(region):
    """3 trips: f runs 3 times, the return site 3 times."""
    mem, tr, out, _, syscall_end = region
    code, st = _run(mem, tr, out[0], HEAD, 3)
    assert code == Exit.SYSCALL and st.rip == syscall_end
    assert (st.gpr[RAX], st.gpr[RBX], st.gpr[RCX]) == (3, 3, 0)


def test_entered_at_a_return_site_the_region_goes_on_from_there(region):
    """Entered after the call (as when a callee that left the region returns): the first trip
    starts at the return site, so f runs once less than the return site, and nothing of the
    head's block (the call: a push) runs first."""
    mem, tr, out, after, syscall_end = region
    code, st = _run(mem, tr, out[0], after, 3)
    assert code == Exit.SYSCALL and st.rip == syscall_end
    assert (st.gpr[RAX], st.gpr[RBX], st.gpr[RCX]) == (2, 3, 0)
    assert st.gpr[RSP] == STACK + 0x800         # every push popped again


def test_entries_head_enters_only_at_the_head():
    mem, tr, blocks, after, _ = _translator("head")
    out = tr._enter_region(blocks, fresh=False)
    assert [t.address for t in out] == [HEAD]
    assert tr.cache.get(after) is None or not tr.cache.get(after).hot
