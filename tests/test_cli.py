"""The jitbt command as a user meets it: bad input gives one clear line and a non-zero status,
never a traceback; --stats and --strace report; `blocks` shows blocks and their IR."""
from __future__ import annotations

import re
import struct

import pytest

from conftest import BUILD, clean_env, run_jitbt, run_native


def _elf_header(ei_class: int, machine: int) -> bytes:
    """A bare ELF header (no program headers) of the given class and machine."""
    ident = b"\x7fELF" + bytes([ei_class, 1, 1]) + bytes(9)
    if ei_class == 1:
        return ident + struct.pack("<HHIIIIIHHHHHH", 2, machine, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0)
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)


@pytest.fixture
def bad_files(tmp_path):
    text = tmp_path / "script.txt"
    text.write_text("#!/bin/sh\necho hi\n")
    elf32 = tmp_path / "elf32"
    elf32.write_bytes(_elf_header(1, 3) + bytes(64))
    arm = tmp_path / "arm64"
    arm.write_bytes(_elf_header(2, 183) + bytes(64))
    truncated = tmp_path / "truncated"
    truncated.write_bytes((BUILD / "hello").read_bytes()[:100])
    return {"missing": tmp_path / "does-not-exist", "text": text, "elf32": elf32,
            "arm64": arm, "truncated": truncated, "directory": tmp_path}


@pytest.mark.parametrize("kind,expect", [
    ("missing", "no such file"), ("text", "not an ELF file"), ("elf32", "32-bit ELF"),
    ("arm64", "not x86-64"), ("truncated", "malformed ELF"), ("directory", "is a directory"),
])
def test_bad_input_one_clear_line(bad_files, kind, expect):
    r = run_jitbt("run", bad_files[kind])
    assert r.returncode != 0
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("jitbt: ") and expect in lines[0]
    assert "Traceback" not in r.stderr.decode()


def test_dynamic_elf_is_refused_clearly():
    r = run_jitbt("run", "/bin/true")     # the host's own dynamically linked true
    assert r.returncode != 0
    assert "dynamically linked" in r.stderr.decode()


def test_stats_report_translation_and_time():
    # (warmup=64 without a cache: blocks that warm up are compiled in this run whatever the
    # session's cache holds; with a cache they would be compiled for it on a thread, or loaded)
    r = run_jitbt("run", "--stats", "--no-cache", "--set", "warmup=64", BUILD / "crc32-O2")
    assert r.returncode == 0
    err = r.stderr.decode()
    values = {}
    for line in err.splitlines()[1:]:
        m = re.match(r"\s+(.+?)\s{2,}(.+)", line)
        if m:
            values[m.group(1)] = m.group(2)
    for key in ("blocks translated", "guest instructions translated", "block cache hits",
                "block cache misses", "time decoding", "time building IR",
                "time optimising + compiling", "time executing translated code"):
        assert key in values, f"--stats lacks {key!r}"
    assert int(values["blocks translated"]) > 10
    assert int(values["guest instructions translated"]) > int(values["blocks translated"])
    assert int(values["block cache misses"]) >= 1
    assert float(values["time optimising + compiling"].split()[0]) > 0


def test_strace_shows_syscalls():
    r = run_jitbt("run", "--strace", BUILD / "hello")
    err = r.stderr.decode()
    assert re.search(r"write\(1, 'Hello from jitbt guest\\n', 23\) = 23", err), err
    assert "exit_group(0) = ?" in err


def test_blocks_shows_instructions_and_ir():
    r = run_jitbt("blocks", BUILD / "hello", "--count", "1")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert out.startswith("block 0x401000..")
    assert "syscall" in out and "exit: system calls are served by the runtime" in out
    assert "define preserve_nonecc i32 @b_401000(" in out
    assert "; handler [mov r4 i4]" in out          # the interpreter's, for mov eax, imm32
    r = run_jitbt("blocks", BUILD / "fib-O2", "--count", "3", "--optimised")
    assert r.returncode == 0 and r.stdout.decode().count("\nblock ") + 1 >= 3


def test_blocks_at_address_outside_code():
    r = run_jitbt("blocks", BUILD / "hello", "--at", "0x10")
    assert r.returncode != 0 and "not in executable guest memory" in r.stderr.decode()


