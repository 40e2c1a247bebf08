"""The interpreter: the tier that runs new code first, without compiling it.

Compiling a block costs far more than running it a few times: with LLVM's cheapest pipeline a
small block costs about half a millisecond, and most of the code a program runs, runs once or
a few times (glibc's start-up and printf: of the 1,519 blocks a cold hello world compiled,
775 never ran and 598 ran once). So new code is interpreted: a block is decoded into
*records*, one per instruction, each naming a *handler*, and runs at once; a block that keeps
running is compiled later (translator/__init__.py, ``warm_up``).

A handler is compiled once for an instruction *shape*: the mnemonic, its prefixes and the kinds
and widths of its operands (``shape_key``). The registers, immediates, displacements and the
instruction's address are read from the record when it runs, so one handler serves every
``add r64, r64`` of every program. Handlers are lifted by the same semantics as compiled code
(translator/semantics), by ``HandlerLifter`` (translator/handler_ir.py), which hands them
operands whose numbers are IR values read from the record (irbuilder.IRValue). Shifts,
rotates and the SSE shifts and shuffles take an immediate count or selector as such a value
(one handler for every ``shr r64, imm8``: a program's new encodings need no new handler). A
semantic that needs a number in Python (an x87 register's index, a comparison's predicate,
bytes of the encoding) refuses such a value with a TypeError; its shapes are then lifted per
encoding (``static_key``), the instruction's bytes fixed and only its address read from the
record.

A record is eight 64-bit words::

    0 handler   1 address   2 next address   3-6 operands 0-3   7 displacement

An operand word holds a register's number, an immediate (a branch's target), or a memory
operand's base | index << 8 | log2(scale) << 16; word 7 is its displacement, or for a
rip-relative operand the absolute address. Each handler does its instruction and tail-calls the
next record's handler (``musttail``, the translated functions' calling convention, so the stack
does not grow); the one that ends the block stores the next rip and returns to the dispatcher,
as a compiled block does. A fault, a syscall or any other exit leaves the same way, with the
state exact at the instruction (every defined flag is computed: the flag model is precise).

The dispatcher calls a block's first handler with its records as the fourth argument (the
lookup table keeps them beside the function)::

    lib = HandlerLibrary(codegen, knobs)          # translator/handlers.py: handlers on disk
    t = interpret(lib, block)                     # a Translation, or None if a shape is missing
"""
from __future__ import annotations

import ctypes
import struct

from .cache import Translation

WORDS = 8
RECORD = 8 * WORDS
W_FN, W_ADDR, W_NEXT, W_OPS, W_DISP = 0, 1, 2, 3, 7
MAX_OPS = 4
MASK = (1 << 64) - 1

END = "end"                  # the record after a block's last instruction: rip = its address
FETCH_FAULT = "fetch-fault"  # ... when the bytes there cannot be fetched: SIGSEGV
UNSUPPORTED = "unsupported"  # an instruction with no semantics, or operands it cannot take

_PREFIX = {0xF3: "rep ", 0xF2: "repne "}


# ---- shapes ------------------------------------------------------------------------------------
def _operand(op) -> tuple[str, int]:
    """An operand's part of a shape key, and its record word."""
    kind = op.kind
    if kind == "reg":
        return f"r{op.size}{'h' if op.high else ''}", op.reg
    if kind == "imm":
        return f"i{op.size}", op.imm & MASK
    if kind == "mem":
        base = "" if op.base is None else "@" if op.base == "rip" else "b"
        index = "" if op.index is None else "i"
        word = ((op.base if isinstance(op.base, int) else 0) | (op.index or 0) << 8
                | (op.scale.bit_length() - 1) << 16)
        return f"m{op.size}{base}{index}{op.seg or ''}", word
    return kind, op.reg          # xmm, mm, st


_OPERANDS: dict[int, tuple] = {}    # id(op) -> (op, key part, word): decoded Operands are shared


