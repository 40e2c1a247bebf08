"""Accuracy levels and the knobs they are made of (../shared/DESIGN.md, "Accuracy levels").

A level is a named preset of independent knobs; a user may change any knob of a preset. Every
knob changes the generated code or the runtime's behaviour, so the whole `Knobs` value is part of
the block-cache key and of the persistent-cache key (``Knobs.key()``), except ``background``,
which only changes when hot code is compiled::

    from translator.knobs import knobs_for
    k = knobs_for("instruction", ["clock=virtual"])    # the preset with one knob changed
    k.flags, k.unit                                     # -> "precise", "block"
    k.describe()                                        # -> "unit=block flags=precise ..."

The knobs, with what each value means:

- ``unit`` (translation unit): ``insn`` one guest instruction per translated function;
  ``block`` one basic block per function, never merged; ``region`` blocks compiled together,
  and hot code recompiled as one function per region (guest branches become IR branches).
- ``flags`` (flag model): ``exact`` every flag stored after every instruction, the ones the
  manual leaves undefined included, as the reference CPU (the host, an Intel core) produces
  them, and the MXCSR and x87 exception flags too; ``precise`` every defined flag stored at every
  instruction boundary; ``live`` flags computed only where a later instruction or the end of
  the block needs them (QEMU-style liveness), and in a hot region only where a block it
  branches to inside the function may read them (every flag where the function may leave).
  At a guest fault, and where a region leaves for its tick budget, the flags that the code
  after it reads before overwriting are exact (so a handler that returns resumes correctly);
  the others may be stale in the signal frame, as Valgrind's default leaves all but a few
  registers.
- ``memory``: ``checked`` every guest access checked against the page permissions before it
  happens (every level); ``bounded`` no check: an access goes to its address taken modulo the
  guest address space, inside the host region reserved for it, so host memory stays out of
  reach, but a guest access to an unmapped or protected page is not a fault (it reads what
  the region holds there, zeros for pages never mapped, and a write lands there), and stores
  into translated code go unseen (it implies ``smc=off``). For measuring what the checks cost
  (README, "This round (twenty-fifth)"), and for programs known not to fault; no level uses it.
- ``smc`` (self-modifying code): ``page`` pages holding translated code are write-protected; a
  store into one invalidates the translations there and restarts at the store, so new code
  takes effect before the next instruction; ``off`` only munmap/mprotect/mmap invalidate (a
  guest that writes over code it already ran may run the old code).
- ``count``: ``on`` translated code counts retired instructions exactly (``--stats``); ``off``.
- ``clock``: ``host`` rdtsc and the guest's clocks read host time; ``virtual`` they read a
  modelled clock driven by the per-instruction cost table (translator/costs.py), so runs are
  deterministic.
- ``routines`` (routine replacement): ``off``; ``libc`` recognised libc string and memory
  routines run as host-native code on guest memory.
- ``opt``: LLVM optimisation level 0-3 of the optimising tier.
- ``region``: at most this many blocks translated together in one region.
- ``chain``: ``on`` a translation that ends by going on to another (a direct branch, or a
  computed one: ret, indirect jmp/call) looks it up in the native lookup table itself and
  tail-calls it; ``off`` every translation returns to the dispatcher loop (QEMU's -d nochain).
- ``entries``: where a hot region (unit ``region``) is entered. ``head`` (the default) only at
  the block it was formed at; ``returns`` also at the heads of its loops and the return sites
  of its calls, through the heads of the loops around them (so that every loop keeps one
  entry): cold code that loops, or a callee that left the region, comes back into the region's
  code. It compiles sort's merge loop once instead of two to four times; it made recursion's
  warm run a third slower in one round's A/Bs and made no difference overall in the next's
  (README, "This round (twelfth)" and "(thirteenth)"), so it is not the default.
- ``baseline``: what runs new code. ``interp`` the interpreter (translator/interp.py): a block
  is decoded into records of precompiled per-shape handlers and runs at once, and is compiled
  (by the cold tier) only once it has run ``warmup`` times (runtime/dispatcher.py); ``jit``
  every new block is compiled before it runs (regions of blocks, at -O0). The interpreter keeps
  the state exact at every instruction, counts retired instructions and modelled cycles, and
  at the exact flag model sets undefined flags as the host does; it does not trace, so
  ``--trace`` uses ``jit``. It changes what is compiled when, never the code: it is not part
  of cache keys.
- ``warmup``: runs of an interpreted block before the cold tier compiles it (with the blocks
  around it that ran). Like ``baseline``, not part of cache keys. ``auto`` (the default): 64
  runs when the persistent cache keeps what is compiled (later runs load it, so compiling pays
  off over them), and in a run that keeps nothing (``--no-cache``, with an optimising tier)
  never: a block goes from the interpreter to the optimising tier when it turns hot, and is
  interpreted while its region compiles (runtime/dispatcher.py): a cold module costs about a
  millisecond a block, which the few thousand runs of interpreting a block that is not hot do
  not (``--no-cache`` runs of the benchmark workloads: wall time the same or 1-5% less, a
  quarter to a third less translation time; hello world 0.168 -> 0.148 s), and a loop's
  cold code runs no faster than its interpreted records (sha256 1.87 -> 1.72 s without that
  last warm-up). Warm runs with 64: slower with more. With ``auto`` and ``background=on``,
  the run that compiles them for the store does so on a thread of its own and goes on
  interpreting them (they count on towards the optimising tier as in a ``--no-cache`` run);
  the next run loads the modules when the blocks warm up there. An explicit number compiles
  them at once and runs their cold code.
- ``background``: ``on`` hot regions are optimised and compiled on a second thread while the
  guest runs on in its cold code, and enter the lookup table when they are ready; ``off`` the
  guest waits for each (HotSpot's -Xbatch), so when hot code takes over depends only on run
  counts. It changes when code is compiled, never the code: it is not part of cache keys.
"""
from __future__ import annotations

