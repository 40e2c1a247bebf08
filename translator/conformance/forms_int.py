"""The integer instruction forms: every form jitbt implements, from tables (mnemonic x operand
kind x width), with their input vectors (remill-style tables of inputs; the flags the manual
leaves undefined are compared separately).

Inputs are edge values (0, 1, -1, sign boundaries, alternating bits) crossed with each other, plus
seeded random values (zlib.crc32 of the form text); upper register bits are random so
partial-register writes are checked too. A case is ``(form, operand slots)``::

    host, jit = HostCPU(), JitCPU()
    for case in ALL_FORMS:
        result = check(host, jit, case)        # harness.Result: vectors, mismatches, ...
"""
from __future__ import annotations

import random
import zlib

from .harness import Form, HostCPU, JitCPU, Result, WholeBlock, check_form, random_flags
from .hostcpu import GPR_NAMES

FAMILY = "integer"
MIN_VECTORS = 10

W = (8, 16, 32, 64)
PTR = {8: "byte", 16: "word", 32: "dword", 64: "qword", 128: "xmmword"}
MEM = "{ptr} ptr [rbx + 8]"
MEM_OFFSET = 8
# operand register pairs (dst, src) per width; rbx is the memory base, rsp is never used
PAIRS = {64: [("rcx", "rdx"), ("r9", "r14")], 32: [("ecx", "edx"), ("r9d", "r14d")],
         16: [("cx", "dx"), ("r9w", "r14w")], 8: [("cl", "dl"), ("r9b", "sil")]}
FULL = {}
for _r64, _names in (("rax", "eax ax al ah"), ("rcx", "ecx cx cl ch"), ("rdx", "edx dx dl dh"),
                     ("rbx", "ebx bx bl bh"), ("rsi", "esi si sil"), ("rdi", "edi di dil"),
                     ("rbp", "ebp bp bpl")):
    FULL[_r64] = _r64
    for _n in _names.split():
        FULL[_n] = _r64
for _i in range(8, 16):
    for _s in ("", "d", "w", "b"):
        FULL[f"r{_i}{_s}"] = f"r{_i}"
IMMS = {8: ["0x7f", "-1", "0x5a"], 16: ["0x7fff", "-2", "0x1234"], 32: ["0x7fffffff", "-3", "0x12345678"],
        64: ["0x7fffffff", "-4", "0x12345678"]}