def test_elf_headers_agree_with_pyelftools():
    """The loader reads ELF and program headers itself (start-up time); pyelftools, a reference
    parser, must read the same from every guest and benchmark binary."""
    from elftools.elf.elffile import ELFFile
    from runtime.loader import ElfHeaders
    paths = sorted(p for p in BUILD.iterdir() if p.is_file() and p.read_bytes()[:4] == b"\x7fELF")
    assert len(paths) > 10
    for path in paths:
        with open(path, "rb") as f:
            ref = ELFFile(f)
            f.seek(0)
            mine = ElfHeaders(f)
            assert mine.elfclass == ref.elfclass
            for name in ("e_type", "e_machine", "e_entry", "e_phoff", "e_phentsize", "e_phnum"):
                assert mine[name] == ref[name], (path, name)
            ours = list(mine.iter_segments())
            theirs = list(ref.iter_segments())
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                for name in ("p_flags", "p_offset", "p_vaddr", "p_filesz", "p_memsz", "p_align"):
                    assert a[name] == b[name], (path, name)
                if isinstance(a["p_type"], str):
                    assert a["p_type"] == b["p_type"]


def test_dispatcher_and_llvm_start_up_are_not_counted_as_translation():
    """Starting LLVM and compiling the dispatcher happen once a process whatever the guest:
    --stats reports them on a line of their own, and the parse and compile times (which
    bench/run.py divides guest instructions by) are those of guest code only."""
    from runtime.dispatcher import Dispatcher
    from translator.codegen import Codegen
    cg = Codegen(2)
    Dispatcher(cg)
    assert cg.seconds_start > 0
    assert cg.seconds_parse == 0 and cg.seconds_compile == 0
    start = cg.seconds_start
    cg.compile_keyed("g", lambda: "define i64 @g(i64 %x) {\n  %y = add i64 %x, 1\n  ret i64 %y\n}\n",
                     ["g"])
    assert cg.seconds_parse > 0 and cg.seconds_compile > 0 and cg.seconds_start == start
    # (background=off: the hot regions are compiled on the main thread, which starts LLVM.
    # In the background, a run without a cache starts LLVM only on the compile thread, whose
    # start --stats adds when it is over: on a loaded machine the guest could end first.)
    r = run_jitbt("run", "--no-cache", "--stats", "--set", "background=off", BUILD / "crc32-O2")
    line = next(x for x in r.stderr.decode().splitlines()
                if "time starting LLVM and compiling the dispatcher" in x)
    assert float(line.split()[-2]) > 0


def test_a_run_without_the_cache_loads_the_dispatcher_a_cached_run_stored(tmp_path):
    """The dispatcher is jitbt's own code, not a translation of the guest: a --no-cache run
    loads it from the store when a run with the cache (or `jitbt prepare`) put it there, like
    the interpreter's handler library, and still adds nothing to the store."""
    env = dict(clean_env(), XDG_CACHE_HOME=str(tmp_path))
    native = run_native(BUILD / "hello", env=env)

    def dispatcher(*args):
        r = run_jitbt("run", *args, "--stats", BUILD / "hello", env=env)
        assert r.stdout == native.stdout and r.returncode == native.returncode == 0
        return re.search(rb"\n  dispatcher +([a-z ]+)\n", r.stderr)[1].decode()

    assert dispatcher("--no-cache") == "compiled"           # nothing stored yet
    dispatcher()                                           # a cached run stores it
    stored = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert any(p.suffix == ".rt" for p in stored)
    assert dispatcher("--no-cache") == "loaded from the store"
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == stored


def test_stats_tell_the_optimising_tiers_ir_time_apart():
    """bench/run.py's throughput without the optimising tier leaves out the IR the main thread
    builds for hot regions: --stats gives it as part of "time building IR"."""
    r = run_jitbt("run", "--no-cache", "--stats", BUILD / "hotloops-glibc", env=clean_env())
    err = r.stderr.decode()

    def seconds(label):
        return float(re.search(rf"\n  {label}\s+([\d.]+) s", err)[1])
    assert int(re.search(r"hot regions \(optimising tier\)\s+(\d+)", err)[1]) > 0, err
    total, hot = seconds("time building IR"), seconds("  of which for the optimising tier")
    assert 0 < hot <= total, err


def test_run_parser_alone_parses_as_the_whole_one():
    """`jitbt run ...` builds only the run subcommand's parser (main): it must read every
    option as the whole command line's parser does, and the whole one still lists every
    subcommand."""
    from runtime.cli import build_parser
    argv = ["run", "--stats", "--no-cache", "--set", "clock=virtual", "-O", "1", "-E", "A=1",
            "--accuracy", "cycle", "prog", "--stats", "x"]
    assert vars(build_parser("run").parse_args(argv)) == vars(build_parser().parse_args(argv))
    usage = build_parser().format_usage()
    assert all(c in usage for c in ("run", "levels", "cache", "blocks", "prepare",
                                    "conformance"))