def _op(op) -> tuple:
    e = _OPERANDS.get(id(op))
    if e is None or e[0] is not op:
        if len(_OPERANDS) >= 1 << 16:
            _OPERANDS.clear()
        e = _OPERANDS[id(op)] = (op, *_operand(op))
    return e


def shape_key(insn, known: bool = False) -> str:
    """What a handler of this instruction is compiled for: everything but the numbers a record
    carries (registers, immediates, displacement, address). `known`: the caller looks the key
    up among handlers built before, which exist only for instructions the semantics cover, so
    whether they do is not asked (that imports every instruction family: 6-8 ms of a run that
    interprets everything and compiles nothing, such as hello world's)."""
    if insn.rule is not None:
        return f"rule {insn.rule.name}"
    if insn.bad_operands or not known and insn.mnemonic not in _semantics():
        return UNSUPPORTED
    return shape_words(insn)[0]


def _semantics():
    from .lifter import semantics     # (the lifter's import: a run that lifts nothing skips it)
    return semantics()


def shape_words(insn) -> tuple[str, list]:
    """The shape key of an instruction without a rule and with operands the translator takes
    (shape_key's for those), and words 1-7 of its record (word 0 is its handler), in one pass
    over the operands: the interpreter makes both for every instruction a run decodes."""
    nxt = insn.address + insn.size
    words = [insn.address, nxt, 0, 0, 0, 0, 0]
    head = (insn.rep, insn.lock, insn.mnemonic)
    parts = [_HEADS.get(head) or _HEADS.setdefault(
        head, _PREFIX.get(insn.rep, "") + ("lock " if insn.lock else "") + insn.mnemonic)]
    get = _OPERANDS.get
    for i, op in enumerate(insn.ops):
        e = get(id(op))
        if e is None or e[0] is not op:
            e = _op(op)
        parts.append(e[1])
        if i < MAX_OPS:
            words[2 + i] = e[2]
            if op.kind == "mem":
                words[6] = ((nxt + op.disp) if op.base == "rip" else op.disp) & MASK
    return " ".join(parts), words


_HEADS: dict[tuple, str] = {}         # (rep, lock, mnemonic) -> a shape key's first word


def static_key(insn) -> str:
    """The key of a handler for this very encoding (a semantic that reads numbers in Python)."""
    return f"= {insn.mnemonic} {insn.raw.hex()}"


def is_static_key(key: str) -> bool:
    return key.startswith("= ")


# ---- records -----------------------------------------------------------------------------------
_RECORD = struct.Struct(f"<{WORDS}Q")


def interpret(library, block, keys: list | None = None) -> Translation | None:
    """The interpreted translation of a decoded block, or None when a handler it needs is not
    in `library` yet (asked for: see HandlerLibrary.want). `keys`, when given, gets the handler
    key of each record (what the records kept between runs name their handlers by)."""
    insns = block.insns
    key_of, handler = library.key_of, library.handler
    handlers, words = [], []
    if keys is None:
        keys = []
    for insn in insns:                              # (every missing handler is wanted)
        key, w = shape_words(insn)
        key = key_of(insn, key if insn.rule is None and not insn.bad_operands else None)
        keys.append(key)
        handlers.append(handler(insn, key))
        words.append(w)
    last = block.fetch_fault if block.fetch_fault is not None else block.end
    keys.append(FETCH_FAULT if block.fetch_fault is not None else END)
    handlers.append(library.special(keys[-1]))
    if None in handlers:
        return None
    buf = ctypes.create_string_buffer(len(handlers) * RECORD)
    pack = _RECORD.pack_into
    for i, w in enumerate(words):
        pack(buf, i * RECORD, handlers[i], *w)
    pack(buf, len(insns) * RECORD, handlers[-1], last, last, 0, 0, 0, 0, 0)
    first = _RECORD.unpack_from(buf, 0)[0]
    return Translation(block.start, max(block.end, block.start + 1), first, len(insns),
                       "interp", False, (), ctypes.addressof(buf), buf)
