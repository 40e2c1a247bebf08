"""The interpreter's handlers as LLVM IR: each lifted from an instruction of its shape by the
semantics compiled code uses (translator/semantics), with the numbers a record carries read
from the record (translator/interp.py describes records, shapes and handlers; handlers.py
builds and keeps the library). Apart from interp.py, so that a run that builds no handler does
not import the lifter::

    text, used = handler_text(lifter, insn, static=False, name="h0")
    module = library_text([(text, used), (special_text(END, "h1"), set())], "table")
"""
from __future__ import annotations

from .interp import END, RECORD, W_ADDR, W_DISP, W_NEXT, W_OPS
from .irbuilder import IRBuilder, IRValue, const
from .lifter import FunctionLifter, Lifter, _Retry, module_text
from .runtime_ir import BLOCK_CC, FUNCTION_ARGS
from .state import SIGSEGV, Exit, field_index


# ---- handlers ----------------------------------------------------------------------------------
class _Opaque:
    """An instruction's bytes, to a semantic lifted for a shape: any use is a TypeError, so the
    shape is lifted per encoding instead."""
    __slots__ = ()

    def _refuse(self, *args):
        raise TypeError("an instruction's bytes are not part of its shape")

    __getitem__ = __iter__ = __len__ = __contains__ = index = hex = _refuse


class HandlerInsn:
    """What a handler is lifted from: an instruction whose address (and, for a shape, whose
    operands' numbers) are IR values read from the record."""

    def __init__(self, insn, static: bool):
        self.address = IRValue("%r.addr")
        self.next = IRValue("%r.next")
        self.mnemonic, self.op_str, self.rep, self.lock = (insn.mnemonic, insn.op_str,
                                                           insn.rep, insn.lock)
        self.groups, self.rule, self.invalid = insn.groups, insn.rule, insn.invalid
        self.bad_operands = insn.bad_operands
        from .decoder import CS_GRP_CALL, CS_GRP_JUMP     # (a warm run may never decode)
        branch = CS_GRP_JUMP in insn.groups or CS_GRP_CALL in insn.groups
        if static:
            self.raw = insn.raw
            # A relative branch's target is the record's, whatever the encoding says.
            self.ops = [_dynamic(op, i) if branch and op.kind == "imm" else op
                        for i, op in enumerate(insn.ops)]
        else:
            self.raw = _Opaque()
            self.ops = [_dynamic(op, i) for i, op in enumerate(insn.ops)]

    def describe(self) -> str:
        return f"handler for {self.mnemonic}"


def _dynamic(op, i: int):
    """The operand with its numbers replaced by the record's (IR values of the handler)."""
    from .decoder import Operand
    w = IRValue(f"%r.o{i}")
    if op.kind == "imm":
        return Operand("imm", op.size, imm=w)
    if op.kind == "mem":
        base = None if op.base is None else "rip" if op.base == "rip" else IRValue(f"%o{i}.base")
        index = None if op.index is None else IRValue(f"%o{i}.index")
        return Operand("mem", op.size, base=base, index=index, scale=IRValue(f"%o{i}.sh"),
                       disp=IRValue("%r.disp"), seg=op.seg)
    return Operand(op.kind, op.size, reg=w, high=op.high)


class _Unit:
    """The one-instruction block a handler is lifted as: it ends in the next record."""

    def __init__(self, insn):
        self.insns = [insn]
        self.start = insn.address
        self.fetch_fault = None

    end = END
    jump_slot = None
    indirect_jump = False

    def successors(self) -> list:
        return []


