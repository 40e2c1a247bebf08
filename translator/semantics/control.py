"""Control transfers: jmp, jcc, jrcxz, loop, call, ret, and the frame instructions enter and
leave. Each transfer ends its block by storing the next guest address in rip; the dispatcher finds
(or translates) the block there. Prefixes that change nothing for a user-mode guest without
shadow stacks or MPX are dropped by the decoder: ``rep ret``, ``bnd jmp``, ``notrack jmp rax``."""
from ..irbuilder import const
from . import cc_reads, semantic, with_cc

MASK = (1 << 64) - 1


@semantic("jmp")
def jmp(L, insn):
    # Through a register (a switch) it may branch inside the region, whose formation took in
    # the blocks it went to, and so may a PLT stub's jmp through a rip-relative pointer (the
    # region took in where it pointed); through other memory (a pointer table) it chains.
    op = insn.ops[0]
    L.jump(L.read(op, 64), within="reg" if op.kind == "reg" else
           "slot" if L.block.jump_slot is not None else None)


@semantic(*with_cc("j"), reads=cc_reads("j"))
def jcc(L, insn):
    L.branch(L.cond(insn.mnemonic[1:]), insn.ops[0].imm & MASK, insn.next)


@semantic("jrcxz", "jecxz")
def jrcxz(L, insn):
    size = 8 if insn.mnemonic == "jrcxz" else 4
    zero = L.icmp("eq", size * 8, L.get_gpr(1, size), "0")
    L.branch(zero, insn.ops[0].imm & MASK, insn.next)


@semantic("loop", "loope", "loopne", reads=lambda m: "" if m == "loop" else "zf")
def loop(L, insn):
    rcx = L.op("sub", 64, L.get_gpr(1), "1")
    L.set_gpr(1, rcx)
    taken = L.icmp("ne", 64, rcx, "0")
    if insn.mnemonic != "loop":
        zf = L.get_flag("zf")
        if insn.mnemonic == "loopne":
            zf = L.b.emit(f"xor i1 {zf}, true")
        taken = L.b.emit(f"and i1 {taken}, {zf}")
    L.branch(taken, insn.ops[0].imm & MASK, insn.next)


@semantic("call")
def call(L, insn):
    target = L.read(insn.ops[0], 64)     # read before the push: call [rsp+8] sees the old rsp
    L.push(const(insn.next, 64))
    L.jump(target)


@semantic("ret")
def ret(L, insn):
    target = L.pop()
    if insn.ops:
        L.set_gpr(4, L.op("add", 64, L.get_gpr(4), str(insn.ops[0].imm & 0xFFFF)))
    L.jump(target, ret=True)


@semantic("leave")
def leave(L, insn):
    L.set_gpr(4, L.get_gpr(5))
    L.set_gpr(5, L.pop())


@semantic("enter")
def enter(L, insn):
    """enter size, level: push rbp, copy level-1 frame pointers of the enclosing frames, push the
    new frame pointer (level > 0), rbp = the new frame, rsp -= size. The stores come first, so a
    fault leaves rsp and rbp as they were."""
    if 0x66 in insn.raw[:insn.raw.index(0xC8)]:
        from ..lifter import Unsupported     # the lifter imports the semantics: import late
        raise Unsupported("16-bit enter")
    size, level = insn.ops[0].imm & 0xFFFF, insn.ops[1].imm & 31
    rsp, rbp = L.get_gpr(4), L.get_gpr(5)
    frame = L.op("sub", 64, rsp, "8")
    L.store(frame, rbp, 8)
    top = frame
    for i in range(1, level):
        value = L.load(L.op("sub", 64, rbp, str(8 * i)), 8)
        top = L.op("sub", 64, top, "8")
        L.store(top, value, 8)
    if level:
        top = L.op("sub", 64, top, "8")
        L.store(top, frame, 8)
    L.set_gpr(5, frame)
    L.set_gpr(4, L.op("sub", 64, top, str(size)))
