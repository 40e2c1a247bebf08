"""A hot region grows to take in a path that turned hot after it was formed, when that path
leads back into it (Translator._grown, _leads_back).

- A callee's second way out (a branch to another ret) leads back: its ret returns to the call's
  return site in the region. The region grows instead of the path heading a region of its own,
  which the guest would leave the region for and come back from through the lookup table on
  every call that takes it.
- A path of the region's own function that ends in a ret leaves it for good: no growth.
"""
from __future__ import annotations

from runtime.memory import GuestMemory
from translator import Translator
from translator.conformance import assemble
from translator.knobs import Knobs
from translator.state import PERM_R, PERM_X

BASE = 0x400000
CALLEE = BASE + 0x100
ODD = BASE + 0x180
# rcx counts down; each trip calls f(rcx), which returns 1 for an even argument and 2 for an
# odd one (its second way out, at ODD); rdx sums what it returns.
LOOP = f"""loop: mov rdi, rcx; call {CALLEE:#x}; add rdx, rax; dec rcx; jnz loop;
           test rdx, rdx; jz {BASE + 0x80:#x}; ret"""
TAIL = "mov rdx, 7; ret"
F = f"test dil, 1; jnz {ODD:#x}; mov eax, 1; ret"
F_ODD = "mov eax, 2; ret"


def _translator():
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    for at, src in ((BASE, LOOP), (BASE + 0x80, TAIL), (CALLEE, F), (ODD, F_ODD)):
        mem.poke(at, assemble(src, at))
    tr = Translator(mem.fetch, Knobs(background="off"))
    starts = [b.start for b in tr.decode_region(BASE, 16, include=lambda a: True)]
    for a in starts:
        tr.lookup(a)                  # the cold translations, as a run makes them
    return tr, starts


def test_a_callees_other_way_out_grows_the_region_of_its_caller():
    tr, starts = _translator()
    assert ODD in starts
    ran = {a for a in starts if a != ODD}
    region, *_ = tr.promote(BASE, lambda a: a in ran)
    assert region.address == BASE and ODD not in {s for s, _ in region.ranges}
    assert CALLEE in {s for s, _ in region.ranges}
    ran.add(ODD)
    grown, *_ = tr.promote(ODD, lambda a: a in ran)
    assert grown.address == BASE, "the path headed a region of its own"
    assert ODD in {s for s, _ in grown.ranges}
    assert tr.stats.regions_grown == 1
    tr.close()


def test_the_own_functions_way_out_does_not_grow_it():
    tr, starts = _translator()
    tail = BASE + 0x80
    ran = {a for a in starts if a != tail}
    tr.promote(BASE, lambda a: a in ran)
    ran.add(tail)
    out, *_ = tr.promote(tail, lambda a: a in ran)
    assert out.address == tail and tr.stats.regions_grown == 0
    tr.close()


# An outer loop around an inner one, whose hot region is headed at a block of the outer loop
# that only some trips run (where the dispatcher first found a block hot), as sort's merge
# loop's was: rcx counts the outer trips, rdx the inner ones.
NEST = BASE + 0x200
INNER, AFTER, SIDE, NEXT = NEST + 0x20, NEST + 0x40, NEST + 0x60, NEST + 0x80
NEST_SRC = {NEST: f"mov rdx, 50; jmp {INNER:#x}",
            INNER: f"add rax, rdx; dec rdx; jnz {INNER:#x}; jmp {AFTER:#x}",
            AFTER: f"test cl, 1; jz {NEXT:#x}; jmp {SIDE:#x}",
            SIDE: f"inc rbx; jmp {NEXT:#x}",
            NEXT: f"dec rcx; jnz {NEST:#x}; ret"}


def test_a_block_inside_a_regions_inner_loop_heads_a_region_of_that_loop_only():
    """A budget exit leaves a region at an inner loop's backward branch, and the guest comes
    back there through the lookup table: the block turns hot on its own. Its region is that
    loop (here one block), not the outer loop's blocks again (Translator._inner_loop)."""
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    for at, src in NEST_SRC.items():
        mem.poke(at, assemble(src, at))
    tr = Translator(mem.fetch, Knobs(background="off"))
    starts = {b.start for b in tr.decode_region(SIDE, 16, include=lambda a: True)}
    for a in starts:
        tr.lookup(a)
    assert {NEST, INNER, AFTER, NEXT} < starts
    region, *_ = tr.promote(SIDE, lambda a: True)
    assert region.address == SIDE and {s for s, _ in region.ranges} == starts
    again, *_ = tr.promote(INNER, lambda a: True)
    assert again.address == INNER
    assert {s for s, _ in again.ranges} == {INNER}, "the outer loop was compiled again"
    tr.close()
