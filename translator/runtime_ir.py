"""The IR of what translated code calls, and how translated code is called.

Every module of translated code starts with the guest state's type (``STATE_TYPE``) and may
use helpers defined here as IR text: the memory check (``check_ir``, ``CHECK_DEF``), the cold
tier's check and flag helper reached through pointers in the state (``RUNTIME_DEFS``, set up
by ``native_entry`` at both ways into translated code), and the optimising tier's access
windows (``EXTENT_DEF``, ``WINDOW_DEF``). ``BLOCK_CC`` and ``FUNCTION_ARGS`` are the calling
convention and parameters of every translated function, interpreter handlers included::

    from translator.runtime_ir import MODULE_HEADER, RUNTIME_DEFS, native_entry
    ir = MODULE_HEADER + RUNTIME_DEFS + "define i32 @enter(ptr %st) {" + native_entry("%st") ...
"""
from __future__ import annotations

from .state import (ADDRESS_LIMIT, LLVM_TYPE, PAGE_SHIFT, SIGSEGV, Exit, field_index)

STATE_TYPE = f"%State = type {LLVM_TYPE}\n"
MODULE_HEADER = STATE_TYPE + f"""
define internal i32 @fault(ptr %st, i64 %rip, i64 %addr, i32 %sig) cold noinline {{
  %p1 = getelementptr %State, ptr %st, i64 0, i32 {field_index("rip")}
  store i64 %rip, ptr %p1
  %p2 = getelementptr %State, ptr %st, i64 0, i32 {field_index("fault_addr")}
  store i64 %addr, ptr %p2
  %p3 = getelementptr %State, ptr %st, i64 0, i32 {field_index("fault_sig")}
  store i32 %sig, ptr %p3
  ret i32 {Exit.FAULT}
}}

"""

def check_ir(emit, a: str, n1, need) -> str:
    """The memory check, one definition for both uses: may the guest access bytes [a, a+n1]
    with permission bits `need`? Emits its instructions through `emit` (text -> value name)
    and returns the i1. `n1` and `need` are IR values or ints; with n1 == 0 the page of the
    last byte is the first's and is not looked up again. Out of the address space it reads
    entry 0 of the table (page 0 is never mapped), so the table is never indexed outside."""
    if isinstance(n1, int):
        oor = emit(f"icmp ugt i64 {a}, {ADDRESS_LIMIT - 1 - n1}")
    else:
        oor = emit(f"icmp ugt i64 {a}, {emit(f'sub i64 {ADDRESS_LIMIT - 1}, {n1}')}")
    perms = []
    for v in (a, emit(f"add i64 {a}, {n1}")) if n1 != 0 else (a,):
        index = emit(f"select i1 {oor}, i64 0, i64 {emit(f'lshr i64 {v}, {PAGE_SHIFT}')}")
        perms.append(emit(f"load i8, ptr {emit(f'getelementptr i8, ptr %perm, i64 {index}')}"))
    v = perms[0] if len(perms) == 1 else emit(f"and i8 {perms[0]}, {perms[1]}")
    return emit(f"icmp eq i8 {emit(f'and i8 {v}, {need}')}, {need}")


def _check_def(name: str = "chk", attributes: str = "alwaysinline") -> str:
    lines = []

    def emit(text):
        lines.append(f"  %c{len(lines)} = {text}")
        return f"%c{len(lines) - 1}"
    ok = check_ir(emit, "%a", "%n1", "%need")
    return (f"define internal i1 @{name}(ptr %perm, i64 %a, i64 %n1, i8 %need) {attributes} {{\n"
            + "\n".join(lines) + f"\n  ret i1 {ok}\n}}\n")


# @chk, inlined where the optimising tier and hle call it.
CHECK_DEF = _check_def()


def _runtime_check_def() -> str:
    """@jitbt_check(st, perm, a, n1, need, rip): the check, which on failure also writes the
    fault exit's state (rip, fault_addr, fault_sig as access_fault encodes it) itself, so that
    every failed check of a cold function branches to one shared return."""
    lines = []

    def emit(text):
        lines.append(f"  %c{len(lines)} = {text}")
        return f"%c{len(lines) - 1}"
    ok = check_ir(emit, "%a", "%n1", "%need")

    def field(name: str) -> str:
        return f"getelementptr %State, ptr %st, i64 0, i32 {field_index(name)}"
    return (f"define internal i1 @jitbt_check(ptr %st, ptr %perm, i64 %a, i64 %n1, i8 %need, "
            f"i64 %rip) noinline {{\n" + "\n".join(lines) + f"""
  br i1 {ok}, label %ok, label %bad
ok:
  ret i1 true
bad:
  %rip.p = {field("rip")}
  store i64 %rip, ptr %rip.p
  %addr.p = {field("fault_addr")}
  store i64 %a, ptr %addr.p
  %size = trunc i64 %n1 to i32
  %size8 = shl i32 %size, 8
  %need32 = zext i8 %need to i32
  %need20 = shl i32 %need32, 20
  %sig0 = or i32 %size8, %need20
  %sig = or i32 %sig0, {SIGSEGV}
  %sig.p = {field("fault_sig")}
  store i32 %sig, ptr %sig.p
  ret i1 false
}}
""")


