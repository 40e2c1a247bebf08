"""Decoding and block splitting: where blocks end, what their successors are, and what happens
at bytes that do not decode or at the end of executable memory."""
from __future__ import annotations

import random

import capstone

from translator.conformance import assemble
from runtime.memory import GuestMemory
from translator import Translator
from translator.decoder import MAX_BLOCK_INSNS, Decoder, disassemble
from translator.state import PERM_R, PERM_W, PERM_X

BASE = 0x400000


def fetcher(code: bytes):
    def fetch(addr, n):
        off = addr - BASE
        return code[off:off + n] if 0 <= off < len(code) else b""
    return fetch


def block_of(text: str, **kw):
    code = assemble(text, BASE)
    return Decoder().decode_block(fetcher(code), BASE, **kw), code


def test_block_ends_at_conditional_branch_with_two_successors():
    b, code = block_of("add rax, 1; cmp rax, 10; jne 0x400000; nop; nop")
    assert [i.mnemonic for i in b.insns] == ["add", "cmp", "jne"]
    assert b.successors() == [BASE, b.end]


def test_block_ends_at_syscall_and_continues_after_it():
    b, _ = block_of("mov eax, 60; syscall; nop")
    assert [i.mnemonic for i in b.insns] == ["mov", "syscall"]
    assert b.insns[-1].rule.name == "syscall"
    assert b.successors() == [b.end]


def test_call_has_target_and_return_address_ret_has_none():
    b, _ = block_of("call 0x400100; nop")
    assert b.successors() == [BASE + 0x100, BASE + 5]
    b, _ = block_of("ret")
    assert b.successors() == []
    b, _ = block_of("jmp rax")
    assert b.successors() == []


def test_fault_rules_have_no_successor():
    for text in ("ud2", "hlt", "int3"):
        b, _ = block_of(f"nop; {text}; nop")
        assert b.insns[-1].rule.action == "fault", text
        assert b.successors() == []


def test_length_limit():
    b, _ = block_of("; ".join(["inc rax"] * (MAX_BLOCK_INSNS + 10)))
    assert len(b.insns) == MAX_BLOCK_INSNS
    assert b.successors() == [b.end]
    b, _ = block_of("inc rax; inc rax; inc rax", max_insns=2)
    assert len(b.insns) == 2


def test_invalid_bytes_become_a_sigill_pseudo_instruction():
    code = assemble("nop", BASE) + bytes([0x0F, 0x0B - 0x0B + 0x04]) + bytes(32)   # 0f 04: invalid
    b = Decoder().decode_block(fetcher(code), BASE)
    assert b.insns[0].mnemonic == "nop"
    assert b.insns[1].invalid and b.insns[1].rule.signal == 4


def test_instruction_crossing_into_non_executable_memory_faults_on_fetch():
    code = assemble("nop; mov rax, 0x1122334455667788", BASE)
    b = Decoder().decode_block(fetcher(code[:5]), BASE)      # mov cut off by the end of memory
    assert [i.mnemonic for i in b.insns] == ["nop"]
    assert b.fetch_fault == BASE + 5
    b = Decoder().decode_block(fetcher(b""), BASE)
    assert b.insns == [] and b.fetch_fault == BASE


def test_prefixes_are_split_from_the_mnemonic():
    (i,) = disassemble(bytes.fromhex("f348ab"), 0)
    assert i.mnemonic == "stosq" and i.rep == 0xF3
    assert "rep stosq" in i.describe()


def test_register_operands_map_to_state_slots():
    (i,) = disassemble(assemble("add ah, bl"), 0)
    d, s = i.ops
    assert (d.reg, d.size, d.high) == (0, 1, True)
    assert (s.reg, s.size, s.high) == (3, 1, False)
    (i,) = disassemble(assemble("add sil, r9b"), 0)    # with REX, byte 6 is sil, not dh
    assert [(o.reg, o.high) for o in i.ops] == [(6, False), (9, False)]
    (i,) = disassemble(assemble("mov eax, dword ptr fs:[rbx + rcx*4 + 8]"), 0)
    m = i.ops[1]
    assert (m.base, m.index, m.scale, m.disp, m.seg) == (3, 1, 4, 8, "fs")


