"""Routine replacement (the ``hle`` accuracy level, knob ``routines=libc``): recognised libc string
and memory routines of the guest run as host-native code on guest memory.

Each routine is an LLVM IR function with the signature of a translated block
(``i32 @f(ptr noalias %st, ptr noalias %mem, ptr noalias readonly %perm)``). It is entered at the
guest routine's first instruction, as if the guest had called it: it reads the System V arguments
(rdi, rsi, rdx) from the guest registers, checks every guest byte it will touch against the page
permission table, does the work on guest memory (host address = mem + guest address), puts the C
result in rax, pops the return address into rip and counts the call in ``hle_calls[number]``.
The other registers are left as they are: the caller may not rely on caller-saved registers, and
the callee-saved ones are unchanged, as the ABI requires. A routine never faults: when a range
check fails it returns ``Exit.DECLINE`` with the state untouched (rip still the routine's
address), and the runtime runs the guest's own code there from then on, so that a bad pointer
faults exactly where and how the guest's routine makes it fault::

    from translator import hle
    found = hle.find_routines("prog", load_bias=0, fetch=mem.fetch)   # -> [hle.Found, ...]
    ir = hle.module_ir(hle.ROUTINES[found[0].number])                  # a module of one routine
    hle.ROUTINES[n].name, hle.function_name(hle.ROUTINES[n])

Recognition is by symbol: the ELF symbol table (``.symtab``) of a static or static-pie program
says which libc it was linked with (symbols of its start-up code: ``identify_libc``) and names
the routines (musl's ``memcpy`` ...; glibc's IFUNC variants ``__memmove_sse2_unaligned`` ...,
the ones its resolvers pick for jitbt's CPU model and the others that do the same). IFUNC
symbols (glibc's ``memcpy`` is the resolver) are never matched, nor is anything in a program
without a known libc (a freestanding program's own ``memcpy`` is its business). A routine whose result is only
specified up to its sign (memcmp) replaces a variant only when the variant's exact values are
reproduced here: glibc 2.36's ``__memcmp_sse2`` returns -1/1 for some sizes and odd differences
for others, so it is matched by a fingerprint (a hash of its code bytes) besides its name.
Stripped programs are not recognised: fingerprinting routines without symbols (hashing the first
code bytes of known routines at candidate addresses) is future work.

Replacement only changes what the guest's routine would have computed in time, never in value;
retired-instruction counts (knob ``count``) and --trace do not see inside a replaced routine.
"""
from __future__ import annotations

import hashlib
from .plain import dataclass

from .runtime_ir import BLOCK_CC, CHECK_DEF, FUNCTION_ARGS, MODULE_HEADER
from .state import ADDRESS_LIMIT, PAGE_SIZE, PERM_R, PERM_W, Exit, field_index

MAX_ROUTINES = 32          # the length of the state's hle_calls array


@dataclass(frozen=True)
class Routine:
    number: int            # index into the state's hle_calls counters
    name: str              # what --stats calls it
    symbols: dict          # libc ("glibc", "musl") -> the guest symbol names it replaces there
    body: str              # IR of the function body (see _function)
    fingerprints: frozenset = frozenset()   # when given: sha256 prefixes the code must have


@dataclass(frozen=True)
class Found:
    address: int           # guest address of the routine's entry
    end: int               # one past its last byte (its symbol's size; at least one byte)
    number: int            # the Routine
    digest: str            # sha256 of its code bytes when found: a changed routine is not replaced


ROUTINES: list[Routine] = []


def routine(name: str, glibc: str = "", musl: str = "", fingerprints: tuple = ()):
    """Declare a routine beside its implementation: the decorated function returns the IR of the
    body; `glibc` and `musl` list (space-separated) the symbols it replaces in each libc."""
    def register(fn):
        if len(ROUTINES) >= MAX_ROUTINES:
            raise ValueError("more routines than the state's hle_calls counters")
        symbols = {"glibc": frozenset(glibc.split()), "musl": frozenset(musl.split())}
        ROUTINES.append(Routine(len(ROUTINES), name, symbols, fn(), frozenset(fingerprints)))
        return fn
    return register


# Symbols that only a static program linked with that libc has (its start-up code).
LIBC_MARKS = {"glibc": ("__libc_setup_tls", "_dl_relocate_static_pie"),
              "musl": ("__init_libc", "__libc_start_init")}