# The cold tier calls the check instead, through the address in the state's `check` field: at
# -O0 each check written out costs a dozen instructions to select and allocate, in code that
# runs only until it turns hot. (A call to a function by name cannot be selected fast in the
# JIT's large code model; a call through a pointer can.) Both ways into translated code, the
# dispatcher and the entry trampoline, carry a copy and store its address in the state.
RUNTIME_CHECK_DEF = _runtime_check_def()

# Flag helper operations (FunctionLifter.flags_call): the operation in the bits above the width.
FLAGS_ADD, FLAGS_SUB, FLAGS_LOGIC, FLAGS_LOGIC_AF0 = 0, 1, 2, 3


def _flags_def() -> str:
    """@jitbt_flags(st, a, c, r, kind): CF OF AF ZF SF PF of `r = a op c` at width `bits`
    (kind = bits | op << 8; the operands zero-extended to i64), stored in the state as the
    inline flag code stores them: add and sub as add_with_flags and sub_with_flags set them,
    logic as flags_logic (CF = OF = 0; AF left alone, or cleared with FLAGS_LOGIC_AF0 as the
    exact flag model does). The operands are shifted left so that the width's top bit is bit
    63: then carries and the sign are 64-bit compares at every width."""
    def flag(name: str) -> str:
        return f"getelementptr %State, ptr %st, i64 0, i32 {field_index(name)}"
    return f"""define internal void @jitbt_flags(ptr %st, i64 %a, i64 %c, i64 %r, i32 %kind) noinline {{
  %bits = and i32 %kind, 255
  %op = lshr i32 %kind, 8
  %bits64 = zext i32 %bits to i64
  %s = sub i64 64, %bits64
  %as = shl i64 %a, %s
  %cs = shl i64 %c, %s
  %rs = shl i64 %r, %s
  %zf = icmp eq i64 %rs, 0
  %sf = icmp slt i64 %rs, 0
  %lo = trunc i64 %r to i8
  %hi = lshr i8 %lo, 4
  %nx = xor i8 %lo, %hi
  %nib = and i8 %nx, 15
  %nib16 = zext i8 %nib to i16
  %odd16 = lshr i16 {0x6996}, %nib16
  %odd = trunc i16 %odd16 to i1
  %pf = xor i1 %odd, true
  %zf8 = zext i1 %zf to i8
  %sf8 = zext i1 %sf to i8
  %pf8 = zext i1 %pf to i8
  %zf.p = {flag("zf")}
  store i8 %zf8, ptr %zf.p
  %sf.p = {flag("sf")}
  store i8 %sf8, ptr %sf.p
  %pf.p = {flag("pf")}
  store i8 %pf8, ptr %pf.p
  %cf.p = {flag("cf")}
  %of.p = {flag("of")}
  %af.p = {flag("af")}
  %logic = icmp uge i32 %op, {FLAGS_LOGIC}
  br i1 %logic, label %lg, label %ar
lg:
  store i8 0, ptr %cf.p
  store i8 0, ptr %of.p
  %clear = icmp eq i32 %op, {FLAGS_LOGIC_AF0}
  br i1 %clear, label %lg.af, label %done
lg.af:
  store i8 0, ptr %af.p
  br label %done
ar:
  %sub = icmp eq i32 %op, {FLAGS_SUB}
  %cf.add = icmp ult i64 %rs, %as
  %cf.sub = icmp ult i64 %as, %cs
  %cf = select i1 %sub, i1 %cf.sub, i1 %cf.add
  %x1 = xor i64 %as, %rs
  %x2.add = xor i64 %cs, %rs
  %x2.sub = xor i64 %as, %cs
  %x2 = select i1 %sub, i64 %x2.sub, i64 %x2.add
  %ov = and i64 %x1, %x2
  %of = icmp slt i64 %ov, 0
  %ax = xor i64 %a, %c
  %ax2 = xor i64 %ax, %r
  %ax4 = lshr i64 %ax2, 4
  %af = trunc i64 %ax4 to i1
  %cf8 = zext i1 %cf to i8
  %of8 = zext i1 %of to i8
  %af8 = zext i1 %af to i8
  store i8 %cf8, ptr %cf.p
  store i8 %of8, ptr %of.p
  store i8 %af8, ptr %af.p
  br label %done
done:
  ret void
}}
"""