def edges(bits: int) -> list[int]:
    m = (1 << bits) - 1
    s = 1 << (bits - 1)
    return [0, 1, 2, m, m - 1, s, s - 1, s + 1, m // 3, (m // 3) << 1]


def forms() -> list[tuple[Form, list]]:
    """(form, operand slots). A slot is (reg name, bits), ("mem", bits) or ("imm", bits)."""
    out = []

    def add(text, mnemonic, *slots, inputs="alu"):
        out.append((Form(text, mnemonic, inputs), list(slots)))

    for m in ("add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"):
        for w in W:
            mem = MEM.format(ptr=PTR[w])
            for d, s in PAIRS[w]:
                add(f"{m} {d}, {s}", m, (d, w), (s, w))
            d, s = PAIRS[w][0]
            for imm in IMMS[w][:2]:
                add(f"{m} {d}, {imm}", m, (d, w))
            if m != "test":
                add(f"{m} {d}, {mem}", m, (d, w), ("mem", w))
            add(f"{m} {mem}, {s}", m, ("mem", w), (s, w))
            add(f"{m} {mem}, {IMMS[w][2]}", m, ("mem", w))
        add(f"{m} ah, ch", m, ("ah", 8), ("ch", 8))
    for m in ("inc", "dec", "neg", "not"):
        for w in W:
            d = PAIRS[w][1][0]
            add(f"{m} {d}", m, (d, w))
            add(f"{m} {MEM.format(ptr=PTR[w])}", m, ("mem", w))
        add(f"{m} dh", m, ("dh", 8))
    for m in ("shl", "shr", "sar", "rol", "ror"):
        for w in W:
            d = PAIRS[w][0][0] if PAIRS[w][0][0] not in ("cl",) else "dl"
            d = {"rcx": "rdx", "ecx": "edx", "cx": "dx"}.get(d, d)
            add(f"{m} {d}, 1", m, (d, w), inputs="shift1")
            for n in (3, w - 1, w + 1):
                add(f"{m} {d}, {n}", m, (d, w), inputs=f"shift{n}")
            add(f"{m} {d}, cl", m, (d, w), ("cl", 8), inputs="shiftcl")
            add(f"{m} {MEM.format(ptr=PTR[w])}, cl", m, ("mem", w), ("cl", 8), inputs="shiftcl")
    for m in ("mul", "imul", "div", "idiv"):
        for w in W:
            s = {8: "r9b", 16: "r9w", 32: "r9d", 64: "r9"}[w]
            kind = "div" if "div" in m else "alu"
            add(f"{m} {s}", m, ("rax", w), (s, w), inputs=kind + str(w))
            add(f"{m} {MEM.format(ptr=PTR[w])}", m, ("rax", w), ("mem", w), inputs=kind + str(w))
    for w in (16, 32, 64):
        (d, s), (d2, s2) = PAIRS[w]
        add(f"imul {d}, {s}", "imul", (d, w), (s, w))
        add(f"imul {d2}, {MEM.format(ptr=PTR[w])}", "imul", (d2, w), ("mem", w))
        add(f"imul {d}, {s}, {IMMS[w][0]}", "imul", (s, w))
        add(f"imul {d2}, {s2}, -7", "imul", (s2, w))
    for w in W:
        (d, s), _ = PAIRS[w]
        mem = MEM.format(ptr=PTR[w])
        add(f"mov {d}, {s}", "mov", (s, w))
        add(f"mov {d}, {IMMS[w][2]}", "mov", (d, w))
        add(f"mov {d}, {mem}", "mov", ("mem", w))
        add(f"mov {mem}, {s}", "mov", (s, w))
        add(f"mov {mem}, {IMMS[w][1]}", "mov", ("mem", w))
        add(f"xchg {d}, {s}", "xchg", (d, w), (s, w))
        add(f"xchg {mem}, {s}", "xchg", ("mem", w), (s, w))
    add("movabs rcx, 0x123456789abcdef0", "movabs")
    add("mov ah, dl", "mov", ("dl", 8))
    add("mov dh, ch", "mov", ("ch", 8))
    for dw, sw in ((16, 8), (32, 8), (32, 16), (64, 8), (64, 16)):
        d = PAIRS[dw][0][0]
        s = PAIRS[sw][1][1]
        for m in ("movzx", "movsx"):
            add(f"{m} {d}, {s}", m, (s, sw))
            add(f"{m} {d}, {MEM.format(ptr=PTR[sw])}", m, ("mem", sw))
    add("movzx ecx, ah", "movzx", ("ah", 8))
    add("movsx edx, bh", "movsx", ("bh", 8))
    add("movsxd rcx, edx", "movsxd", ("edx", 32))
    add("movsxd rcx, dword ptr [rbx + 8]", "movsxd", ("mem", 32))
    add("lea rcx, [rdx + rsi*4 + 8]", "lea", ("rdx", 64), ("rsi", 64))
    add("lea ecx, [rdx + rsi*2 - 3]", "lea", ("rdx", 64), ("rsi", 64))
    add("lea cx, [rdx + rdi + 0x7fff]", "lea", ("rdx", 64), ("rdi", 64))
    add("lea r10, [r11*8]", "lea", ("r11", 64))
    add("bswap ecx", "bswap", ("ecx", 32))
    add("bswap r9", "bswap", ("r9", 64))
    for cc in ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"):
        add(f"cmov{cc} ecx, edx", "cmov" + cc, ("ecx", 32), ("edx", 32), inputs="flags")
        add(f"cmov{cc} r9, qword ptr [rbx + 8]", "cmov" + cc, ("r9", 64), ("mem", 64), inputs="flags")
        add(f"set{cc} cl", "set" + cc, inputs="flags")
    add("cmovne cx, dx", "cmovne", ("cx", 16), ("dx", 16), inputs="flags")
    add("setb byte ptr [rbx + 8]", "setb", ("mem", 8), inputs="flags")
    for m in ("bt", "bts", "btr", "btc"):
        for w in (16, 32, 64):
            (d, s), _ = PAIRS[w]
            add(f"{m} {d}, {s}", m, (d, w), (s, w), inputs="bitpos")
            add(f"{m} {d}, 5", m, (d, w))
            add(f"{m} {MEM.format(ptr=PTR[w])}, {w - 3}", m, ("mem", w))
            add(f"{m} {MEM.format(ptr=PTR[w])}, {s}", m, ("mem", w), (s, w), inputs="bitstring")
    for m in ("bsf", "bsr"):
        for w in (16, 32, 64):
            (d, s), _ = PAIRS[w]
            add(f"{m} {d}, {s}", m, (d, w), (s, w))
            add(f"{m} {d}, {MEM.format(ptr=PTR[w])}", m, (d, w), ("mem", w))
    for m in ("cbw", "cwde", "cdqe", "cwd", "cdq", "cqo"):
        add(m, m, ("rax", 64), ("rdx", 64))
    for m in ("lahf", "sahf", "clc", "stc", "cmc", "nop"):
        add(m, m, ("rax", 64), inputs="flags")
    for m in ("cmpxchg", "xadd"):
        for w in W:
            (d, s), (d2, s2) = PAIRS[w]
            add(f"{m} {d}, {s}", m, ("rax", w), (d, w), (s, w), inputs="cmpxchg")
            add(f"{m} {MEM.format(ptr=PTR[w])}, {s2}", m, ("rax", w), ("mem", w), (s2, w),
                inputs="cmpxchg")
    for m, w in (("cmpxchg8b", 64), ("cmpxchg16b", 128)):
        out.append((Form(f"{m} {PTR.get(w, 'xmmword')} ptr [rdi + 16]", m, f"pair{w}",
                         pointers=("rdi",)), []))
    for kind in ("stos", "movs", "lods"):
        for suffix in "bwdq":
            for rep in ("", "rep "):
                m = kind + suffix
                # keystone takes plain "movsd" for the SSE instruction: spell the string one out
                text = rep + ("movs dword ptr [rdi], dword ptr [rsi]" if m == "movsd" else m)
                out.append((Form(text, m, "string", pointers=("rsi", "rdi")), []))
    for kind in ("scas", "cmps"):
        for suffix in "bwdq":
            for rep in ("", "repe ", "repne "):
                pointers = ("rsi", "rdi") if kind == "cmps" else ("rdi",)
                out.append((Form(rep + kind + suffix, kind + suffix, "compare", pointers), []))
    out += more_forms()
    return out


SHD = {16: ("dx", "r14w"), 32: ("edx", "r14d"), 64: ("rdx", "r14")}   # never cl: cl counts


def more_forms() -> list[tuple[Form, list]]:
    """Double shifts, rotates through carry, bit counts, the rarer operand sizes and frames."""
    out = []

    def add(text, mnemonic, *slots, inputs="alu", pointers=()):
        out.append((Form(text, mnemonic, inputs, pointers), list(slots)))

    for m in ("shld", "shrd"):
        for w in (16, 32, 64):
            d, s = SHD[w]
            mem = MEM.format(ptr=PTR[w])
            # 16-bit counts above 16 are undefined: the immediates stay at or below 16 here
            # (test_shift_double_undefined_counts runs the others).
            for n in (1, 3, w - 1 if w > 16 else 16, 0, w + 1 if w > 16 else 33):
                add(f"{m} {d}, {s}, {n}", m, (d, w), (s, w), inputs="alu")
            add(f"{m} {d}, {s}, cl", m, (d, w), (s, w), ("cl", 8), inputs="shiftd")
            add(f"{m} {mem}, {s}, 7", m, ("mem", w), (s, w))
            add(f"{m} {mem}, {s}, cl", m, ("mem", w), (s, w), ("cl", 8), inputs="shiftd")
    for m in ("rcl", "rcr"):
        for w in W:
            d = {8: "dl", 16: "dx", 32: "edx", 64: "r10"}[w]
            add(f"{m} {d}, 1", m, (d, w), inputs="shift1")
            for n in sorted({3, 9, 10, 17, w - 1, w + 1}):
                add(f"{m} {d}, {n}", m, (d, w), inputs=f"shift{n}")
            add(f"{m} {d}, cl", m, (d, w), ("cl", 8), inputs="shiftcl")
            add(f"{m} {MEM.format(ptr=PTR[w])}, cl", m, ("mem", w), ("cl", 8), inputs="shiftcl")
            add(f"{m} {MEM.format(ptr=PTR[w])}, 1", m, ("mem", w), inputs="shift1")
        add(f"{m} ah, cl", m, ("ah", 8), ("cl", 8), inputs="shiftcl")
    for m in ("popcnt", "lzcnt"):
        for w in (16, 32, 64):
            (d, s), _ = PAIRS[w]
            add(f"{m} {d}, {s}", m, (d, w), (s, w), inputs="sparse")
            add(f"{m} {d}, {MEM.format(ptr=PTR[w])}", m, (d, w), ("mem", w), inputs="sparse")
    # the 16-bit and memory forms of the conditional moves and sets
    for cc in ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le",
               "g"):
        add(f"cmov{cc} dx, word ptr [rbx + 8]", "cmov" + cc, ("dx", 16), ("mem", 16),
            inputs="flags")
        add(f"cmov{cc} r9w, r14w", "cmov" + cc, ("r9w", 16), ("r14w", 16), inputs="flags")
        add(f"set{cc} byte ptr [rbx + 8]", "set" + cc, ("mem", 8), inputs="flags")
    # push and pop at every operand size, as pairs (the stack must balance on the host); the
    # slot the pair used is cleared after, since the jitbt stack lies in the compared buffer
    clear = "; mov qword ptr [rsp - 8], 0"
    for text in ("push cx; pop dx", "push rcx; pop r9", "push r14w; pop r9w",
                 "push word ptr [rbx + 8]; pop word ptr [rbx + 16]",
                 "push qword ptr [rbx + 8]; pop qword ptr [rbx + 24]",
                 "push -1; pop rcx", "push 0x12345678; pop rdx",
                 "push -0x80; pop dx; pop dx; pop dx; pop dx",
                 ".byte 0x66, 0x68, 0x34, 0x12; pop cx",
                 "push rsp; pop rcx; sub rcx, rsp", "push rcx; pop qword ptr [rsp - 8]"):
        mnemonic = "push"
        add(text + clear, mnemonic, inputs="alu", pointers=("rbx",))
    for w in (16, 32, 64):
        r = {16: "r9w", 32: "r9d", 64: "r9"}[w]
        add(f"xchg {MEM.format(ptr=PTR[w])}, {r}", "xchg", ("mem", w), (r, w))
    add("xlatb", "xlatb", inputs="xlat", pointers=("rbx",))
    add("nop dword ptr [rax + rax]", "nop", inputs="flags")
    add("nop word ptr [r9 + 8]", "nop", inputs="flags")
    for size, level in ((0, 0), (16, 0), (0x1238, 0), (8, 1), (24, 2), (32, 3), (0, 5), (8, 33)):
        out.append((Form(enter_sequence(size, level), "enter", "frame", ("rbp",)), []))
    return out