def identify_libc(names) -> str | None:
    """Which libc a static program was linked with, from its symbol names (None: neither, e.g. a
    freestanding program, whose own memcpy is not replaced)."""
    for libc, marks in LIBC_MARKS.items():
        if any(m in names for m in marks):
            return libc
    return None


def function_name(r: Routine) -> str:
    return f"hle_{r.name}"


def digest(code: bytes) -> str:
    return hashlib.sha256(code).hexdigest()[:16]


# ---- IR --------------------------------------------------------------------------------------
GPR = field_index("gpr")
LIMIT = ADDRESS_LIMIT
NONE = -1                  # the helpers' "a page is not accessible": decline

def _scan(name: str, params: str, streams: str, prologue: str, vec: str, byte: str) -> str:
    """A scan helper: the first offset in [0, limit) where `vec` (16 bytes at a time, defining
    the <16 x i1> %m) or `byte` (one byte, defining the i1 %bm) finds a match, limit if none,
    NONE if the scan reaches a page the guest may not read first. Each of `streams` (letters:
    a pointer parameter %a, %b, ...) has its pages checked as the scan enters them, and is
    read through %hp<letter>; 16 bytes at a time while every stream is inside a checked page."""
    phis = "\n".join(f"  %ok{s} = phi i64 [ %{s}, %entry ], [ %ok{s}2, %vnext ], [ %ok{s}2, %bnext ]"
                      for s in streams)
    checks, prev = [], "go"
    for s in streams:
        checks.append(f"""  %p{s} = add i64 %{s}, %i
  %new{s} = icmp uge i64 %p{s}, %ok{s}
  br i1 %new{s}, label %check{s}, label %c{s}
check{s}:
  %pok{s} = call i1 @hle_page(ptr %perm, i64 %p{s}, i8 {PERM_R})
  %pe{s} = or i64 %p{s}, {PAGE_SIZE - 1}
  %pend{s} = add i64 %pe{s}, 1
  br i1 %pok{s}, label %c{s}, label %fail
c{s}:
  %ok{s}2 = phi i64 [ %ok{s}, %{prev} ], [ %pend{s}, %check{s} ]
  %room{s} = sub i64 %ok{s}2, %p{s}
  %r16{s} = icmp uge i64 %room{s}, 16
  %hp{s} = getelementptr i8, ptr %mem, i64 %p{s}""")
        prev = f"c{s}"
    wide, last = "%m16", "%m16"
    for k, s in enumerate(streams):
        wide = f"%w{k}"
        checks.append(f"  {wide} = and i1 {last}, %r16{s}")
        last = wide
    return f"""define internal i64 @{name}(ptr %mem, ptr %perm, {params}, i1 %nul, i64 %limit) {{
entry:
{prologue}
  %ni = insertelement <16 x i1> poison, i1 %nul, i64 0
  %ns = shufflevector <16 x i1> %ni, <16 x i1> poison, <16 x i32> zeroinitializer
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i16, %vnext ], [ %i1, %bnext ]
{phis}
  %end = icmp eq i64 %i, %limit
  br i1 %end, label %none, label %go
go:
  %rem = sub i64 %limit, %i
  %m16 = icmp uge i64 %rem, 16
{chr(10).join(checks)}
  br i1 {wide}, label %vec, label %byte
vec:
{vec}
  %bits = bitcast <16 x i1> %m to i16
  %any = icmp ne i16 %bits, 0
  br i1 %any, label %vfound, label %vnext
vfound:
  %tz = call i16 @llvm.cttz.i16(i16 %bits, i1 true)
  %tz64 = zext i16 %tz to i64
  %r = add i64 %i, %tz64
  ret i64 %r
vnext:
  %i16 = add i64 %i, 16
  br label %loop
byte:
{byte}
  br i1 %bm, label %bfound, label %bnext
bfound:
  ret i64 %i
bnext:
  %i1 = add i64 %i, 1
  br label %loop
none:
  ret i64 %limit
fail:
  ret i64 {NONE}
}}
"""


