"""Self-tests for the native reference runner (translator/conformance/hostcpu.py).

These are the only tests with hand-derived expectations; each comes straight
from the Intel SDM definition of the instruction.
"""

import struct
import time

import capstone
import pytest

from translator.conformance import hostcpu as _hostcpu
from translator.conformance.hostcpu import (FLAG_BITS, FLAG_MASK, GPR_NAMES, HostCPU, assemble,
                                            fxsave_image)

M64 = (1 << 64) - 1
CF, PF, AF, ZF, SF, DF, OF = (1 << FLAG_BITS[f] for f in
                              ("CF", "PF", "AF", "ZF", "SF", "DF", "OF"))
NON_RSP = tuple(n for n in GPR_NAMES if n != "rsp")


@pytest.fixture(scope="module")
def hc():
    return HostCPU()


def run_asm(hc, text, regs=None, rflags=0, mem=None):
    hc.prepare(assemble(text))
    return hc.run(regs or {}, rflags, mem)


def _disasm(code):
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return [f"{i.mnemonic} {i.op_str}".strip() for i in md.disasm(code, 0)]


def test_stubs_assemble_as_intended():
    # Guard against keystone mis-encoding the glue: the capstone listing of
    # the generated stubs must match the source lines exactly.
    pro, epi = _hostcpu._stubs()
    for code, src in ((pro, _hostcpu._prologue_asm()),
                      (epi, _hostcpu._epilogue_asm())):
        got = _disasm(code)
        assert sum(len(assemble(line)) for line in src.splitlines()) == len(code)
        assert len(got) == len(src.splitlines())
    assert _disasm(pro)[-1] == "mov rdi, qword ptr [rdi + 0x38]"
    assert _disasm(pro)[7:9] == ["push qword ptr [rdi + 0x80]", "popfq"]
    assert _disasm(epi)[:3] == ["pushfq", "push rax", "mov rax, qword ptr [rsp + 0x10]"]
    assert _disasm(epi)[-8:] == ["cld", "pop r15", "pop r14", "pop r13",
                                 "pop r12", "pop rbp", "pop rbx", "ret"]


def test_add_wraps_and_sets_flags(hc):
    regs, fl, _ = run_asm(hc, "add rax, rbx", {"rax": M64, "rbx": 1})
    assert regs["rax"] == 0
    assert regs["rbx"] == 1
    # 0xFF..FF + 1 = 0 with carry out of bit 63 and bit 3; result low byte 0
    # has even parity; no signed overflow (-1 + 1).
    assert fl == CF | PF | AF | ZF


def test_add_signed_overflow(hc):
    regs, fl, _ = run_asm(hc, "add rax, rbx", {"rax": 1 << 62, "rbx": 1 << 62})
    assert regs["rax"] == 1 << 63
    assert fl == SF | OF | PF  # low byte 0x00 -> even parity


def test_mov_copies(hc):
    regs, fl, _ = run_asm(hc, "mov rcx, rdx",
                          {"rcx": 5, "rdx": 0x0123456789ABCDEF}, rflags=CF | ZF)
    assert regs["rcx"] == regs["rdx"] == 0x0123456789ABCDEF
    assert fl == CF | ZF  # mov affects no flags


def test_xor32_zero_extends_and_sets_zf(hc):
    regs, fl, _ = run_asm(hc, "xor eax, eax", {"rax": M64}, rflags=CF | OF | SF)
    assert regs["rax"] == 0
    # XOR clears CF and OF, sets SF/ZF/PF from result; AF undefined.
    assert fl & ~AF == ZF | PF


def test_32bit_write_zero_extends(hc):
    regs, _, _ = run_asm(hc, "mov ecx, edx", {"rcx": M64, "rdx": 0xFFFFFFFF_80000001})
    assert regs["rcx"] == 0x80000001


def test_stc_clc(hc):
    _, fl, _ = run_asm(hc, "stc")
    assert fl == CF
    _, fl, _ = run_asm(hc, "clc", rflags=FLAG_MASK)
    assert fl == FLAG_MASK & ~CF