# How far the optimising tier's access windows reach (``FunctionLifter._site_window``): the
# pages scanned each way on a site's 1st, 2nd, 3rd and later refill in one run of a function,
# and the refills a site gets before it keeps to the plain check. A loop over an array grows
# its window to the whole mapping in a few refills; a short loop pays about one check more.
WINDOW_REACH = (0, 16, 256, 4096)
WINDOW_REFILLS = 8


def _extent_def() -> str:
    """@extent(perm, a, n1, need, reach): the guest range [lo, hi) of whole pages around the
    access [a, a+n1] (which the caller has checked) in which every page grants `need`, looking
    at most `reach` pages each way. Returned as {lo, hi}."""
    last = (ADDRESS_LIMIT >> PAGE_SHIFT) - 1

    def scan(x: str, first: str, step: str, end: str, out: str) -> str:
        """A loop from page `first` (known to grant `need`) one page at a time (`step`: add or
        sub) while the next page grants it too, `reach` pages at most and never past page
        `end`; it leaves for block `out` with its last such page in %{x}.p."""
        return f"""  br label %{x}
{x}:
  %{x}.p = phi i64 [ {first}, %{x}.from ], [ %{x}.n, %{x}.has ]
  %{x}.k = {"sub i64 " + first + ", %" + x + ".p" if step == "sub" else "sub i64 %" + x + ".p, " + first}
  %{x}.far = icmp uge i64 %{x}.k, %reach
  %{x}.edge = icmp eq i64 %{x}.p, {end}
  %{x}.stop = or i1 %{x}.far, %{x}.edge
  br i1 %{x}.stop, label %{out}, label %{x}.look
{x}.look:
  %{x}.n = {step} i64 %{x}.p, 1
  %{x}.g = getelementptr i8, ptr %perm, i64 %{x}.n
  %{x}.v = load i8, ptr %{x}.g
  %{x}.m = and i8 %{x}.v, %need
  %{x}.in = icmp eq i8 %{x}.m, %need
  br i1 %{x}.in, label %{x}.has, label %{out}
{x}.has:
  br label %{x}
"""
    return f"""define internal {{i64, i64}} @extent(ptr %perm, i64 %a, i64 %n1, i8 %need, i64 %reach) noinline {{
entry:
  %p0 = lshr i64 %a, {PAGE_SHIFT}
  %e = add i64 %a, %n1
  %p1 = lshr i64 %e, {PAGE_SHIFT}
  br label %down.from
down.from:
{scan("down", "%p0", "sub", "0", "up.from")}up.from:
  %lo.page = phi i64 [ %down.p, %down ], [ %down.p, %down.look ]
{scan("up", "%p1", "add", str(last), "done")}done:
  %hi.page = phi i64 [ %up.p, %up ], [ %up.p, %up.look ]
  %lo = shl i64 %lo.page, {PAGE_SHIFT}
  %hi.next = add i64 %hi.page, 1
  %hi = shl i64 %hi.next, {PAGE_SHIFT}
  %r0 = insertvalue {{i64, i64}} undef, i64 %lo, 0
  %r1 = insertvalue {{i64, i64}} %r0, i64 %hi, 1
  ret {{i64, i64}} %r1
}}
"""


EXTENT_DEF = _extent_def()


def _reach_ir() -> str:
    """%reach0 = WINDOW_REACH[%done], its last entry for every later refill."""
    lines, later = [], str(WINDOW_REACH[-1])
    for i in range(len(WINDOW_REACH) - 2, -1, -1):
        lines += [f"  %is{i} = icmp eq i64 %done, {i}",
                  f"  %reach{i} = select i1 %is{i}, i64 {WINDOW_REACH[i]}, i64 {later}"]
        later = f"%reach{i}"
    return "\n".join(lines) + "\n"