# The offset of the first byte of [a, a+limit) equal to c (or zero, when nul).
SCAN_FIND = _scan("hle_find", "i64 %a, i8 %c", "a", """  %ci = insertelement <16 x i8> poison, i8 %c, i64 0
  %cs = shufflevector <16 x i8> %ci, <16 x i8> poison, <16 x i32> zeroinitializer""",
                  """  %v = load <16 x i8>, ptr %hpa, align 1
  %eq = icmp eq <16 x i8> %v, %cs
  %z = icmp eq <16 x i8> %v, zeroinitializer
  %zn = and <16 x i1> %z, %ns
  %m = or <16 x i1> %eq, %zn""", """  %b = load i8, ptr %hpa
  %be = icmp eq i8 %b, %c
  %bz = icmp eq i8 %b, 0
  %bzn = and i1 %bz, %nul
  %bm = or i1 %be, %bzn""")
# The first position where the bytes at a and b differ (or, when nul, the byte at a is zero).
SCAN_CMP = _scan("hle_cmp", "i64 %a, i64 %b", "ab", "", """  %va = load <16 x i8>, ptr %hpa, align 1
  %vb = load <16 x i8>, ptr %hpb, align 1
  %ne = icmp ne <16 x i8> %va, %vb
  %z = icmp eq <16 x i8> %va, zeroinitializer
  %zn = and <16 x i1> %z, %ns
  %m = or <16 x i1> %ne, %zn""", """  %ba = load i8, ptr %hpa
  %bb = load i8, ptr %hpb
  %bne = icmp ne i8 %ba, %bb
  %bz = icmp eq i8 %ba, 0
  %bzn = and i1 %bz, %nul
  %bm = or i1 %bne, %bzn""")

HELPERS = f"""
declare void @llvm.memmove.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)
declare i16 @llvm.cttz.i16(i16, i1)

; May the guest access every byte of [a, a+n) with permission `need`? (n = 0: yes)
define internal i1 @hle_range(ptr %perm, i64 %a, i64 %n, i8 %need) {{
entry:
  %empty = icmp eq i64 %n, 0
  br i1 %empty, label %yes, label %some
some:
  %n1 = sub i64 %n, 1
  %big = icmp ugt i64 %n1, {LIMIT - 1}
  %lim = sub i64 {LIMIT - 1}, %n1
  %high = icmp ugt i64 %a, %lim
  %bad = or i1 %big, %high
  br i1 %bad, label %no, label %pages
pages:
  %first = lshr i64 %a, 12
  %last_a = add i64 %a, %n1
  %last = lshr i64 %last_a, 12
  br label %loop
loop:
  %pg = phi i64 [ %first, %pages ], [ %pg1, %next ]
  %e = getelementptr i8, ptr %perm, i64 %pg
  %v = load i8, ptr %e
  %m = and i8 %v, %need
  %ok = icmp ne i8 %m, 0
  br i1 %ok, label %next, label %no
next:
  %pg1 = add i64 %pg, 1
  %done = icmp ugt i64 %pg1, %last
  br i1 %done, label %yes, label %loop
yes:
  ret i1 true
no:
  ret i1 false
}}

; May the guest access the page holding p with permission `need`?
define internal i1 @hle_page(ptr %perm, i64 %p, i8 %need) alwaysinline {{
  %in = icmp ult i64 %p, {LIMIT}
  %pg = lshr i64 %p, 12
  %i = select i1 %in, i64 %pg, i64 0
  %e = getelementptr i8, ptr %perm, i64 %i
  %v = load i8, ptr %e
  %m = and i8 %v, %need
  %ok = icmp ne i8 %m, 0
  ret i1 %ok
}}

{SCAN_FIND}
{SCAN_CMP}
; The byte difference a[i] - b[i] (as the unsigned bytes), as C's int in rax (zero-extended, as a
; 32-bit subtraction leaves it).
define internal i64 @hle_diff(ptr %mem, i64 %a, i64 %b, i64 %i) alwaysinline {{
  %pa = add i64 %a, %i
  %pb = add i64 %b, %i
  %ha = getelementptr i8, ptr %mem, i64 %pa
  %hb = getelementptr i8, ptr %mem, i64 %pb
  %ba = load i8, ptr %ha
  %bb = load i8, ptr %hb
  %xa = zext i8 %ba to i32
  %xb = zext i8 %bb to i32
  %d = sub i32 %xa, %xb
  %r = zext i32 %d to i64
  ret i64 %r
}}

; The last offset in [0, n) whose byte is c, or {NONE} (the range has been checked).
define internal i64 @hle_rfind(ptr %mem, i64 %a, i8 %c, i64 %n) {{
entry:
  %empty = icmp eq i64 %n, 0
  br i1 %empty, label %none, label %loop
loop:
  %j = phi i64 [ %n, %entry ], [ %j1, %next ]
  %j1 = sub i64 %j, 1
  %p = add i64 %a, %j1
  %hp = getelementptr i8, ptr %mem, i64 %p
  %b = load i8, ptr %hp
  %eq = icmp eq i8 %b, %c
  br i1 %eq, label %found, label %next
found:
  ret i64 %j1
next:
  %done = icmp eq i64 %j1, 0
  br i1 %done, label %none, label %loop
none:
  ret i64 {NONE}
}}
"""