# Command lines `jitbt run` reads without argparse, and ones it leaves to argparse.
QUICK = [
    ["prog"], ["prog", "a", "b"], ["", "x"], ["prog", "-h"], ["prog", "-O", "-1", "--x=1"],
    ["--stats", "prog", "--stats", "x"],
    ["--stats", "--no-cache", "--set", "clock=virtual", "-O", "1", "-E", "A=1", "--accuracy",
     "cycle", "prog", "--stats", "x"],
    ["--set=clock=virtual", "--set", "opt=1", "prog"], ["--accuracy=hle", "prog", "-O", "2"],
    ["--trace", "t.txt", "--argv0", "foo", "prog"], ["-U", "HOME", "-E", "X=", "prog", "y"],
    ["--accuracy", "", "prog"], ["--strict", "--strace", "prog", "--help"], ["-O", "3", "prog"],
    ["--accuracy", "block", "--accuracy", "cycle", "prog"], ["--argv0=", "--no-cache", "p"],
]
TO_ARGPARSE = [
    [], ["-h"], ["--help"], ["--stat", "p"], ["-O2", "p"], ["-O", "4", "p"], ["-O", "x", "p"],
    ["--accuracy"], ["--accuracy", "-x", "p"], ["--", "p"], ["p", "--", "x"], ["-", "p"],
    ["--stats=1", "p"], ["-O=2", "p"], ["-E", "-1", "p"], ["--bogus", "p"], ["-EA=1", "p"],
]


@pytest.mark.parametrize("argv", QUICK)
def test_run_command_lines_read_without_argparse_read_as_argparse_does(argv):
    """main reads `jitbt run`'s usual command lines itself (quick_run_args: importing argparse
    and what it uses cost every run 5-6 ms): every one it reads must come out as argparse's
    parser reads it."""
    from runtime.cli import build_parser, quick_run_args
    quick = quick_run_args(["run"] + argv)
    assert quick is not None
    assert vars(quick) == vars(build_parser("run").parse_args(["run"] + argv))


def test_the_quick_reading_knows_every_run_option_as_argparse_declares_it():
    """quick_run_args's tables of options and build_parser's declarations must not drift: every
    option of the run subcommand but help is in exactly one table, under argparse's dest, as
    a flag, a value or a repeatable value as argparse takes it, and nothing else is."""
    import argparse

    from runtime.cli import RUN_FLAGS, RUN_LISTS, RUN_VALUES, build_parser
    sub = next(a for a in build_parser("run")._actions
               if isinstance(a, argparse._SubParsersAction)).choices["run"]
    seen = set()
    for action in sub._actions:
        for option in action.option_strings:
            if option in ("-h", "--help"):
                continue
            table = (RUN_FLAGS if isinstance(action, argparse._StoreTrueAction) else
                     RUN_LISTS if isinstance(action, argparse._AppendAction) else RUN_VALUES)
            assert table.get(option) == action.dest, option
            seen.add(option)
    assert seen == set(RUN_FLAGS) | set(RUN_VALUES) | set(RUN_LISTS)


@pytest.mark.parametrize("argv", TO_ARGPARSE)
def test_other_run_command_lines_are_left_to_argparse(argv):
    from runtime.cli import quick_run_args
    assert quick_run_args(["run"] + argv) is None
    assert quick_run_args(["levels"]) is None


def test_a_warm_run_imports_neither_argparse_nor_json_nor_the_lifter():
    """A run reads its command line, its stored records and shapes and its handler library
    without argparse or json (persist.encode), and one that lifts nothing (hello world's,
    whose code is all interpreted) does not import the lifter; a help request still gets
    argparse's help."""
    import subprocess
    import sys
    from conftest import ROOT
    probe = ("import sys\nfrom runtime.cli import main\nstatus = main(sys.argv[1:])\n"
             "sys.stderr.write('imported %s\\n' % [m for m in ('argparse', 'json', "
             "'translator.lifter') if m in sys.modules])\n")
    for _ in range(2):                     # the second warm (its records and shapes stored)
        r = subprocess.run([sys.executable, "-c", probe, "run", str(BUILD / "hello")],
                           capture_output=True, cwd=ROOT, env=clean_env(), timeout=300)
        assert r.returncode == 0 and b"imported []" in r.stderr, r.stderr
    r = run_jitbt("run", "--help")
    assert r.returncode == 0 and b"--accuracy" in r.stdout
