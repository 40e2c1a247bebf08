"""Stack accesses in optimised code: a block's accesses at offsets from its entry rsp known
while lifting (push, pop, [rsp+d], rsp moved by constants, a register copied from rsp) are
checked once for the whole block when they all fall inside the stack window; otherwise each is
checked alone. Either way a guest sees exactly what the architecture says: the values moved
through the stack, and a fault at the first instruction whose access leaves mapped memory,
with that access's address and nothing after it done. The expected values below follow from
the instructions' definitions (the offsets are listed beside the code), not from a jitbt run.
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
STACK = 0x40000            # mapped: [STACK, STACK + STACK_SIZE); the page below is not
STACK_SIZE = 0x4000
RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = range(8)

# (instruction, the offsets from the entry rsp it accesses, 8 bytes each)
SEQUENCE = [
    ("push rax", [-8]),
    ("push rbx", [-16]),
    ("mov rbp, rsp", []),
    ("sub rsp, 16", []),
    ("mov [rsp + 8], rcx", [-24]),
    ("push rdx", [-40]),
    ("mov rsi, [rbp - 8]", [-24]),
    ("pop rdi", [-40]),
    ("lea rsp, [rsp + 16]", []),
    ("mov rdx, [rsp]", [-16]),
    ("pop rcx", [-16]),
    ("pop rbx", [-8]),
]


@pytest.fixture(scope="module")
def block():
    mem = GuestMemory()
    mem.map(CODE, 0x1000, PERM_R | PERM_X)
    mem.map(STACK, STACK_SIZE, PERM_R | PERM_W)
    code = b"".join(assemble(text, 0) for text, _ in SEQUENCE)
    mem.poke(CODE, code + assemble("ret", 0))
    tr = Translator(mem.fetch, Knobs(chain="off"))
    blk = tr.decoder.decode_block(mem.fetch, CODE)
    blk.insns.pop()                  # the ret: the block falls through to its end and returns
    (t,) = tr.compile_blocks([blk], hot=True)
    return mem, tr, tr.entry(t.host, t.data), [insn.address for insn in blk.insns]


def _run(mem, fn, rsp):
    st = CPUState()
    for i, v in enumerate([0x1111, 0x2222, 0x3333, 0x4444, rsp, 0x6666, 0x7777, 0x8888]):
        st.gpr[i] = v
    st.rip = CODE
    code = fn(ctypes.addressof(st), mem.base, mem.perm_base)
    return code, st


@pytest.mark.parametrize("room", [0x2000, 0x400, 0x30, 0x28, 0x20, 0x18, 0x10, 0x8, 0x0])
def test_stack_accesses_of_an_optimised_block(block, room):
    """The entry rsp `room` bytes above the unmapped page: deep inside the mapping (the whole
    block checked once) or close enough to the edge that the window is not wholly mapped and
    some access faults."""
    mem, _, fn, starts = block
    rsp = STACK + room
    faulting = next((i for i, (_, offs) in enumerate(SEQUENCE) if any(room + o < 0 for o in offs)),
                    None)
    code, st = _run(mem, fn, rsp)
    if faulting is None:
        assert code != Exit.FAULT
        # rax, rbx, rcx, rdx = 0x1111, 0x4444, 0x2222, 0x3333 went to rsp-8, -16, -24 and -40;
        # rsi reads rsp-24 through rbp (rsp-16 after two pushes), rdi pops rsp-40, rdx and
        # rcx read rsp-16, rbx pops rsp-8; rsp is back where it was.
        assert st.gpr[RSP] == rsp and st.gpr[RBP] == rsp - 16
        assert (st.gpr[RSI], st.gpr[RDI], st.gpr[RDX], st.gpr[RCX], st.gpr[RBX]) == (
            0x2222, 0x3333, 0x4444, 0x4444, 0x1111)
        for offset, value in ((-8, 0x1111), (-16, 0x4444), (-24, 0x2222), (-40, 0x3333)):
            assert mem.read_u64(rsp + offset) == value
    else:
        assert code == Exit.FAULT and st.fault_signal == 11
        text, offs = SEQUENCE[faulting]
        assert st.rip == starts[faulting], text
        assert st.fault_addr == rsp + min(o for o in offs if room + o < 0), text
        # nothing of the faulting instruction or after it happened: rsp is what the
        # instructions before it left
        moved = {"push": -8, "pop": 8, "sub rsp": -16, "lea rsp": 16}
        expect = rsp + sum(d for t, _ in SEQUENCE[:faulting] for k, d in moved.items()
                           if t.startswith(k))
        assert st.gpr[RSP] == expect, text


@pytest.mark.parametrize("room", [1024, 1032, 2048])
def test_an_access_just_outside_the_stack_window_is_still_checked(room):
    """rsp moved by a constant, then pushes that leave the 2 KiB window around the entry rsp:
    with the whole window mapped and the page below it not, the push that reaches that page
    faults at its own address (an access taken as inside the window is not checked at all)."""
    mem = GuestMemory()
    mem.map(CODE, 0x1000, PERM_R | PERM_X)
    mem.map(STACK, STACK_SIZE, PERM_R | PERM_W)
    pushes = ["sub rsp, 1000"] + ["push rax"] * 4
    mem.poke(CODE, b"".join(assemble(t, 0) for t in pushes) + assemble("ret", 0))
    tr = Translator(mem.fetch, Knobs(chain="off"))
    blk = tr.decoder.decode_block(mem.fetch, CODE)
    blk.insns.pop()
    (t,) = tr.compile_blocks([blk], hot=True)
    rsp = STACK + room
    code, st = _run(mem, tr.entry(t.host, t.data), rsp)
    lowest = rsp - 1000 - 32
    if lowest < STACK:
        assert code == Exit.FAULT and st.fault_signal == 11
        assert st.rip == blk.insns[4].address and st.fault_addr == lowest
        assert st.gpr[RSP] == rsp - 1000 - 24
    else:
        assert code != Exit.FAULT and st.gpr[RSP] == lowest
        assert mem.read_u64(lowest) == 0x1111