def _function(r: Routine) -> str:
    """The routine's function: entry (arguments, the return address checked), the body, and the
    return (rax from the %res slot, rip popped, the call counted). A body branches to %ret after
    storing the result in %res, or to %decline."""
    def gpr(n):
        return f"getelementptr %State, ptr %st, i64 0, i32 {GPR}, i64 {n}"
    return f"""define {BLOCK_CC} i32 @{function_name(r)}({FUNCTION_ARGS}) {{
entry:
  %res = alloca i64
  %rax.p = {gpr(0)}
  %rdx.p = {gpr(2)}
  %rsp.p = {gpr(4)}
  %rsi.p = {gpr(6)}
  %rdi.p = {gpr(7)}
  %rdi = load i64, ptr %rdi.p
  %rsi = load i64, ptr %rsi.p
  %rdx = load i64, ptr %rdx.p
  %rsp = load i64, ptr %rsp.p
  %ra.ok = call i1 @chk(ptr %perm, i64 %rsp, i64 7, i8 {PERM_R})
  br i1 %ra.ok, label %body, label %decline
decline:
  ret i32 {Exit.DECLINE}
body:
{r.body}
ret:
  %result = load i64, ptr %res
  store i64 %result, ptr %rax.p
  %ra.h = getelementptr i8, ptr %mem, i64 %rsp
  %ra = load i64, ptr %ra.h, align 1
  %rip.p = getelementptr %State, ptr %st, i64 0, i32 {field_index("rip")}
  store i64 %ra, ptr %rip.p
  %rsp8 = add i64 %rsp, 8
  store i64 %rsp8, ptr %rsp.p
  %calls.p = getelementptr %State, ptr %st, i64 0, i32 {field_index("hle_calls")}, i64 {r.number}
  %calls = load i64, ptr %calls.p
  %calls1 = add i64 %calls, 1
  store i64 %calls1, ptr %calls.p
  ret i32 {Exit.CONTINUE}
}}
"""


def module_ir(r: Routine) -> str:
    """A module holding the routine's function (and the helpers it uses)."""
    return MODULE_HEADER + CHECK_DEF + HELPERS + "\n" + _function(r)


# ---- body fragments ----------------------------------------------------------------------------
def _copy(dst: str, src: str, n: str, result: str) -> str:
    """Check [src, src+n) readable and [dst, dst+n) writable, then memmove; rax = result."""
    return f"""  %src.ok = call i1 @hle_range(ptr %perm, i64 {src}, i64 {n}, i8 {PERM_R})
  %dst.ok = call i1 @hle_range(ptr %perm, i64 {dst}, i64 {n}, i8 {PERM_W})
  %ok = and i1 %src.ok, %dst.ok
  br i1 %ok, label %copy, label %decline
copy:
  %hd = getelementptr i8, ptr %mem, i64 {dst}
  %hs = getelementptr i8, ptr %mem, i64 {src}
  call void @llvm.memmove.p0.p0.i64(ptr %hd, ptr %hs, i64 {n}, i1 false)
  store i64 {result}, ptr %res
  br label %ret"""


def _strlen(s: str, limit: str = "-1", name: str = "len") -> str:
    """%{name} = strlen (or strnlen with limit) of guest string s; declines when unreadable."""
    return f"""  %{name} = call i64 @hle_find(ptr %mem, ptr %perm, i64 {s}, i8 0, i1 true, i64 {limit})
  %{name}.bad = icmp eq i64 %{name}, {NONE}
  br i1 %{name}.bad, label %decline, label %{name}.ok
{name}.ok:"""


# ---- the routines ------------------------------------------------------------------------------
# glibc variants whose results are fully specified (copies, lengths, pointers) are all matched,
# whichever the IFUNC resolver would pick; comparisons only where the values are reproduced.