def test_region_follows_direct_branches():
    mem = GuestMemory()
    code = assemble("cmp rax, 1; je 0x400020; inc rax; jmp 0x400030", BASE).ljust(0x20, b"\x90")
    code += assemble("dec rax; ret", BASE + 0x20).ljust(0x10, b"\x90")
    code += assemble("ret", BASE + 0x30)
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    mem.poke(BASE, code)
    blocks = Translator(mem.fetch).decode_region(BASE)
    assert blocks[0].start == BASE
    starts = {b.start for b in blocks}
    assert {BASE, BASE + 0x20, BASE + 0x30} <= starts


def test_random_bytes_never_crash_the_translator():
    """Decode, lift and compile random byte strings: every outcome is a block (possibly with
    an invalid or unsupported instruction), never an exception."""
    rng = random.Random(1234)
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    mem.map(BASE + 0x1000, 0x1000, PERM_R | PERM_W)
    tr = Translator(mem.fetch)
    for _ in range(40):
        mem.poke(BASE, bytes(rng.getrandbits(8) for _ in range(0x1000)))
        blocks = [tr.decoder.decode_block(mem.fetch, BASE + rng.randrange(0, 0xF00))
                  for _ in range(8)]
        tr.compile_blocks(blocks)
    assert tr.stats.blocks == 320


def test_decoder_reads_capstone_records_at_the_offsets_of_its_package():
    """The decoder opens capstone's library without importing its Python package: the record
    offsets, constants and register ids it uses are those of the package (this version)."""
    from capstone import x86 as cx86
    from translator import decoder as d
    assert d._LAYOUT == d._mirror_layout(capstone)
    if capstone.cs_version()[:2] == (5, 0):
        assert d.LAYOUT_5_0 == d._mirror_layout(capstone)
    assert (d.CS_ARCH_X86, d.CS_MODE_64, d.CS_OPT_DETAIL, d.CS_OPT_ON) == (
        capstone.CS_ARCH_X86, capstone.CS_MODE_64, capstone.CS_OPT_DETAIL, capstone.CS_OPT_ON)
    assert (d.CS_GRP_JUMP, d.CS_GRP_CALL, d.CS_GRP_RET, d.CS_GRP_IRET) == (
        capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL, capstone.CS_GRP_RET, capstone.CS_GRP_IRET)
    assert (d.X86_OP_REG, d.X86_OP_IMM, d.X86_OP_MEM) == (
        cx86.X86_OP_REG, cx86.X86_OP_IMM, cx86.X86_OP_MEM)
    assert (d.RIP, min(d.XMMS), min(d.STS), min(d.MMS)) == (
        cx86.X86_REG_RIP, cx86.X86_REG_XMM0, cx86.X86_REG_ST0, cx86.X86_REG_MM0)
    assert {cx86.X86_REG_RAX, cx86.X86_REG_AH, cx86.X86_REG_R15B} <= set(d.REGS)


def test_capstone_groups_used_for_control_flow_are_stable():
    (j,) = disassemble(assemble("jmp 0x10"), 0)
    assert capstone.CS_GRP_JUMP in j.groups


def test_prefixed_transfers_and_operand_nops_decode_to_semantics():
    """Forms compilers and libcs emit: nops with memory operands (never accessed), rep/bnd
    returns and branches, notrack indirect jumps, rdssp (a nop without shadow stacks)."""
    from translator.semantics import SEMANTICS
    cases = {"0f1f440000": "nop", "662e0f1f840000000000": "nop", "0f1f00": "nop",
             "0f18240400000000": "nop", "f3c3": "ret", "f2c3": "ret", "f2ffe0": "jmp",
             "3effe0": "jmp", "3eff24c500000000": "jmp", "f2e800000000": "call",
             "f3480f1ec8": "rdsspq", "f30f1ec8": "rdsspd", "f30f1efa": "endbr64", "d7": "xlatb",
             "c8100002": "enter", "f2ae": "scasb", "f3a6": "cmpsb", "f3480fbdc1": "lzcnt",
             "f30fbcc1": "tzcnt", "f30fb8c1": "popcnt", "480fa4c203": "shld", "480fadc2": "shrd",
             "d0d0": "rcl", "48d3d8": "rcr"}
    for hexcode, mnemonic in cases.items():
        insn = disassemble(bytes.fromhex(hexcode), BASE)[0]
        assert insn.mnemonic == mnemonic, hexcode
        assert mnemonic in SEMANTICS and not insn.bad_operands and insn.rule is None, hexcode
    assert disassemble(bytes.fromhex("f2ae"), BASE)[0].rep == 0xF2
    assert disassemble(bytes.fromhex("f3a6"), BASE)[0].rep == 0xF3