# @jitbt_window(st, perm, g, a, n1, need): the window an access [a, a+n1] needing `need` falls
# in, as {lo, count of valid start addresses}; {0, 0} when the access faults. `g` is the site's global
# {lo, count, generation, refills}: its window when it is of this generation and holds the
# access, else a new one that reaches further than the last (WINDOW_REACH), stored back; after
# WINDOW_REFILLS in one generation, a window of this access alone.
# It is compiled once a process, in the runtime's own modules (RUNTIME_DEFS, as @jitbt_window,
# whose address native_entry stores in the state), and hot regions call it through that
# pointer: defined in every region's module, it and @extent cost each region 10-12 ms of -O2
# (a one-block region: 26 ms -> 14 ms).
WINDOW_DEF = f"""define internal preserve_mostcc {{i64, i64}} @jitbt_window(ptr %st, ptr %perm, ptr %g, i64 %a, i64 %n1, i8 %need) noinline {{
entry:
  %wgen.p = getelementptr %State, ptr %st, i64 0, i32 {field_index("wgen")}
  %wgen = load i64, ptr %wgen.p
  %g.cnt = getelementptr i64, ptr %g, i64 1
  %g.gen = getelementptr i64, ptr %g, i64 2
  %g.fills = getelementptr i64, ptr %g, i64 3
  %lo = load i64, ptr %g
  %cnt = load i64, ptr %g.cnt
  %gen = load i64, ptr %g.gen
  %fills = load i64, ptr %g.fills
  %current = icmp eq i64 %gen, %wgen
  %off = sub i64 %a, %lo
  %in = icmp ult i64 %off, %cnt
  %hit = and i1 %current, %in
  br i1 %hit, label %adopt, label %check
adopt:
  %r0 = insertvalue {{i64, i64}} undef, i64 %lo, 0
  %r1 = insertvalue {{i64, i64}} %r0, i64 %cnt, 1
  ret {{i64, i64}} %r1
check:
  %ok = call i1 @chk(ptr %perm, i64 %a, i64 %n1, i8 %need)
  br i1 %ok, label %checked, label %bad
bad:
  ret {{i64, i64}} zeroinitializer
checked:
  %done = select i1 %current, i64 %fills, i64 0
  %more = icmp ult i64 %done, {WINDOW_REFILLS}
  br i1 %more, label %fill, label %alone
alone:
  %s0 = insertvalue {{i64, i64}} undef, i64 %a, 0
  %s1 = insertvalue {{i64, i64}} %s0, i64 1, 1
  ret {{i64, i64}} %s1
fill:
""" + _reach_ir() + f"""  %range = call {{i64, i64}} @extent(ptr %perm, i64 %a, i64 %n1, i8 %need, i64 %reach0)
  %nlo = extractvalue {{i64, i64}} %range, 0
  %nhi = extractvalue {{i64, i64}} %range, 1
  %span = sub i64 %nhi, %nlo
  %ncnt = sub i64 %span, %n1
  %fills1 = add i64 %done, 1
  store i64 %nlo, ptr %g
  store i64 %ncnt, ptr %g.cnt
  store i64 %wgen, ptr %g.gen
  store i64 %fills1, ptr %g.fills
  %f0 = insertvalue {{i64, i64}} undef, i64 %nlo, 0
  %f1 = insertvalue {{i64, i64}} %f0, i64 %ncnt, 1
  ret {{i64, i64}} %f1
}}
"""

# What both ways into translated code (the dispatcher, ``Translator.entry``) define: the cold
# tier's memory check and flag helper, and the optimising tier's window search, whose
# addresses native_entry stores in the state.
RUNTIME_DEFS = RUNTIME_CHECK_DEF + _flags_def() + CHECK_DEF + EXTENT_DEF + WINDOW_DEF


def native_entry(state: str) -> str:
    """The IR lines with which each entry from the runtime into translated code (the dispatcher,
    ``enter``) begins: the state's `check`, `flagfn` and `windowfn` fields point at its
    @jitbt_check, @jitbt_flags and @jitbt_window (RUNTIME_DEFS), and a new window
    generation starts, so no access window found before (when the runtime may since have
    changed page permissions) is trusted again."""
    return (f"  %check.p = getelementptr %State, ptr {state}, i64 0, i32 {field_index('check')}\n"
            f"  store ptr @jitbt_check, ptr %check.p\n"
            f"  %flagfn.p = getelementptr %State, ptr {state}, i64 0, i32 {field_index('flagfn')}\n"
            f"  store ptr @jitbt_flags, ptr %flagfn.p\n"
            f"  %windowfn.p = getelementptr %State, ptr {state}, i64 0, i32 {field_index('windowfn')}\n"
            f"  store ptr @jitbt_window, ptr %windowfn.p\n"
            f"  %wgen.p = getelementptr %State, ptr {state}, i64 0, i32 {field_index('wgen')}\n"
            f"  %wgen.0 = load i64, ptr %wgen.p\n"
            f"  %wgen.1 = add i64 %wgen.0, 1\n"
            f"  store i64 %wgen.1, ptr %wgen.p")

# The calling convention of every translated function: no callee-saved registers, so going
# from one translation to the next (a chained tail call) saves and restores nothing. Only the
# dispatcher and ``enter`` (C functions) call them from outside.
BLOCK_CC = "preserve_nonecc"
WINDOW = 2048         # bytes of stack around the entry rsp checked once per function (<= a page)
FUNCTION_ARGS = "ptr noalias %st, ptr noalias %mem, ptr noalias readonly %perm, ptr %data"