@routine("memmove", musl="memmove",
         glibc="__memmove_sse2_unaligned __memmove_sse2_unaligned_erms __memmove_erms "
         "__memmove_ssse3 __memmove_avx_unaligned __memmove_avx_unaligned_erms "
         "__memmove_evex_unaligned __memmove_evex_unaligned_erms")
def _memmove():
    return _copy("%rdi", "%rsi", "%rdx", "%rdi")


@routine("memcpy", musl="memcpy __memcpy_fwd",
         glibc="__memcpy_sse2_unaligned __memcpy_sse2_unaligned_erms __memcpy_erms "
         "__memcpy_ssse3 __memcpy_avx_unaligned __memcpy_avx_unaligned_erms "
         "__memcpy_evex_unaligned __memcpy_evex_unaligned_erms")
def _memcpy():
    # Overlapping memcpy is undefined; copying as memmove does is one of its outcomes.
    return _copy("%rdi", "%rsi", "%rdx", "%rdi")


@routine("mempcpy", musl="mempcpy",
         glibc="__mempcpy_sse2_unaligned __mempcpy_sse2_unaligned_erms __mempcpy_erms "
         "__mempcpy_ssse3 __mempcpy_avx_unaligned __mempcpy_avx_unaligned_erms "
         "__mempcpy_evex_unaligned __mempcpy_evex_unaligned_erms")
def _mempcpy():
    return "  %end = add i64 %rdi, %rdx\n" + _copy("%rdi", "%rsi", "%rdx", "%end")


@routine("memset", musl="memset",
         glibc="__memset_sse2_unaligned __memset_sse2_unaligned_erms __memset_erms "
         "__memset_avx2_unaligned __memset_avx2_unaligned_erms __memset_evex_unaligned "
         "__memset_evex_unaligned_erms")
def _memset():
    return f"""  %ok = call i1 @hle_range(ptr %perm, i64 %rdi, i64 %rdx, i8 {PERM_W})
  br i1 %ok, label %fill, label %decline
fill:
  %hd = getelementptr i8, ptr %mem, i64 %rdi
  %c = trunc i64 %rsi to i8
  call void @llvm.memset.p0.i64(ptr %hd, i8 %c, i64 %rdx, i1 false)
  store i64 %rdi, ptr %res
  br label %ret"""


@routine("strlen", musl="strlen", glibc="__strlen_sse2 __strlen_avx2 __strlen_evex")
def _strlen_routine():
    return _strlen("%rdi") + "\n  store i64 %len, ptr %res\n  br label %ret"


@routine("strnlen", musl="strnlen", glibc="__strnlen_sse2 __strnlen_avx2 __strnlen_evex")
def _strnlen():
    return _strlen("%rdi", "%rsi") + "\n  store i64 %len, ptr %res\n  br label %ret"


def _find(nul: bool, limit: str) -> str:
    return f"""  %c = trunc i64 %rsi to i8
  %at = call i64 @hle_find(ptr %mem, ptr %perm, i64 %rdi, i8 %c, i1 {str(nul).lower()}, i64 {limit})
  %bad = icmp eq i64 %at, {NONE}
  br i1 %bad, label %decline, label %found
found:
  %ptr = add i64 %rdi, %at"""


@routine("strchr", musl="strchr",
         glibc="__strchr_sse2 __strchr_sse2_no_bsf __strchr_avx2 __strchr_evex")
def _strchr():
    # The scan stops at c or at the terminator: a pointer if it stopped at c (c = 0 included).
    return _find(True, "-1") + """
  %hp = getelementptr i8, ptr %mem, i64 %ptr
  %b = load i8, ptr %hp
  %is = icmp eq i8 %b, %c
  %r = select i1 %is, i64 %ptr, i64 0
  store i64 %r, ptr %res
  br label %ret"""


@routine("strchrnul", musl="strchrnul __strchrnul",
         glibc="__strchrnul_sse2 __strchrnul_avx2 __strchrnul_evex")
def _strchrnul():
    return _find(True, "-1") + "\n  store i64 %ptr, ptr %res\n  br label %ret"


@routine("memchr", musl="memchr", glibc="__memchr_sse2 __memchr_avx2 __memchr_evex")
def _memchr():
    # Scanned page by page: memchr(s, c, SIZE_MAX) finds c without the whole range existing.
    return _find(False, "%rdx") + """
  %in = icmp ult i64 %at, %rdx
  %r = select i1 %in, i64 %ptr, i64 0
  store i64 %r, ptr %res
  br label %ret"""


