"""The ``jitbt`` command.

    jitbt run [--accuracy LEVEL] [--set KNOB=VALUE] [--stats] [--strace] [--trace FILE]
              [--strict] [-O N] PROGRAM [ARGS...]
    jitbt levels
    jitbt blocks PROGRAM [--at ADDRESS] [--count N] [--optimised]
    jitbt conformance [--only REGEX] [--accuracy LEVEL] [--tier hot|cold|interp] [--json | --list]

Every problem jitbt meets is reported as one line on stderr with a non-zero exit status; a Python
traceback reaching the user is a bug.
"""
from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from .errors import JitbtError


def _int(text: str) -> int:
    return int(text, 0)


def _formatter(prog: str):
    """argparse's help formatter, told the terminal's width (argparse asks shutil, whose import
    cost every start 2 ms, since argparse makes a formatter for each argument added)."""
    import argparse
    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError):
            width = 80
    return argparse.HelpFormatter(prog, width=max(width, 40) - 2)


# `jitbt run`'s options: flags, options with a value, options that may be repeated, with
# argparse's dest of each (build_parser declares them for argparse; tests/test_cli.py checks
# that the two agree).
RUN_FLAGS = {"--stats": "stats", "--strace": "strace", "--strict": "strict",
             "--no-cache": "no_cache"}
RUN_VALUES = {"--accuracy": "accuracy", "--trace": "trace", "--argv0": "argv0",
              "-O": "opt_level"}
RUN_LISTS = {"--set": "settings", "-E": "setenv", "-U": "unsetenv"}


def quick_run_args(argv: list[str]):
    """The arguments of a `jitbt run` command line read without argparse, when it is one that
    argparse reads the same way: options spelled out whole (``--accuracy cycle``,
    ``--accuracy=cycle``, ``-O 2``), then the program, whose own arguments are everything
    after it. None for any other: a help request, an abbreviated, unknown or attached option
    (``--stat``, ``-O2``), a missing or invalid value, ``--``, a program named like an option;
    argparse reads those, and reports their errors. (Importing argparse, with the gettext and
    locale modules it uses and the regular expressions they compile, was 5-6 ms of every run;
    tests/test_cli.py checks that both read command lines alike.)"""
    if argv[:1] != ["run"] or "--" in argv:
        return None                 # (argparse drops a "--" even among the program's arguments)
    a = SimpleNamespace(command="run", stats=False, strace=False, strict=False,
                        accuracy="block", settings=[], trace=None, opt_level=None,
                        no_cache=False, argv0=None, setenv=[], unsetenv=[])
    i = 1
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            a.program, a.args = arg, argv[i + 1:]
            return a
        if arg in RUN_FLAGS:
            setattr(a, RUN_FLAGS[arg], True)
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if eq and not name.startswith("--"):
            return None                       # (-O=2: argparse's, not ours)
        if name not in RUN_VALUES and name not in RUN_LISTS:
            return None
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None
            value = argv[i + 1]
            i += 1
        i += 1
        if name == "-O":
            if value not in ("0", "1", "2", "3"):
                return None
            a.opt_level = int(value)
        elif name in RUN_VALUES:
            setattr(a, RUN_VALUES[name], value)
        else:
            getattr(a, RUN_LISTS[name]).append(value)
    return None                               # (no program: argparse says so)


