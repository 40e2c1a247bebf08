"""Flags across the blocks of a hot region (translator/lifter.py, region_flag_liveness).

Inside a region a flag is computed only where a block the code may branch to inside the function
reads it before writing it, or where the function may leave. These programs carry flags across
blocks, round loops and through blocks that write other flags (inc and dec leave CF alone),
and end by falling through their end, where every flag is live. Each runs on the host CPU and,
compiled as one hot region, under jitbt, from the same random registers and flags: the final
registers and flags must be the host's.
"""
from __future__ import annotations

import random

import pytest

from translator import Translator
from translator.conformance import CODE, FLAGS, GPR_NAMES, HostCPU, assemble, flag_dict, \
    random_flags
from translator.conformance.harness import JitCPU
from translator.state import Exit

PROGRAMS = {
    # CF from adc crosses dec (which writes the other flags) and the back edge; after the loop
    # setc and seto read what the last adc and dec left.
    "carry round a loop": "top: add rax, rdx; adc rbx, 0; dec rcx; jnz top; setc sil; seto dil",
    # One side reads cmp's CF, the other overwrites every flag; both meet at the end.
    "read on one side": "cmp rax, rdx; ja above; add rbx, 1; jmp done; above: sbb rbx, rbx; "
                        "done: nop",
    # A flag set before a branch is read two blocks later, past a block that writes none.
    "read two blocks on": "cmp rax, rdx; jmp one; one: mov rsi, rbx; jmp two; two: "
                          "cmovb rdi, rsi; setz bl",
    # inc leaves CF: the loop's exit reads the CF of the cmp before the loop, through jnz.
    "carry past inc": "cmp rax, rdx; top: inc rbx; dec rcx; jnz top; adc rsi, rdi",
    # The flags the region leaves with come from a block that wrote some of them only.
    "partial writes at the end": "add rax, rdx; jc skip; inc rbx; skip: dec rsi",
}


def _region_fn(jit: JitCPU, code: bytes):
    """`code` at CODE, compiled as one hot region of its blocks (without the block after it,
    where the function leaves)."""
    tr: Translator = jit.translator
    jit.mem.poke(CODE, code + b"\xc3")
    end = CODE + len(code)
    blocks = tr.decode_region(CODE, include=lambda a: CODE <= a < end)
    for b in blocks:
        if b.insns[-1].address == end:
            b.insns.pop()           # the ret: the block falls through to the end and leaves
    t = tr.compile_region(blocks)
    return tr.entry(t.host, t.data), len(blocks)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_flags_across_a_regions_blocks_match_the_host_cpu(name):
    code = assemble(PROGRAMS[name])
    host, jit = HostCPU(), JitCPU()
    host.prepare(code)
    jit.fn, nblocks = _region_fn(jit, code)
    assert nblocks > 1
    rng = random.Random(name)
    for _ in range(40):
        regs = {n: rng.getrandbits(64) if rng.random() < 0.7 else rng.randrange(4)
                for n in GPR_NAMES if n not in ("rsp",)}
        regs["rcx"] = rng.randrange(1, 40)           # the loops' trip counts
        flags = random_flags(rng)
        jit.state.ticks = 1 << 30                    # (no budget exit on the back edges)
        h_regs, h_flags, _ = host.run(regs, flags)
        code_, j_regs, j_flags, _ = jit.run(regs, flags)
        assert code_ == Exit.CONTINUE and jit.state.rip == CODE + len(code)
        assert {k: hex(v) for k, v in j_regs.items()} == {k: hex(v) for k, v in h_regs.items()}
        hf, jf = flag_dict(h_flags), flag_dict(j_flags)
        assert {f: jf[f] for f in FLAGS} == {f: hf[f] for f in FLAGS}, (name, regs, flags)