@routine("rawmemchr", glibc="__rawmemchr_sse2 __rawmemchr_avx2 __rawmemchr_evex")
def _rawmemchr():
    return _find(False, "-1") + "\n  store i64 %ptr, ptr %res\n  br label %ret"


@routine("strrchr", musl="strrchr", glibc="__strrchr_sse2 __strrchr_avx2 __strrchr_evex")
def _strrchr():
    return _strlen("%rdi") + f"""
  %c = trunc i64 %rsi to i8
  %n = add i64 %len, 1
  %at = call i64 @hle_rfind(ptr %mem, i64 %rdi, i8 %c, i64 %n)
  %none = icmp eq i64 %at, {NONE}
  %ptr = add i64 %rdi, %at
  %r = select i1 %none, i64 0, i64 %ptr
  store i64 %r, ptr %res
  br label %ret"""


@routine("memrchr", musl="memrchr __memrchr",
         glibc="__memrchr_sse2 __memrchr_avx2 __memrchr_evex")
def _memrchr():
    return f"""  %ok = call i1 @hle_range(ptr %perm, i64 %rdi, i64 %rdx, i8 {PERM_R})
  br i1 %ok, label %scan, label %decline
scan:
  %c = trunc i64 %rsi to i8
  %at = call i64 @hle_rfind(ptr %mem, i64 %rdi, i8 %c, i64 %rdx)
  %none = icmp eq i64 %at, {NONE}
  %ptr = add i64 %rdi, %at
  %r = select i1 %none, i64 0, i64 %ptr
  store i64 %r, ptr %res
  br label %ret"""


def _strcpy(result: str) -> str:
    return _strlen("%rsi") + "\n  %n = add i64 %len, 1\n  %end = add i64 %rdi, %len\n" \
        + _copy("%rdi", "%rsi", "%n", result)


@routine("strcpy", musl="strcpy",
         glibc="__strcpy_sse2 __strcpy_sse2_unaligned __strcpy_avx2 __strcpy_evex")
def _strcpy_routine():
    return _strcpy("%rdi")


@routine("stpcpy", musl="stpcpy __stpcpy",
         glibc="__stpcpy_sse2 __stpcpy_sse2_unaligned __stpcpy_avx2 __stpcpy_evex")
def _stpcpy():
    return _strcpy("%end")


def _strcmp(limit: str) -> str:
    # glibc's __strcmp_sse2(_unaligned) and __strncmp_sse2, and musl's, return the difference
    # of the first differing bytes (as unsigned char), zero-extended from 32 bits.
    return f"""  %at = call i64 @hle_cmp(ptr %mem, ptr %perm, i64 %rdi, i64 %rsi, i1 true, i64 {limit})
  %bad = icmp eq i64 %at, {NONE}
  br i1 %bad, label %decline, label %cmp
cmp:
  %same = icmp eq i64 %at, {limit}
  br i1 %same, label %zero, label %diff
zero:
  store i64 0, ptr %res
  br label %ret
diff:
  %d = call i64 @hle_diff(ptr %mem, i64 %rdi, i64 %rsi, i64 %at)
  store i64 %d, ptr %res
  br label %ret"""


@routine("strcmp", musl="strcmp", glibc="__strcmp_sse2 __strcmp_sse2_unaligned")
def _strcmp_routine():
    return _strcmp("-1")


@routine("strncmp", musl="strncmp", glibc="__strncmp_sse2")
def _strncmp():
    return _strcmp("%rdx")


def _memcmp_first() -> str:
    """%at = the first differing offset of the two checked ranges (or n); %d its byte
    difference (0 when none)."""
    return f"""  %a.ok = call i1 @hle_range(ptr %perm, i64 %rdi, i64 %rdx, i8 {PERM_R})
  %b.ok = call i1 @hle_range(ptr %perm, i64 %rsi, i64 %rdx, i8 {PERM_R})
  %ok = and i1 %a.ok, %b.ok
  br i1 %ok, label %scan, label %decline
scan:
  %at = call i64 @hle_cmp(ptr %mem, ptr %perm, i64 %rdi, i64 %rsi, i1 false, i64 %rdx)
  %bad = icmp eq i64 %at, {NONE}
  br i1 %bad, label %decline, label %cmp
cmp:
  %same = icmp eq i64 %at, %rdx
  br i1 %same, label %zero, label %diff
zero:
  store i64 0, ptr %res
  br label %ret
diff:
  %d = call i64 @hle_diff(ptr %mem, i64 %rdi, i64 %rsi, i64 %at)"""