def enter_sequence(size: int, level: int) -> str:
    """enter, then read back what it built relative to rbp (the frame's addresses differ between
    the CPUs, their differences do not), leave, and clear the stack slots it used."""
    level &= 31
    text = [f"enter {size}, {level}", "mov rcx, rsp", "sub rcx, rbp", "mov rdi, qword ptr [rbp]"]
    if level:
        text += [f"mov rsi, qword ptr [rbp - {8 * level}]", "sub rsi, rbp"]
    if level > 1:
        text += ["mov rdx, qword ptr [rbp - 8]", f"mov r8, qword ptr [rbp - {8 * (level - 1)}]"]
    text += ["leave", "sub rdi, rbp"]
    text += [f"mov qword ptr [rsp - {8 * k}], 0" for k in range(1, level + 2)]
    return "; ".join(text)


def vectors(form: Form, slots, seed: int):
    """Input vectors: edge values for the operand slots, random everything else."""
    rng = random.Random(seed)
    kind = form.inputs
    out = []

    def base():
        regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
        for p in form.pointers:      # offsets into the buffer (the memory operand is [rbx + 8])
            regs[p] = 0
        return regs, random_flags(rng), bytearray(rng.getrandbits(8) for _ in range(64))

    def put(regs, mem, slot, value):
        name, bits = slot
        value &= (1 << bits) - 1
        if name == "mem":
            mem[MEM_OFFSET:MEM_OFFSET + bits // 8] = value.to_bytes(bits // 8, "little")
        else:
            full = FULL[name]
            shift = 8 if name in ("ah", "bh", "ch", "dh") else 0
            keep = regs[full] & ~(((1 << bits) - 1) << shift)
            regs[full] = keep | (value << shift)

    slot_bits = [s[1] for s in slots] or [64]
    e = [edges(b) for b in slot_bits]
    combos = []
    if len(slots) >= 2:
        combos = [(a, b) for a in e[0] for b in e[1]]
    elif slots:
        combos = [(a,) for a in e[0]]
    combos += [tuple(rng.getrandbits(b) for b in slot_bits) for _ in range(24)]
    if kind.startswith("shift"):
        bits = slots[0][1]
        combos = [(a, c) for a in e[0][:6] for c in list(range(0, bits + 3)) + [63, 64, 65, 255]]
    if kind == "shiftd":         # dst, src, count: 16-bit counts above 16 are left out (undefined)
        bits = slots[0][1]
        counts = [c for c in list(range(0, bits + 3)) + [63, 64, 65, 255]
                  if bits != 16 or c & 31 <= 16]
        combos = [(a, b, c) for a, b in zip(e[0][:6], e[1][3:9]) for c in counts]
        combos += [(rng.getrandbits(bits), rng.getrandbits(bits), rng.choice(counts))
                   for _ in range(64)]
    if kind == "sparse":         # bit counts: few bits set, single bits, zero
        bits = slot_bits[-1]
        combos += [(rng.getrandbits(bits), 1 << rng.randrange(bits)) for _ in range(16)]
        combos += [(rng.getrandbits(bits), rng.getrandbits(bits) & rng.getrandbits(bits)
                    & rng.getrandbits(bits)) for _ in range(16)]
        combos += [(rng.getrandbits(bits), 0)]
    for combo in combos:
        regs, flags, mem = base()
        for slot, value in zip(slots, combo):
            put(regs, mem, slot, value)
        if kind == "bitpos":
            pass
        elif kind == "bitstring":    # keep the addressed bit inside the 64-byte buffer
            put(regs, mem, slots[1], rng.randrange(-64, 400))
        elif kind.startswith("div"):
            w = int(kind[3:])
            if rng.random() < 0.8:   # mostly dividends whose quotient fits
                d = combo[1] & ((1 << w) - 1) or 1
                hi = rng.randrange(0, d) if w > 8 else 0
                if w == 8:
                    regs["rax"] = (regs["rax"] & ~0xFFFF) | (rng.randrange(0, d << 8) & 0xFFFF)
                else:
                    put(regs, mem, (FULL_OF[w]["rdx"], w), hi)
        out.append((regs, flags, bytes(mem)))
    if kind == "cmpxchg":        # half the vectors make accumulator and destination equal
        for i, (regs, flags, mem) in enumerate(out):
            if i % 2:
                mem = bytearray(mem)
                put(regs, mem, slots[1], regs["rax"])
                out[i] = (regs, flags, bytes(mem))
    if kind.startswith("pair"):      # cmpxchg8b/16b: [rdi+16] equal to rdx:rax half the time
        w = int(kind[4:]) // 2
        out = []
        for i in range(32):
            regs, flags, mem = base()
            mem = bytearray(mem)
            if i % 2:
                lo, hi = regs["rax"] & ((1 << w) - 1), regs["rdx"] & ((1 << w) - 1)
                mem[16:16 + 2 * w // 8] = (lo | hi << w).to_bytes(2 * w // 8, "little")
            out.append((regs, flags, bytes(mem)))
    if kind == "string":        # rsi/rdi are offsets into the 4 KiB buffer; both directions
        out = []
        for i in range(24):
            regs, _, mem = base()
            regs["rsi"], regs["rdi"] = 512 + rng.randrange(0, 256), 1536 + rng.randrange(0, 256)
            regs["rcx"] = i % 6
            flags = random_flags(rng) | ((i & 1) << 10)
            out.append((regs, flags, bytes(mem)))
    if kind == "compare":
        out = [compare_vector(rng, form, i) for i in range(48)]
    if kind == "xlat":
        out = []
        for i in range(32):
            regs, flags, _ = base()
            regs["rbx"] = rng.randrange(0, 1024)
            if i < 4:
                regs["rax"] = (regs["rax"] & ~0xFF) | (0, 1, 0x7F, 0xFF)[i]
            out.append((regs, flags, bytes(rng.getrandbits(8) for _ in range(1300))))
    if kind == "frame":          # rbp points into the buffer: enter copies the frames above it
        out = []
        for i in range(12):
            regs, flags, _ = base()
            regs["rbp"] = 1024 + 8 * rng.randrange(0, 32)
            out.append((regs, flags, bytes(rng.getrandbits(8) for _ in range(1536))))
    if kind == "flags":
        out = []
        for v in range(0, 1 << 7):      # every combination of the six status flags and DF=0
            regs, _, mem = base()
            flags = sum(((v >> i) & 1) << b for i, b in enumerate((0, 2, 4, 6, 7, 11)))
            out.append((regs, flags, bytes(mem)))
    return out


FULL_OF = {w: {"rdx": {8: "dl", 16: "dx", 32: "edx", 64: "rdx"}[w]} for w in W}
STRINGS = 512, 1536       # where scas/cmps read: rsi, rdi (rdi = rsi + 1024)
STRING_SPAN = 1024


def compare_vector(rng, form: Form, i: int):
    """scas/cmps inputs: two 1 KiB regions, the second a copy of the first (cmps) or a run of
    accumulator values (scas), with differences at random places, so repe and repne loops stop
    early, late or when rcx runs out; both directions; rcx from 0 to 40."""
    size = {"b": 1, "w": 2, "d": 4, "q": 8}[form.mnemonic[-1]]
    regs = {n: rng.getrandbits(64) for n in GPR_NAMES if n != "rsp"}
    mem = bytearray(STRINGS[1] + STRING_SPAN)
    equal = rng.choice((0.05, 0.5, 0.9, 1.0))
    if i % 4 == 0:
        regs["rax"] &= ~((1 << 8 * size) - 1)     # strlen: the accumulator 0
    acc = regs["rax"] & ((1 << 8 * size) - 1)
    first = bytes(rng.getrandbits(8) for _ in range(STRING_SPAN))
    mem[STRINGS[0]:STRINGS[0] + STRING_SPAN] = first
    for k in range(0, STRING_SPAN, size):
        if form.mnemonic.startswith("cmps"):
            same = first[k:k + size]
        else:
            same = acc.to_bytes(size, "little")
        other = bytes(rng.getrandbits(8) for _ in range(size))
        mem[STRINGS[1] + k:STRINGS[1] + k + size] = same if rng.random() < equal else other
    mid = STRING_SPAN // 2 + size * rng.randrange(-4, 4)
    regs["rsi"], regs["rdi"] = STRINGS[0] + mid, STRINGS[1] + mid
    regs["rcx"] = (0, 1, 2, 40)[i % 4] if i < 8 else rng.randrange(0, 41)
    flags = random_flags(rng) | ((i >> 1 & 1) << 10)
    return regs, flags, bytes(mem)


def div_predicate(form: Form, slots):
    """'fault' for inputs that raise #DE: zero divisor or a quotient that does not fit."""
    w = slots[1][1]
    signed = form.text.startswith("idiv")
    mask = (1 << w) - 1

    def sx(v, bits):
        v &= (1 << bits) - 1
        return v - (1 << bits) if v >> (bits - 1) else v

    def pred(regs):
        if slots[1][0] == "mem":
            return None    # decided inside check via memory: handled by the caller's vectors
        d = regs[FULL[slots[1][0]]] & mask
        if w == 8:
            n = regs["rax"] & 0xFFFF
            nb = 16
        else:
            n = ((regs["rdx"] & mask) << w) | (regs["rax"] & mask)
            nb = 2 * w
        if d == 0:
            return "fault"
        if signed:
            a, b = sx(n, nb), sx(d, w)
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            return "fault" if not -(1 << (w - 1)) <= q < (1 << (w - 1)) else None
        return "fault" if n // d > mask else None
    return pred


def shift_defined(form: Form, slots):
    """OF is defined for a shift or rotate whose masked count is 1."""
    text = form.text
    bits = slots[0][1]
    mask = 63 if bits == 64 else 31
    if text.endswith(", cl"):
        return lambda regs: ("of",) if (regs["rcx"] & mask) == 1 else ()
    count = int(text.rsplit(",", 1)[1]) & mask
    return lambda regs: ("of",) if count == 1 else ()


ALL_FORMS = forms()


def _mem_divisor_safe(form, slots, vecs):
    """For div forms with a memory divisor, make the divisor and dividend safe (no native #DE)."""
    w = slots[1][1]
    out = []
    for regs, flags, mem in vecs:
        mem = bytearray(mem)
        d = int.from_bytes(mem[MEM_OFFSET:MEM_OFFSET + w // 8], "little") | 1
        mem[MEM_OFFSET:MEM_OFFSET + w // 8] = d.to_bytes(w // 8, "little")
        mask = (1 << w) - 1
        if w == 8:
            regs["rax"] &= ~0xFF00
        else:
            regs["rdx"] &= ~mask
        regs["rax"] &= ~(1 << (w - 1)) if w > 8 else ~0x80
        out.append((regs, flags, bytes(mem)))
    return out


SHIFTS = ("shl", "shr", "sar", "rol", "ror", "rcl", "rcr", "shld", "shrd")


def form_of(case) -> Form:
    return case[0]


def check(host: HostCPU, jit: JitCPU, case) -> Result:
    """Run one case of ALL_FORMS on both CPUs: sequences ("a; b") as one block, division inputs
    that fault natively checked to fault under jitbt, OF of one-bit shifts as defined."""
    form, slots = case
    if "; " in form.text:
        jit = WholeBlock(jit)
    vecs = vectors(form, slots, seed=zlib.crc32(form.text.encode()))
    predicate = defined = None
    if form.mnemonic in ("div", "idiv"):
        if slots[1][0] == "mem":
            vecs = _mem_divisor_safe(form, slots, vecs)
        else:
            predicate = div_predicate(form, slots)
    if form.mnemonic in SHIFTS:
        defined = shift_defined(form, slots)
    return check_form(host, jit, form, vecs, predicate, defined)