def test_std_cld_and_df_input(hc):
    _, fl, _ = run_asm(hc, "std")
    assert fl == DF
    _, fl, _ = run_asm(hc, "cld", rflags=DF | CF)
    assert fl == CF
    # DF given as input is visible to the instruction (and reported back).
    _, fl, _ = run_asm(hc, "nop", rflags=DF)
    assert fl == DF
    # ... and does not leak: a following run starts from what it is given.
    _, fl, _ = run_asm(hc, "nop", rflags=0)
    assert fl == 0


def test_df_steers_string_op(hc):
    base = hc.mem_address + 64
    regs, _, _ = run_asm(hc, "lodsb", {"rsi": base}, rflags=DF)
    assert regs["rsi"] == base - 1
    regs, _, _ = run_asm(hc, "lodsb", {"rsi": base}, rflags=0)
    assert regs["rsi"] == base + 1


def test_all_input_flags_round_trip(hc):
    hc.prepare(assemble("nop"))
    for name, bit in FLAG_BITS.items():
        _, fl, _ = hc.run({}, 1 << bit)
        assert fl == 1 << bit, name
    _, fl, _ = hc.run({}, FLAG_MASK)
    assert fl == FLAG_MASK
    # Bits outside FLAG_BITS are ignored on input (TF here would be fatal).
    _, fl, _ = hc.run({}, ~FLAG_MASK & M64)
    assert fl == 0


def test_memory_add(hc):
    mem = bytearray(hc.mem_size)
    struct.pack_into("<Q", mem, 16, 0x1000)
    regs, fl, out = run_asm(hc, "add qword ptr [rbx], rax",
                            {"rbx": hc.mem_address + 16, "rax": 0x234}, mem=bytes(mem))
    assert len(out) == hc.mem_size
    assert struct.unpack_from("<Q", out, 16)[0] == 0x1234
    assert out[:16] == bytes(16) and out[24:] == bytes(hc.mem_size - 24)
    assert regs["rbx"] == hc.mem_address + 16 and regs["rax"] == 0x234
    assert fl == 0  # 0x1234: low byte 0x34 has odd parity, no carries


def test_memory_load(hc):
    mem = struct.pack("<Q", 0xDEADBEEFCAFEF00D)
    regs, _, out = run_asm(hc, "mov rdx, qword ptr [rsi]",
                           {"rsi": hc.mem_address}, mem=mem)
    assert regs["rdx"] == 0xDEADBEEFCAFEF00D
    assert out[:8] == mem


def test_mem_address_page_aligned(hc):
    assert hc.mem_address % 4096 == 0


def test_all_registers_round_trip_through_nop(hc):
    regs = {n: (0x1111111111111111 * (i + 1)) & M64 ^ (i << 60)
            for i, n in enumerate(NON_RSP)}
    regs["r15"] = M64
    out, fl, _ = run_asm(hc, "nop", regs, rflags=CF | SF)
    assert out == regs
    assert set(out) == set(NON_RSP) and len(out) == 15
    assert fl == CF | SF


def test_missing_registers_default_to_zero(hc):
    run_asm(hc, "nop", {n: M64 for n in NON_RSP})
    out, _, _ = run_asm(hc, "nop", {"rax": 7})
    assert out == {n: (7 if n == "rax" else 0) for n in NON_RSP}


def test_multiple_instructions(hc):
    out, fl, _ = run_asm(hc, "mov rax, 10; sub rax, 11; inc rcx", {"rcx": 1})
    assert out["rax"] == M64 and out["rcx"] == 2
    # inc leaves CF from sub (borrow=1); result 2 -> PF=0, no AF
    assert fl == CF


def test_rejects_bad_input(hc):
    hc.prepare(assemble("nop"))
    with pytest.raises(ValueError):
        hc.run({"rsp": 0}, 0)
    with pytest.raises(ValueError):
        hc.run({"rax": -1}, 0)
    with pytest.raises(ValueError):
        hc.run({"rax": 1 << 64}, 0)
    with pytest.raises(ValueError):
        hc.run({"eax": 1}, 0)
    with pytest.raises(ValueError):
        hc.run({}, 0, bytes(hc.mem_size + 1))


def test_run_is_cheap():
    hc = HostCPU()
    hc.prepare(assemble("add rax, rbx"))
    mem = bytes(hc.mem_size)
    t0 = time.perf_counter()
    for i in range(10000):
        out, fl, _ = hc.run({"rax": i, "rbx": 1}, 0, mem)
    elapsed = time.perf_counter() - t0
    assert out["rax"] == 10000
    assert elapsed < 2.0, f"10000 runs took {elapsed:.2f}s"