@routine("memcmp", musl="memcmp")
def _memcmp():
    # musl: the difference of the first differing bytes.
    return _memcmp_first() + "\n  store i64 %d, ptr %res\n  br label %ret"


GLIBC_236_MEMCMP_SSE2 = "b4048bc7d9154fc4"


@routine("memcmp_sse2", glibc="__memcmp_sse2", fingerprints=(GLIBC_236_MEMCMP_SSE2,))
def _memcmp_sse2():
    # glibc 2.36's __memcmp_sse2, size by size: n = 1 and n > 16 return the byte difference;
    # 4 <= n <= 16 compare 8-byte big-endian words and return -1 or 1; n = 2, 3 return
    # (a0 << 23 | a1 << 15 | a[n-1]) - (the same of b), a 32-bit difference.
    return _memcmp_first() + """
  %small = icmp ule i64 %rdx, 16
  br i1 %small, label %small.n, label %bytes
bytes:
  store i64 %d, ptr %res
  br label %ret
small.n:
  %n4 = icmp uge i64 %rdx, 4
  %n1 = icmp eq i64 %rdx, 1
  br i1 %n4, label %words, label %n23.test
words:
  %d32 = trunc i64 %d to i32
  %neg = icmp slt i32 %d32, 0
  %pm = select i1 %neg, i64 4294967295, i64 1
  store i64 %pm, ptr %res
  br label %ret
n23.test:
  br i1 %n1, label %bytes, label %n23
n23:
  %last = sub i64 %rdx, 1
  %ha = getelementptr i8, ptr %mem, i64 %rdi
  %hb = getelementptr i8, ptr %mem, i64 %rsi
  %ka = call i32 @hle_key23(ptr %ha, i64 %last)
  %kb = call i32 @hle_key23(ptr %hb, i64 %last)
  %k = sub i32 %ka, %kb
  %kz = zext i32 %k to i64
  store i64 %kz, ptr %res
  br label %ret"""


HELPERS += """
; glibc 2.36 __memcmp_sse2's key of a 2- or 3-byte string: p0 << 23 | p1 << 15 | p[last]
define internal i32 @hle_key23(ptr %p, i64 %last) alwaysinline {
  %b0 = load i8, ptr %p
  %p1 = getelementptr i8, ptr %p, i64 1
  %b1 = load i8, ptr %p1
  %pl = getelementptr i8, ptr %p, i64 %last
  %bl = load i8, ptr %pl
  %x0 = zext i8 %b0 to i32
  %x1 = zext i8 %b1 to i32
  %xl = zext i8 %bl to i32
  %s0 = shl i32 %x0, 23
  %s1 = shl i32 %x1, 15
  %k1 = or i32 %s0, %s1
  %k = or i32 %k1, %xl
  ret i32 %k
}
"""


# ---- finding routines in a program ----------------------------------------------------------
def find_routines(path: str, load_bias: int, fetch) -> list[Found]:
    """The routines of the program at `path` (loaded at `load_bias`), by its symbol table.

    `fetch(addr, n)` reads the loaded code (for the fingerprints and digests). Where several
    routines name one address (glibc's memcpy and memmove variants are one function), the first
    in ROUTINES wins. A stripped program has no .symtab: nothing is found."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    found: dict[int, Found] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        tab = elf.get_section_by_name(".symtab")
        if not isinstance(tab, SymbolTableSection):
            return []
        symbols = list(tab.iter_symbols())
        libc = identify_libc({sym.name for sym in symbols})
        if libc is None:
            return []
        by_symbol = {s: r for r in reversed(ROUTINES) for s in r.symbols[libc]}
        for sym in symbols:
            r = by_symbol.get(sym.name)
            if r is None or sym["st_info"]["type"] != "STT_FUNC" or sym["st_shndx"] == "SHN_UNDEF":
                continue
            address = sym["st_value"] + load_bias
            size = max(sym["st_size"], 1)
            code = fetch(address, size)
            if len(code) != size:           # not executable where the symbol says
                continue
            d = digest(code)
            if r.fingerprints and d not in r.fingerprints:
                continue
            old = found.get(address)
            if old is None or r.number < old.number:
                found[address] = Found(address, address + size, r.number, d)
    return sorted(found.values(), key=lambda x: x.address)