from .plain import dataclass, fields, replace

DEFAULT_LEVEL = "block"


class KnobError(ValueError):
    """A level or knob setting that does not exist (the message says what does)."""


@dataclass(frozen=True)
class Knobs:
    unit: str = "region"
    flags: str = "live"
    memory: str = "checked"
    smc: str = "page"
    count: str = "off"
    clock: str = "host"
    routines: str = "off"
    opt: int = 2
    region: int = 16
    chain: str = "on"
    entries: str = "head"
    baseline: str = "interp"
    warmup: int = 0              # 0: auto (the dispatcher decides: see above)
    background: str = "on"
    trace: bool = False          # --trace: not a knob of the presets, but it changes the code
    level: str = DEFAULT_LEVEL   # the preset these knobs came from (for reports)

    def key(self) -> tuple:
        """What changes generated code: part of every cache key (the level name is not)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in _NOT_IN_KEY)

    def describe(self) -> str:
        return " ".join(f"{name}={self.shown(name)}" for name in KNOBS)

    def shown(self, name: str) -> str:
        """A knob's value as --set takes it."""
        value = getattr(self, name)
        return "auto" if name == "warmup" and not value else str(value)

    @property
    def exact_flags(self) -> bool:
        return self.flags == "exact"

    @property
    def counting(self) -> bool:
        return self.count == "on" or self.clock == "virtual"

    def interpreter_conflict(self) -> str | None:
        """Why the interpreter cannot keep these knobs' promises, or None when it can."""
        if self.trace:
            return "it does not trace (--trace)"
        return None

    @property
    def interpreted(self) -> bool:
        """Does the interpreter run new code?"""
        return self.baseline == "interp" and self.interpreter_conflict() is None


_NOT_IN_KEY = ("level", "background", "baseline", "warmup")

# knob -> (allowed values or type, what it is)
KNOBS: dict[str, tuple] = {
    "unit": (("insn", "block", "region"), "translation unit"),
    "flags": (("exact", "precise", "live"), "flag model"),
    "memory": (("checked", "bounded"), "memory checks (bounded: none, accesses kept inside "
               "the guest's region; no guest faults on memory)"),
    "smc": (("page", "off"), "self-modifying-code checks"),
    "count": (("on", "off"), "exact retired-instruction count"),
    "clock": (("host", "virtual"), "what rdtsc and the guest's clocks read"),
    "routines": (("off", "libc"), "routine replacement (libc string and memory functions)"),
    "opt": ((0, 1, 2, 3), "LLVM optimisation level"),
    "region": (int, "most blocks translated together"),
    "chain": (("on", "off"), "translations jump to their successors without the dispatcher"),
    "entries": (("returns", "head"), "where a hot region is entered: also at its calls' "
                "return sites, or only at its head"),
    "baseline": (("interp", "jit"), "what runs new code: the interpreter, or compiled code"),
    "warmup": (int, "runs of an interpreted block before it is compiled (or auto)"),
    "background": (("on", "off"), "hot regions compiled on a second thread"),
}