# ---- SSE state (run_full) ---------------------------------------------------------------------

XMM_VALUES = {i: (0x0123456789ABCDEF_FEDCBA9876543210 * (i + 1) ^ (i << 120)) & ((1 << 128) - 1)
              for i in range(16)}


def test_xmm_and_mxcsr_round_trip_through_nop(hc):
    hc.prepare(assemble("nop"))
    regs, fl, _, xmm, mxcsr = hc.run_full({"rax": 5}, CF, None, XMM_VALUES, 0x7F80)
    assert xmm == XMM_VALUES
    assert mxcsr == 0x7F80          # round toward zero, all exceptions masked
    assert regs["rax"] == 5 and fl == CF
    # run() starts from zeroed xmm registers and the default MXCSR.
    _, _, _, xmm, mxcsr = hc.run_full({}, 0)
    assert xmm == {i: 0 for i in range(16)} and mxcsr == 0x1F80


def test_sse_instruction_sees_and_sets_state(hc):
    # paddq: 64-bit lanes add independently (SDM PADDQ).
    hc.prepare(assemble("paddq xmm3, xmm12"))
    a = (1 << 64) | ((1 << 64) - 1)
    c = (5 << 64) | 1
    _, _, _, xmm, _ = hc.run_full({}, 0, None, {3: a, 12: c})
    assert xmm[3] == 6 << 64 and xmm[12] == c


def test_mxcsr_rounding_control_is_honoured_and_host_mxcsr_restored(hc):
    # cvtsd2si rounds by MXCSR.RC: 2.5 -> 2 (nearest even), 2 (down), 3 (up), 2 (toward zero).
    hc.prepare(assemble("cvtsd2si rax, xmm0"))
    two_and_half = struct.unpack("<Q", struct.pack("<d", 2.5))[0]
    got = [hc.run_full({}, 0, None, {0: two_and_half}, 0x1F80 | rc << 13)[0]["rax"]
           for rc in (0, 1, 3, 2)]
    assert got == [2, 2, 2, 3]
    # The host's own rounding is untouched afterwards: Python's division still rounds to nearest
    # (under the last run's round-up it would give 0.33333333333333337).
    one, three = [1.0, 3.0]
    assert repr(one / three) == "0.3333333333333333"


def test_sticky_exception_flags_are_reported(hc):
    # 1.0 / 3.0 is inexact: MXCSR.PE (bit 5) becomes set.
    hc.prepare(assemble("divsd xmm0, xmm1"))
    one, three = (struct.unpack("<Q", struct.pack("<d", v))[0] for v in (1.0, 3.0))
    _, _, _, xmm, mxcsr = hc.run_full({}, 0, None, {0: one, 1: three})
    assert mxcsr == 0x1F80 | 0x20
    assert struct.unpack("<d", struct.pack("<Q", xmm[0] & M64))[0] == 1.0 / 3.0


def test_rejects_unmasked_mxcsr(hc):
    hc.prepare(assemble("nop"))
    with pytest.raises(ValueError):
        hc.run_full({}, 0, None, None, 0x1F00)    # invalid-operation exception unmasked
    with pytest.raises(ValueError):
        hc.run_full({}, 0, None, {16: 0})


def test_x87_state_in_and_out(hc):
    """run_x87 loads an FXSAVE image before the code and returns the one stored after it; the
    host's own x87 state is restored (Python's float arithmetic still works as before)."""
    one = 0x3FFF8000000000000000
    hc.prepare(assemble("fld st(0); faddp st(1), st(0)"))
    *_, fpu = hc.run_x87({}, 0, fpu=fxsave_image(sw=7 << 11, tag=0x80, st=[one]))
    assert int.from_bytes(fpu[2:4], "little") >> 11 & 7 == 7          # TOP back where it was
    assert fpu[4] == 0x80                                              # R7 valid only
    assert int.from_bytes(fpu[32:42], "little") == 0x40008000000000000000   # 2.0
    assert int.from_bytes(fpu[0:2], "little") == 0x037F
    assert repr(1 / 3) == "0.3333333333333333"