class HandlerLifter(FunctionLifter):
    """FunctionLifter for one handler: IR for -O2 (checks and flags written out, no register
    caching: two operands may name one register), operands read from the record, and the
    end of the instruction a tail call of the next record's handler."""

    def __init__(self, lifter: Lifter, insn: HandlerInsn, name: str, stops: dict):
        super().__init__(lifter, [_Unit(insn)], stops, region=False, chain=False, name=name)
        self.quick = False
        self.cache_gprs = False          # (two operands' register numbers may be one register)
        self.b = IRBuilder()
        for word, name_ in ((W_ADDR, "addr"), (W_NEXT, "next"), (W_DISP, "disp"),
                            *((W_OPS + i, f"o{i}") for i in range(len(insn.ops)))):
            self.entry += [f"  %r.{name_}.p = getelementptr i8, ptr %data, i64 {8 * word}",
                           f"  %r.{name_} = load i64, ptr %r.{name_}.p"]
        for i, op in enumerate(insn.ops):
            if op.kind == "mem" and isinstance(op.scale, IRValue):
                self.entry += [f"  %o{i}.base = and i64 %r.o{i}, 255",
                               f"  %o{i}.x = lshr i64 %r.o{i}, 8",
                               f"  %o{i}.index = and i64 %o{i}.x, 255",
                               f"  %o{i}.sh = lshr i64 %r.o{i}, 16"]

    def ea(self, op) -> str:
        b = self.b
        self.near_sp, self.site_key = False, None
        parts = []
        if op.base == "rip":
            parts.append(IRValue("%r.disp"))      # the record holds the absolute address
        else:
            if op.base is not None:
                parts.append(self.get_gpr(op.base))
            if op.index is not None:
                idx = self.get_gpr(op.index)
                if isinstance(op.scale, IRValue):
                    idx = b.emit(f"shl i64 {idx}, {op.scale}")
                elif op.scale != 1:
                    idx = b.emit(f"shl i64 {idx}, {op.scale.bit_length() - 1}")
                parts.append(idx)
            if isinstance(op.disp, IRValue) or op.disp:
                parts.append(const(op.disp, 64))
        if op.seg:
            parts.append(b.emit(f"load i64, ptr {self.ptr(op.seg + '_base')}"))
        if not parts:
            return "0"
        v = parts[0]
        for p in parts[1:]:
            v = b.emit(f"add i64 {v}, {p}")
        return v

    def read(self, op, bits: int | None = None) -> str:
        if op.kind == "imm" and isinstance(op.imm, IRValue):
            bits = bits or op.size * 8
            return op.imm if bits == 64 else self.b.emit(f"trunc i64 {op.imm} to i{bits}")
        return super().read(op, bits)

    def goto(self, address) -> None:
        if address is not END:
            super().goto(address)
            return
        b = self.b
        nxt = b.emit(f"getelementptr i8, ptr %data, i64 {RECORD}")
        fn = b.emit(f"load ptr, ptr {nxt}")
        r = b.emit(f"musttail call {BLOCK_CC} i32 {fn}(ptr %st, ptr %mem, ptr %perm, ptr {nxt})")
        b.stmt(f"ret i32 {r}")


def handler_text(lifter: Lifter, insn, static: bool, name: str) -> tuple[str, set]:
    """The IR of the handler `name` of the instruction's shape (`static`: of its encoding), and
    the intrinsics it uses. Raises TypeError when the semantic needs numbers the shape lacks."""
    h = HandlerInsn(insn, static)
    stops: dict[int, int] = {}
    while True:
        fn = HandlerLifter(lifter, h, name, stops)
        try:
            body = fn.sync_exits(fn.run() + "\n")
        except _Retry as r:           # the semantic gave up: the handler exits UNSUPPORTED
            stops[0] = r.where[1]
            continue
        return (f"define internal {BLOCK_CC} i32 @{name}({FUNCTION_ARGS}) nounwind {{\nentry:\n"
                + "\n".join(fn.entry) + "\n" + body + "}\n"), fn.b.intrinsics


def special_text(kind: str, name: str) -> str:
    """The handlers of the record after a block's instructions (END, FETCH_FAULT)."""
    head = (f"define internal {BLOCK_CC} i32 @{name}({FUNCTION_ARGS}) nounwind {{\n"
            f"  %a.p = getelementptr i8, ptr %data, i64 {8 * W_ADDR}\n"
            f"  %a = load i64, ptr %a.p\n")
    if kind == END:
        return (head + f"  %rip = getelementptr %State, ptr %st, i64 0, i32 {field_index('rip')}\n"
                f"  store i64 %a, ptr %rip\n  ret i32 {Exit.CONTINUE}\n}}\n")
    return head + (f"  %r = call i32 @fault(ptr %st, i64 %a, i64 %a, i32 {SIGSEGV})\n"
                   f"  ret i32 %r\n}}\n")


def library_text(handlers: list[tuple[str, set]], table: str) -> str:
    """A module of handler functions (texts defining @h0, @h1, ...) and the table of their
    addresses, `@table`, the one symbol it exports."""
    texts = [t for t, _ in handlers]
    used = set().union(*(u for _, u in handlers)) if handlers else set()
    n = len(texts)
    entries = ", ".join(f"ptr @h{i}" for i in range(n))
    table_def = f"@{table} = constant [{n} x ptr] [{entries}]\n"
    return module_text(texts + [table_def], used)
