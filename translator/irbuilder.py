"""A small builder of LLVM IR text.

Translation speed matters (a cold run translates every block it executes), and building IR as text
with f-strings is several times faster than llvmlite.ir's object graph. The builder only numbers
temporaries and labels, collects lines and the intrinsics a function uses::

    b = IRBuilder()
    x = b.emit("add i64 %a, 1")        # -> "%t1"
    b.label(b.new_label("exit"))
"""
from __future__ import annotations


def ty(bits: int) -> str:
    return f"i{bits}"


def const(value: int, bits: int) -> str:
    """An integer constant of the given width, written in signed form as LLVM expects."""
    value &= (1 << bits) - 1
    if bits > 1 and value >> (bits - 1):
        value -= 1 << bits
    return str(value)


INTRINSICS = {
    "ctpop8": "declare i8 @llvm.ctpop.i8(i8)",
    **{f"bswap{n}": f"declare i{n} @llvm.bswap.i{n}(i{n})" for n in (16, 32, 64)},
    **{f"cttz{n}": f"declare i{n} @llvm.cttz.i{n}(i{n}, i1)" for n in (8, 16, 32, 64)},
    **{f"ctlz{n}": f"declare i{n} @llvm.ctlz.i{n}(i{n}, i1)" for n in (8, 16, 32, 64)},
    **{f"fshl{n}": f"declare i{n} @llvm.fshl.i{n}(i{n}, i{n}, i{n})" for n in (8, 16, 32, 64)},
    **{f"fshr{n}": f"declare i{n} @llvm.fshr.i{n}(i{n}, i{n}, i{n})" for n in (8, 16, 32, 64)},
}


class IRBuilder:
    def __init__(self, prefix: str = "t"):
        self.lines: list[str] = []
        self.n = 0
        self.prefix = prefix
        self.intrinsics: set[str] = set()
        self.terminated = False

    def emit(self, text: str) -> str:
        """Emit an instruction that produces a value; returns the value's name."""
        self.n += 1
        name = f"%{self.prefix}{self.n}"
        self.lines.append(f"  {name} = {text}")
        return name

    def stmt(self, text: str) -> None:
        """Emit an instruction without a result (store, br, ret, call void)."""
        self.lines.append("  " + text)
        if text.startswith(("br ", "ret ", "unreachable", "switch ")):
            self.terminated = True

    def new_label(self, hint: str = "L") -> str:
        self.n += 1
        return f"{hint}{self.n}"

    def label(self, name: str) -> None:
        if not self.terminated:
            self.lines.append(f"  br label %{name}")
        self.lines.append(f"{name}:")
        self.terminated = False

    def use(self, intrinsic: str) -> None:
        self.intrinsics.add(intrinsic)

    def text(self) -> str:
        return "\n".join(self.lines)
