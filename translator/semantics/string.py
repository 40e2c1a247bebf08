"""String instructions stos, movs, lods, scas and cmps, with the rep prefixes and the direction
flag::

    rep stosq              ; while rcx: [rdi] = rax; rdi += 8 (-8 with DF); rcx -= 1
    repne scasb            ; while rcx: rcx -= 1; compare al with [rdi]; stop when equal
    repe cmpsw             ; while rcx: rcx -= 1; compare [rsi] with [rdi]; stop when different

A rep loop becomes a loop inside the block's function. Each iteration checks its accesses, so a
fault in the middle leaves rcx, rsi and rdi as the hardware would: counting the elements done.
scas and cmps set the flags as cmp does (first operand minus second), those of the last
comparison; with rcx = 0 nothing happens and the flags are kept, so they read what they write.
The decoder gives the prefix as ``insn.rep``: 0xF3 (rep/repe) or 0xF2 (repne).
"""
from . import semantic

# movsd is also an SSE move: translator/semantics/sse.py owns the mnemonic and calls string_op.
MNEMONICS = [base + s for base in ("stos", "movs", "lods", "scas", "cmps") for s in "bwdq"
             if base + s != "movsd"]
ARITH = "cf pf af zf sf of"


@semantic(*MNEMONICS, writes=lambda m: ARITH if m[:4] in ("scas", "cmps") else "",
          reads=lambda m: "df " + ARITH if m[:4] in ("scas", "cmps") else "df")
def string_op(L, insn):
    if any(op.kind == "xmm" for op in insn.ops):
        # capstone names SSE2's compare-scalar-double "cmpsd" for predicates it has no name for
        from ..lifter import Unsupported     # the lifter imports the semantics: import late
        raise Unsupported("cmpsd with xmm operands")
    kind = insn.mnemonic[:4]
    size = insn.ops[-1].size
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
    equal = None
    if kind == "stos":
        rdi = L.get_gpr(7)
        L.store(rdi, L.get_gpr(0, size), size)
        L.set_gpr(7, L.op("add", 64, rdi, step))
    elif kind == "movs":
        rsi, rdi = L.get_gpr(6), L.get_gpr(7)
        L.store(rdi, L.load(rsi, size), size)
        L.set_gpr(6, L.op("add", 64, rsi, step))
        L.set_gpr(7, L.op("add", 64, rdi, step))
    elif kind == "lods":
        rsi = L.get_gpr(6)
        L.set_gpr(0, L.load(rsi, size), size)
        L.set_gpr(6, L.op("add", 64, rsi, step))
    else:
        rdi = L.get_gpr(7)
        if kind == "cmps":
            rsi = L.get_gpr(6)
            a = L.load(rsi, size)
        else:
            a = L.get_gpr(0, size)
        c = L.load(rdi, size)
        L.sub_with_flags(a, c, bits)
        equal = L.icmp("eq", bits, a, c)
        if kind == "cmps":
            L.set_gpr(6, L.op("add", 64, rsi, step))
        L.set_gpr(7, L.op("add", 64, rdi, step))
    if rep:
        L.set_gpr(1, L.op("sub", 64, L.get_gpr(1), "1"))
        if equal is None:
            b.stmt(f"br label %{head}")
        else:       # repe goes on while equal, repne while different
            go = equal if insn.rep == 0xF3 else b.emit(f"xor i1 {equal}, true")
            b.stmt(f"br i1 {go}, label %{head}, label %{done}")
        b.label(done)