def build_parser(only: str | None = None):
    """The command line's parser (argparse's); with `only` "run", that subcommand's alone
    (building the others' parsers was 1.5 ms of every run)."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("formatter_class", _formatter)
            super().__init__(*args, **kwargs)

    p = _Parser(prog="jitbt", description="Run x86-64 Linux programs through a "
                                "dynamic binary translator built on capstone and LLVM.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a static x86-64 Linux program")
    r.add_argument("--stats", action="store_true", help="print translation and run statistics "
                   "to stderr when the guest exits")
    r.add_argument("--strace", action="store_true", help="print each guest syscall to stderr")
    r.add_argument("--strict", action="store_true", help="an unimplemented syscall is fatal")
    r.add_argument("--accuracy", default="block", metavar="LEVEL",
                   help="datapath, cycle, instruction, block (the default) or hle; "
                   "`jitbt levels` shows what each guarantees and its knobs")
    r.add_argument("--set", dest="settings", action="append", default=[], metavar="KNOB=VALUE",
                   help="change one knob of the level (repeatable), e.g. --set clock=virtual")
    r.add_argument("--trace", metavar="FILE", help="write one line per executed guest "
                   "instruction to FILE (address and instruction)")
    r.add_argument("-O", dest="opt_level", type=int, choices=(0, 1, 2, 3),
                   help="LLVM optimisation level for translated code (the same as --set opt=N)")
    r.add_argument("--no-cache", action="store_true", help="do not use the persistent "
                   "translation cache (in $XDG_CACHE_HOME/jitbt)")
    r.add_argument("--argv0", help="the guest's argv[0] (default: PROGRAM), as in qemu-user")
    r.add_argument("-E", dest="setenv", action="append", default=[], metavar="VAR=VALUE",
                   help="set a variable in the guest's environment (repeatable)")
    r.add_argument("-U", dest="unsetenv", action="append", default=[], metavar="VAR",
                   help="remove a variable from the guest's environment (repeatable)")
    r.add_argument("program")
    r.add_argument("args", nargs=argparse.REMAINDER)
    if only == "run":
        return p
    sub.add_parser("levels", help="list the accuracy levels, what each guarantees and the "
                   "knobs each is made of")
    c = sub.add_parser("cache", help="inspect or clear the persistent translation cache")
    c.add_argument("action", choices=("info", "clear"))
    b = sub.add_parser("blocks", help="show the basic blocks from an address and their LLVM IR")
    b.add_argument("program")
    b.add_argument("--at", type=_int, help="guest address (default: the entry point)")
    b.add_argument("--count", type=int, default=4, help="how many blocks to show, following "
                   "direct branches (default 4)")
    b.add_argument("--optimised", action="store_true", help="show the IR after optimisation")
    b.add_argument("--no-ir", action="store_true", help="show the instructions only")
    h = sub.add_parser("prepare", help="compile the interpreter's handlers for every "
                       "instruction shape of the conformance forms and of PROGRAMs, once")
    h.add_argument("programs", nargs="*", metavar="PROGRAM", help="programs whose "
                   "instructions to take too (every shape in their executable sections)")
    h.add_argument("--set", dest="settings", action="append", default=[], metavar="KNOB=VALUE",
                   help="build the libraries of the levels with these knobs changed (as run "
                   "--set; e.g. memory=bounded)")
    k = sub.add_parser("conformance", help="run every instruction form on the host CPU and "
                       "under jitbt and report the mismatches (exit status 1 if any differs on "
                       "defined state)")
    k.add_argument("--only", metavar="REGEX", help="only the forms whose text matches REGEX "
                   "(searched, e.g. '^add ' or 'xmm')")
    k.add_argument("--accuracy", default="block", metavar="LEVEL", help="translate at this "
                   "level; at datapath undefined flags and MXCSR/x87 exception bits must match")
    k.add_argument("--tier", default="hot", choices=("hot", "cold", "interp"),
                   help="run the forms through the optimising tier (the default), the cold "
                   "tier, or the interpreter's handlers")
    out = k.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--list", action="store_true", help="list the forms instead of running "
                     "them (translator/conformance/forms.txt is this list)")
    return p


def run_knobs(a):
    """The knobs `jitbt run` was asked for: --accuracy, then each --set, -O and --trace."""
    from translator.knobs import KnobError, knobs_for
    settings = list(a.settings) + ([f"opt={a.opt_level}"] if a.opt_level is not None else [])
    try:
        return knobs_for(a.accuracy, settings, trace=a.trace is not None)
    except KnobError as e:
        raise JitbtError(str(e)) from None


def cmd_run(a) -> int:
    from .machine import Machine, Options
    knobs = run_knobs(a)
    trace = None
    if a.trace is not None:
        try:
            trace = open(a.trace, "wb")
        except OSError as e:
            raise JitbtError(f"--trace {a.trace}: {e.strerror}") from None
    m = Machine(Options(knobs=knobs, stats=a.stats, strace=a.strace, strict=a.strict,
                        cache=not a.no_cache, trace=trace))
    argv0 = a.argv0 if a.argv0 is not None else a.program
    argv = [os.fsencode(argv0)] + [os.fsencode(x) for x in a.args]
    env = dict(os.environb)
    for item in a.setenv:
        key, sep, value = os.fsencode(item).partition(b"=")
        if not sep:
            raise JitbtError(f"-E {item}: expected VAR=VALUE")
        env[key] = value
    for key in a.unsetenv:
        env.pop(os.fsencode(key), None)
    envp = [k + b"=" + v for k, v in env.items()]
    m.load(a.program, argv, envp)
    status = m.run()
    if a.strace and m.unimplemented:
        sys.stderr.write(f"jitbt: unimplemented syscalls met: {m.unimplemented_text()}\n")
    if a.stats:
        sys.stderr.write(m.stats_text())
    if m.killed_by:
        die_of(m.killed_by)
    return status


def die_of(signo: int) -> None:
    """End jitbt the way the guest ended: killed by `signo`, so that a parent (a shell, a guest
    waiting in wait4) sees the same status as for the native program. No core file is written:
    the core would be jitbt's, not the guest's."""
    import resource
    import signal
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if signo not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signo, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signo})
        os.kill(os.getpid(), signo)
    except (OSError, ValueError):
        pass                     # not a signal the host can deliver: exit with 128 + signal


def cmd_blocks(a) -> int:
    import re

    from translator.lifter import module_text, semantics

    from .machine import Machine, Options
    m = Machine(Options())
    m.load(a.program, [os.fsencode(a.program)], [])
    tr = m.translator
    start = a.at if a.at is not None else m.image.entry
    if not m.mem.fetch(start, 1):
        raise JitbtError(f"{start:#x} is not in executable guest memory")
    blocks = tr.decode_region(start, a.count)
    out = sys.stdout
    lib = tr.handlers                  # (the interpreter's: each instruction's handler)
    if lib is not None:
        lib.load()
    for block in blocks:
        out.write(f"block {block.start:#x}..{block.end:#x} ({len(block.insns)} instructions)\n")
        for insn in block.insns:
            note = f"   ; {insn.rule.action}: {insn.rule.reason}" if insn.rule else ""
            if not insn.rule and (insn.mnemonic not in semantics() or insn.bad_operands):
                note = "   ; no semantics yet: runs as SIGILL"
            elif not insn.rule and lib is not None:
                key = lib.key_of(insn)
                note = f"   ; handler [{key}]" + ("" if key in lib.addr else " (not built yet)")
            out.write(f"  {insn.describe()}{note}\n")
        if block.fetch_fault is not None:
            out.write(f"  {block.fetch_fault:#x}: (not executable: fetch faults with SIGSEGV)\n")
        succ = ", ".join(hex(s) for s in block.successors()) or "(decided at run time)"
        out.write(f"  successors: {succ}\n")
        if not a.no_ir:
            name = f"b_{block.start:x}"
            text, used = tr.lifter.lift(block, name)
            if a.optimised:
                ir = tr.codegen.optimised_ir(module_text([text], used))
                m = re.search(rf"^define [^\n]*@{name}\(.*?^}}$", ir, re.S | re.M)
                text = m.group(0) if m else ir
            out.write("\n" + text + "\n")
    return 0


def cmd_cache(a) -> int:
    """`jitbt cache info|clear`: the persistent translation cache, and the interpreter's
    handler libraries beside it (translator/handlers.py)."""
    from translator.handlers import libraries
    from translator.host import choice as host_choice
    from translator.persist import RUNTIME, ObjectStore
    store = ObjectStore.default()
    if a.action == "clear":
        n = store.clear()
        chunks = 0
        for folder in libraries(store.folder):
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
                chunks += 1
            os.rmdir(folder)
        print(f"removed {n} entries and {chunks} handler library files from {store.folder}")
        return 0
    kinds = store.info()
    names = {".o": "compiled modules", ".shape": "region shapes", ".rec": "interpreter records",
             RUNTIME: "runtime (the dispatcher)"}
    total = sum(n for n, _ in kinds.values())
    size = sum(b for _, b in kinds.values())
    print(f"{store.folder}: {total} entries, {size / 1e6:.1f} MB")
    from translator import llvmraw
    cpu = llvmraw.host_cpu()[0] or "baseline x86-64"
    print(f"  code is generated for {cpu} (JITBT_HOST_CPU={host_choice()}; native or generic)")
    for suffix, (n, b) in sorted(kinds.items()):
        print(f"  {names.get(suffix, suffix)}: {n} ({b / 1e6:.1f} MB)")
    for folder in libraries(store.folder):
        files = [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".lib")]
        b = sum(os.path.getsize(p) for p in files)
        print(f"  handler library {os.path.basename(folder)}: {len(files)} chunks "
              f"({b / 1e6:.1f} MB)")
    return 0


def cmd_prepare(a) -> int:
    """Build the interpreter's handler library (translator/handlers.py) as one chunk, and store
    the dispatcher."""
    from elftools.common.exceptions import ELFError

    from translator.codegen import Codegen
    from translator.handlers import HandlerLibrary, library_key, prepare
    from translator.knobs import LEVELS, KnobError, knobs_for
    libs: dict[str, HandlerLibrary] = {}
    codegen = Codegen(2)
    try:
        levels = {name: knobs_for(name, a.settings) for name in LEVELS}
    except KnobError as e:
        raise JitbtError(str(e)) from None
    for knobs in levels.values():             # (one library serves several levels)
        if knobs.interpreted:
            libs.setdefault(library_key(knobs), HandlerLibrary(codegen, knobs))
    try:
        done = prepare(list(libs.values()), a.programs)
    except (OSError, ELFError) as e:
        raise JitbtError(f"prepare: {e}") from None
    for lib, (n, seconds) in zip(libs.values(), done):
        served = [name for name, k in levels.items() if library_key(k) == lib.key]
        print(f"{lib.folder}: {n} handlers ({len(lib.static)} shapes by encoding) "
              f"for {', '.join(served)}" + (f" with {' '.join(a.settings)}" if a.settings
                                             else "") + f" in {seconds:.1f} s")
    # The dispatcher too, in the store, where runs without one (--no-cache) find it.
    from translator.persist import ObjectStore
    from .dispatcher import Dispatcher
    Dispatcher(Codegen(2, ObjectStore.default()))
    return 0


def cmd_conformance(a) -> int:
    import json
    import re

    from translator.conformance import report
    try:
        cases = report.selected(a.only)
    except re.error as e:
        raise JitbtError(f"--only {a.only!r}: not a regular expression: {e}") from None
    if a.list:
        sys.stdout.write(report.forms_list(a.only))
        return 0
    if not cases:
        raise JitbtError(f"--only {a.only!r}: no instruction form matches")
    from translator.knobs import LEVELS
    if a.accuracy not in LEVELS:
        raise JitbtError(f"--accuracy {a.accuracy}: expected one of {', '.join(LEVELS)}")
    result = report.run(a.only, progress=not a.json and sys.stderr.isatty(), level=a.accuracy,
                        tier=a.tier)
    if a.json:
        print(json.dumps(report.as_json(result), indent=2))
    else:
        report.print_table(result)
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = quick_run_args(argv) or build_parser(
        "run" if argv[:1] == ["run"] else None).parse_args(argv)
    from translator import host
    try:
        host.identity()           # (a bad JITBT_HOST_CPU: said once, before anything runs)
    except host.HostChoiceError as e:
        sys.stderr.write(f"jitbt: {e}\n")
        return 2
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "cache":
            return cmd_cache(args)
        if args.command == "levels":
            from translator.knobs import levels_table
            sys.stdout.write(levels_table())
            return 0
        if args.command == "conformance":
            return cmd_conformance(args)
        if args.command == "prepare":
            return cmd_prepare(args)
        return cmd_blocks(args)
    except JitbtError as e:
        sys.stderr.write(f"jitbt: {e}\n")
        return e.exit_status
    except KeyboardInterrupt:
        sys.stderr.write("jitbt: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141
    except Exception as e:  # a bug in jitbt: still one line, with how to get the details
        if os.environ.get("JITBT_DEBUG"):
            raise
        sys.stderr.write(f"jitbt: internal error: {type(e).__name__}: {e} "
                         f"(set JITBT_DEBUG=1 for a traceback)\n")
        return 70


def entry() -> None:
    """The `jitbt` command: main(), then out of the process at once. By then the run has
    written all it owes the outside (the guest's output went to its file descriptors, the
    persistent cache and --trace are written and the background threads finished); what
    Python's teardown would add, freeing LLVM's engines, every translation and every module,
    cost a run 15-35 ms (static hello world: an eighth of a warm run)."""
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        status = status or 141
    os._exit(status)


if __name__ == "__main__":
    entry()