def test_undefined_forms_are_left_unsupported():
    """bswap of a 16-bit register is undefined, and 16-bit enter is not translated: the block
    stops there with an UNSUPPORTED exit instead of guessing."""
    from translator.lifter import Lifter
    from translator.state import Exit
    for hexcode in ("660fc9", "66c8100000"):
        code = bytes.fromhex("4801c8" + hexcode)       # add rax, rcx first
        block = Decoder().decode_block(fetcher(code), BASE)
        text, _ = Lifter().lift(block, "f")
        assert f"store i64 {BASE + 3}, ptr %p_rip" in text and f"ret i32 {Exit.UNSUPPORTED}" in text


def test_records_read_directly_match_capstones_own_python_objects(built_guests):
    """The decoder reads capstone's C records at the offsets of capstone's ctypes mirrors; the
    reference is capstone's Python binding on the same bytes: every instruction of a libc
    program's text, field by field."""
    from elftools.elf.elffile import ELFFile
    from translator.decoder import REGS, RIP, XMMS
    with open(built_guests / "libcmix-glibc", "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        code, base = text.data()[:200_000], text["sh_addr"]
    ours = disassemble(code, base)
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cs.detail = True
    theirs = list(cs.disasm(code, base))
    assert len(ours) == len(theirs) > 20_000
    for a, b in zip(ours, theirs):
        assert (a.address, a.size, a.raw, a.op_str) == (b.address, b.size, bytes(b.bytes),
                                                        b.op_str)
        assert b.mnemonic.endswith(a.mnemonic) and a.groups == tuple(b.groups)
        if a.bad_operands:
            continue
        assert len(a.ops) == len(b.operands)
        for o, c in zip(a.ops, b.operands):
            if c.type == capstone.x86.X86_OP_IMM:
                assert (o.kind, o.imm, o.size) == ("imm", c.imm, c.size)
            elif c.type == capstone.x86.X86_OP_MEM:
                base_reg = "rip" if c.mem.base == RIP else REGS[c.mem.base][0] if c.mem.base else None
                assert (o.kind, o.size, o.base, o.scale, o.disp) == (
                    "mem", c.size, base_reg, c.mem.scale, c.mem.disp)
            elif c.reg in XMMS:
                assert (o.kind, o.reg) == ("xmm", XMMS[c.reg])


def test_blocks_end_where_capstone_says_control_leaves(built_guests):
    """decode_block's own loop (translator/decoder.py, _Stream.block) against capstone's
    Python binding: from every seventh instruction of a libc program's text, a block holds
    the instructions capstone decodes from there, up to and including the first that jumps,
    calls or returns (its groups) or that a rewrite rule ends a block at (syscall), or the
    length limit."""
    from elftools.elf.elffile import ELFFile
    from translator import rewrite
    with open(built_guests / "libcmix-glibc", "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        code, base = text.data()[:60_000], text["sh_addr"]
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cs.detail = True
    starts = [i.address for i in cs.disasm(code, base)][::7]
    leaves = {capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL, capstone.CS_GRP_RET,
              capstone.CS_GRP_IRET}
    fetch = lambda a, n: code[a - base:a - base + n] if base <= a < base + len(code) else b""
    checked = 0
    for limit in (MAX_BLOCK_INSNS, 3):
        for start in starts[:-20]:
            block = Decoder().decode_block(fetch, start, limit)
            want = []
            for c in cs.disasm(code[start - base:start - base + 15 * limit], start):
                want.append(c)
                rule = rewrite.RULES.get(c.mnemonic.split()[-1])
                if leaves & set(c.groups) or rule is not None and rule.ends_block \
                        or len(want) == limit:
                    break
            assert [(i.address, i.size, i.op_str) for i in block.insns] == \
                [(c.address, c.size, c.op_str) for c in want], hex(start)
            checked += 1
    assert checked > 3000
