"""String instructions stos, movs and lods, with the rep prefix and the direction flag.

A rep loop becomes a loop inside the block's function. Each iteration checks its accesses, so a
fault in the middle leaves rcx, rsi and rdi as the hardware would: counting the elements done.
"""
from . import semantic

# movsd is also an SSE move: translator/semantics/sse.py owns the mnemonic and calls string_op.
MNEMONICS = [base + s for base in ("stos", "movs", "lods") for s in "bwdq" if base + s != "movsd"]


@semantic(*MNEMONICS, reads="df")
def string_op(L, insn):
    kind = insn.mnemonic[:4]
    size = insn.ops[0].size
    bits = size * 8
    b = L.b
    step = L.select(L.get_flag("df"), 64, str(-size), str(size))
    rep = insn.rep != 0
    if rep:
        head, body, done = b.new_label("rep"), b.new_label("body"), b.new_label("done")
        b.label(head)
        rcx = L.get_gpr(1)
        b.stmt(f"br i1 {L.icmp('eq', 64, rcx, '0')}, label %{done}, label %{body}")
        b.label(body)
    if kind == "stos":
        rdi = L.get_gpr(7)
        L.store(rdi, L.get_gpr(0, size), size)
        L.set_gpr(7, L.op("add", 64, rdi, step))
    elif kind == "movs":
        rsi, rdi = L.get_gpr(6), L.get_gpr(7)
        L.store(rdi, L.load(rsi, size), size)
        L.set_gpr(6, L.op("add", 64, rsi, step))
        L.set_gpr(7, L.op("add", 64, rdi, step))
    else:
        rsi = L.get_gpr(6)
        L.set_gpr(0, L.load(rsi, size), size)
        L.set_gpr(6, L.op("add", 64, rsi, step))
    if rep:
        L.set_gpr(1, L.op("sub", 64, L.get_gpr(1), "1"))
        b.stmt(f"br label %{head}")
        b.label(done)
    del bits
