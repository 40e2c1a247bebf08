"""Data movement and bit instructions: mov and its extensions, lea, xchg, xlatb, sign extensions
of the accumulator, push and pop, setcc, cmovcc, bswap, bt family, bsf/bsr, flag moves, and the
nops (with any operands: ``nop dword ptr [rax + rax]`` touches no memory)."""
from . import ALL_FLAGS, cc_reads, semantic, with_cc


@semantic("mov", "movabs")
def mov(L, insn):
    dst, src = insn.ops
    L.write(dst, L.read(src, dst.size * 8))


@semantic("movzx", "movsx", "movsxd")
def movx(L, insn):
    dst, src = insn.ops
    kind = "zext" if insn.mnemonic == "movzx" else "sext"
    L.write(dst, L.cast(kind, L.read(src), src.size * 8, dst.size * 8))


@semantic("lea")
def lea(L, insn):
    dst, src = insn.ops
    L.write(dst, L.cast("trunc", L.ea(src), 64, dst.size * 8))


@semantic("xchg")
def xchg(L, insn):
    x, y = insn.ops
    a, c = L.read(x), L.read(y)
    L.write(x, c)
    L.write(y, a)


@semantic("cbw", "cwde", "cdqe")
def widen_acc(L, insn):
    size = {"cbw": 2, "cwde": 4, "cdqe": 8}[insn.mnemonic]
    L.set_gpr(0, L.cast("sext", L.get_gpr(0, size // 2), size * 4, size * 8), size)


@semantic("cwd", "cdq", "cqo")
def sign_acc(L, insn):
    size = {"cwd": 2, "cdq": 4, "cqo": 8}[insn.mnemonic]
    bits = size * 8
    L.set_gpr(2, L.op("ashr", bits, L.get_gpr(0, size), str(bits - 1)), size)


@semantic("push")
def push(L, insn):
    (src,) = insn.ops
    L.push(L.read(src, src.size * 8), src.size)


@semantic("pop")
def pop(L, insn):
    (dst,) = insn.ops
    L.write(dst, L.pop(dst.size))


@semantic(*with_cc("set"), reads=cc_reads("set"))
def setcc(L, insn):
    L.write(insn.ops[0], L.b.emit(f"zext i1 {L.cond(insn.mnemonic[3:])} to i8"))


@semantic(*with_cc("cmov"), reads=cc_reads("cmov"))
def cmovcc(L, insn):
    dst, src = insn.ops
    bits = dst.size * 8
    c = L.cond(insn.mnemonic[4:])
    # The source is read (and may fault) and a 32-bit destination is zero-extended either way.
    L.write(dst, L.select(c, bits, L.read(src), L.read(dst)))


@semantic("bswap")
def bswap(L, insn):
    (dst,) = insn.ops
    bits = dst.size * 8
    if bits == 16:      # undefined by the manual (Intel zeroes, others differ): not translated
        from ..lifter import Unsupported     # the lifter imports the semantics: import late
        raise Unsupported("16-bit bswap")
    L.b.use(f"bswap{bits}")
    L.write(dst, L.b.emit(f"call i{bits} @llvm.bswap.i{bits}(i{bits} {L.read(dst)})"))


@semantic("bt", "bts", "btr", "btc", writes="cf", undefined="of sf af pf")
def bt(L, insn):
    dst, src = insn.ops
    bits = dst.size * 8
    if dst.kind == "mem" and src.kind == "reg":
        # A register offset addresses a bit string: it may reach outside the operand.
        off = L.cast("sext", L.read(src), src.size * 8, 64)
        addr = L.op("add", 64, L.ea(dst), L.op("shl", 64, L.op("ashr", 64, off, str(bits.bit_length() - 1)),
                                                  str(dst.size.bit_length() - 1)))
        pos = L.cast("trunc", off, 64, bits) if bits < 64 else off
        pos = L.op("and", bits, pos, str(bits - 1))
        value = L.load(addr, dst.size)
    else:
        addr = None
        pos = L.op("and", bits, L.cast("zext", L.read(src, bits), src.size * 8, bits)
                   if src.kind != "imm" else L.read(src, bits), str(bits - 1))
        value = L.read(dst)
    mask = L.op("shl", bits, "1", pos)
    L.set_flag("cf", L.icmp("ne", bits, L.op("and", bits, value, mask), "0"))
    m = insn.mnemonic
    if m == "bt":
        return
    if m == "bts":
        new = L.op("or", bits, value, mask)
    elif m == "btr":
        new = L.op("and", bits, value, L.op("xor", bits, mask, "-1"))
    else:
        new = L.op("xor", bits, value, mask)
    if addr is None:
        L.write(dst, new)
    else:
        L.store(addr, new, dst.size)


@semantic("bsf", "bsr", writes="zf", undefined="cf of sf af pf")
def bitscan(L, insn, kind=None):
    """bsf/bsr; `kind` names the scan when another mnemonic executes as one (tzcnt, bits.py)."""
    kind = kind or insn.mnemonic
    dst, src = insn.ops
    bits = dst.size * 8
    v = L.read(src)
    zero = L.icmp("eq", bits, v, "0")
    L.set_flag("zf", zero)
    fn = "cttz" if kind == "bsf" else "ctlz"
    L.b.use(f"{fn}{bits}")
    n = L.b.emit(f"call i{bits} @llvm.{fn}.i{bits}(i{bits} {v}, i1 false)")
    if kind == "bsr":
        n = L.op("sub", bits, str(bits - 1), n)
    # Undefined flags, as Intel sets them: CF OF SF AF clear, PF from the index found (from 0 for
    # a zero source, so set then).
    L.set_undefined("cf of sf af", "0")
    L.set_undefined("pf", lambda: L.parity(L.select(zero, bits, "0", n), bits))
    # A zero source leaves the destination as it was (what AMD documents and Intel does) --
    # all 64 bits of it: a 32-bit destination is not zero-extended then.
    if bits == 32:
        full = L.select(zero, 64, L.get_gpr(dst.reg), L.cast("zext", n, 32, 64))
        L.set_gpr(dst.reg, full)
    else:
        L.write(dst, L.select(zero, bits, L.read(dst), n))


FLAG_ORDER = (("cf", 0), ("pf", 2), ("af", 4), ("zf", 6), ("sf", 7), ("df", 10), ("of", 11))


def _pack_flags(L, names):
    v = "0"
    for name, bit in FLAG_ORDER:
        if name in names:
            f = L.cast("zext", L.get_flag(name), 1, 64)
            v = L.op("or", 64, v, L.op("shl", 64, f, str(bit)) if bit else f)
    return v


@semantic("pushfq", "pushf", reads=ALL_FLAGS)
def pushf(L, insn):
    size = 2 if insn.mnemonic == "pushf" else 8
    v = L.op("or", 64, _pack_flags(L, "cf pf af zf sf df of"), str(0x202))
    L.push(L.cast("trunc", v, 64, size * 8), size)


@semantic("popfq", "popf", writes="cf pf af zf sf df of")
def popf(L, insn):
    size = 2 if insn.mnemonic == "popf" else 8
    v = L.cast("zext", L.pop(size), size * 8, 64)
    for name, bit in FLAG_ORDER:
        L.set_flag(name, L.bit(v, 64, bit))


@semantic("lahf", reads="cf pf af zf sf")
def lahf(L, insn):
    v = L.op("or", 64, _pack_flags(L, "cf pf af zf sf"), "2")
    L.set_gpr(0, L.cast("trunc", v, 64, 8), 1, high=True)


@semantic("sahf", writes="cf pf af zf sf")
def sahf(L, insn):
    ah = L.get_gpr(0, 1, high=True)
    for name, bit in FLAG_ORDER[:5]:
        L.set_flag(name, L.bit(ah, 8, bit))


@semantic("clc", "stc", "cmc", "cld", "std", writes=lambda m: "df" if m in ("cld", "std") else "cf",
          reads=lambda m: "cf" if m == "cmc" else "")
def flag_ops(L, insn):
    m = insn.mnemonic
    if m == "cmc":
        L.set_flag("cf", L.b.emit(f"xor i1 {L.get_flag('cf')}, true"))
    else:
        L.set_flag("cf" if m[2] == "c" else "df", "1" if m[1] == "t" else "0")


@semantic("xlatb")
def xlat(L, insn):
    """al = [rbx + al] (a segment prefix adds fs/gs; a 32-bit address size wraps at 4 GiB)."""
    prefixes = insn.raw[:-1].lstrip(bytes(range(0x40, 0x50)))     # drop a REX prefix
    addr = L.op("add", 64, L.get_gpr(3), L.cast("zext", L.get_gpr(0, 1), 8, 64))
    if 0x67 in prefixes:
        addr = L.cast("zext", L.cast("trunc", addr, 64, 32), 32, 64)
    for byte, seg in ((0x64, "fs"), (0x65, "gs")):
        if byte in prefixes:
            addr = L.op("add", 64, addr, L.b.emit(f"load i64, ptr {L.ptr(seg + '_base')}"))
    L.set_gpr(0, L.load(addr, 1), 1)


# rdssp reads the shadow stack pointer; with shadow stacks off (the model claims no CET) it is a
# nop that leaves its register as it was, which is what glibc tests for.
@semantic("nop", "endbr64", "endbr32", "rdsspd", "rdsspq", "pause", "prefetch", "prefetchw",
          "prefetcht0", "prefetcht1", "prefetcht2", "prefetchnta", "lfence", "mfence", "sfence")
def nop(L, insn):
    """No architectural effect for a single-threaded user-mode guest."""