LEVELS: dict[str, tuple[Knobs, str]] = {
    "datapath": (Knobs(unit="insn", flags="exact", count="on", level="datapath"),
                 "every architectural bit as the host CPU produces it, undefined flags included; "
                 "one instruction per translation unit"),
    "cycle": (Knobs(unit="block", flags="precise", count="on", clock="virtual", background="off",
                    level="cycle"),
              "as instruction, plus a deterministic modelled clock (rdtsc, clock_gettime)"),
    "instruction": (Knobs(unit="block", flags="precise", count="on", level="instruction"),
                    "precise state at every instruction boundary, exact retired-instruction "
                    "count, --trace"),
    "block": (Knobs(), "precise state at block boundaries; output identical to native"),
    "hle": (Knobs(routines="libc", region=64, level="hle"),
            "as block, with libc string and memory routines run as host code"),
}


def parse_setting(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or name not in KNOBS:
        raise KnobError(f"--set {text}: expected KNOB=VALUE with KNOB one of {', '.join(KNOBS)}")
    allowed, _ = KNOBS[name]
    if name == "warmup" and value.strip() == "auto":
        return name, 0
    if allowed is int or isinstance(allowed[0], int):
        try:
            v = int(value)
        except ValueError:
            raise KnobError(f"--set {text}: {name} takes a number") from None
        if (allowed is int and v < 1) or (allowed is not int and v not in allowed):
            raise KnobError(f"--set {text}: {name} must be "
                            + ("at least 1" if allowed is int else
                               "one of " + ", ".join(map(str, allowed))))
        return name, v
    if value not in allowed:
        raise KnobError(f"--set {text}: {name} must be one of {', '.join(allowed)}")
    return name, value


def knobs_for(level: str = DEFAULT_LEVEL, settings=(), trace: bool = False) -> Knobs:
    """The knobs of preset `level` with each "knob=value" of `settings` applied."""
    if level not in LEVELS:
        raise KnobError(f"--accuracy {level}: expected one of {', '.join(LEVELS)}")
    k = LEVELS[level][0]
    changes = dict(parse_setting(s) for s in settings)
    if trace:
        changes["trace"] = True
        changes.setdefault("baseline", "jit")      # the interpreter does not trace
    if changes.get("memory") == "bounded":
        # (unchecked stores cannot see writes into translated code)
        if changes.get("smc") == "page":
            raise KnobError("--set memory=bounded: not with smc=page (stores are not checked, "
                            "so writes into translated code cannot be seen)")
        changes["smc"] = "off"
    k = replace(k, **changes) if changes else k
    if changes.get("baseline") == "interp" and k.interpreter_conflict():
        raise KnobError(f"--set baseline=interp: not with these knobs: the interpreter "
                        f"{k.interpreter_conflict()}")
    return k


def levels_table() -> str:
    """`jitbt levels`: each level, what it guarantees, and its knobs; then what each knob means."""
    names = list(KNOBS)
    widths = {n: max(len(n), *(len(k.shown(n)) for k, _ in LEVELS.values())) for n in names}
    head = f"{'level':<12}" + "  ".join(f"{n:<{widths[n]}}" for n in names)
    lines = [head, "-" * len(head)]
    for name, (k, _) in LEVELS.items():
        mark = " *" if name == DEFAULT_LEVEL else ""
        lines.append(f"{name:<12}" + "  ".join(f"{k.shown(n):<{widths[n]}}" for n in names)
                     + mark)
    lines.append("(* the default)")
    lines.append("")
    for name, (_, what) in LEVELS.items():
        lines.append(f"{name:<12}{what}")
    lines.append("")
    lines.append("knobs (change one with --set KNOB=VALUE):")
    width = max(map(len, KNOBS)) + 2
    for n, (allowed, what) in KNOBS.items():
        values = "a number >= 1" if allowed is int else "|".join(map(str, allowed))
        lines.append(f"  {n:<{width}}{what}: {values}")
    return "\n".join(lines) + "\n"
