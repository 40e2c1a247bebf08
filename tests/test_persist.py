"""The persistent translation cache: a warm run loads object code instead of compiling, gives the
same output, survives corrupt and truncated files (detected, rebuilt, never executed) and runs
sharing the cache at the same time."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import BUILD, ROOT, run_jitbt

GUEST = BUILD / "libcmix-glibc"


def _run(cache: Path, tmp: Path, *extra, host: str = "native"):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), JITBT_HOST_CPU=host)
    out = tmp / f"out{len(list(tmp.iterdir()))}"
    out.mkdir()
    # (background=off: which hot regions reach the store must not depend on the thread's
    # timing; baseline=jit: every block is compiled, and a warm run loads all of them by their
    # stored shapes: tests/test_interp.py has the interpreter's records)
    return run_jitbt("run", "--stats", "--set", "background=off", "--set", "baseline=jit",
                     *extra, GUEST, out, env=env)


def _store(r) -> dict:
    line = next(x for x in r.stderr.decode().splitlines() if "persistent cache" in x)
    return {k: int(v) for v, k in re.findall(r"(\d+) (hits|misses|stored|corrupt)", line)}


def _stdout_of_native(tmp):
    d = tmp / "native"
    d.mkdir()
    return subprocess.run([str(GUEST), str(d)], capture_output=True).stdout


def test_warm_run_loads_instead_of_compiling(tmp_path):
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    runs.mkdir()
    cold = _run(cache, runs)
    warm = _run(cache, runs)
    assert cold.stdout == warm.stdout == _stdout_of_native(tmp_path)
    c, w = _store(cold), _store(warm)
    assert c["hits"] == 0 and c["stored"] > 10
    assert w["misses"] == 0 and w["hits"] == c["stored"]
    compile_s = float(re.search(r"optimising \+ compiling\s+([\d.]+)", warm.stderr.decode())[1])
    assert compile_s < 0.1
    # The warm run decodes only what its optimising tier compiles again (the hot regions):
    # every other region is found by its stored shape and loaded without decoding.
    assert _stat(warm, "blocks decoded") == _stat(warm, r"hot regions \(optimising tier\)", 2)
    assert _stat(cold, "blocks decoded") > 10 * _stat(warm, "blocks decoded")


def test_code_for_this_cpu_and_generic_code_are_kept_apart(tmp_path):
    """Code generated for this host's CPU (JITBT_HOST_CPU=native, the default) and baseline
    x86-64 code (generic) are stored under different keys: a run of one finds none of the
    other's, its second run finds all of its own, and both run the guest as it runs
    natively."""
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    runs.mkdir()
    native = _run(cache, runs)
    generic = _run(cache, runs, host="generic")
    again = _run(cache, runs, host="generic")
    assert native.stdout == generic.stdout == again.stdout == _stdout_of_native(tmp_path)
    n, g, a = _store(native), _store(generic), _store(again)
    assert n["stored"] > 10 and g["hits"] == 0 and g["stored"] > 10
    assert a["misses"] == 0 and a["hits"] == g["stored"]


def test_the_cpu_in_the_keys_is_the_cpu_code_is_generated_for(monkeypatch):
    """The keys describe the host CPU by /proc/cpuinfo (read without LLVM); the code generator
    is told LLVM's own detection of the same CPU. Both read cpuid: a feature the kernel
    reports is one LLVM generates code with, and one it does not report is not. Where
    /proc/cpuinfo cannot describe the CPU, code is generic (no CPU name, no features)."""
    from translator import host, llvmraw
    monkeypatch.delenv(host.ENV, raising=False)
    monkeypatch.setattr(host, "_identity", None)
    monkeypatch.setattr(llvmraw, "_HOST_CPU", None)
    cpu, features = llvmraw.host_cpu()
    if host._cpuinfo() is None:
        assert host.choice() == "generic" and (cpu, features) == ("", "")
        return
    assert host.choice() == "native"
    flags = host.flags()
    assert cpu and cpu != "generic"
    llvm = {f[1:]: f[0] == "+" for f in features.split(",") if f}
    # cpuinfo's name for each feature, where LLVM's differs
    for ours, theirs in [("avx", "avx"), ("avx2", "avx2"), ("fma", "fma"), ("bmi1", "bmi"),
                         ("bmi2", "bmi2"), ("popcnt", "popcnt"), ("sse4_2", "sse4.2"),
                         ("avx512f", "avx512f"), ("abm", "lzcnt")]:
        if theirs in llvm:
            assert (ours in flags) == llvm[theirs], (ours, theirs)


def test_a_host_cpu_choice_that_is_not_one_is_refused(tmp_path):
    r = run_jitbt("run", BUILD / "hello", env=dict(os.environ, JITBT_HOST_CPU="pentium"))
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode().strip() == \
        "jitbt: JITBT_HOST_CPU='pentium': expected one of native, generic"


def _stat(r, name: str, group: int = 1) -> int:
    """A number from --stats: the first on the row, or (group 2) the one in parentheses."""
    return int(re.search(rf"{name}\s+(\d+)(?: \((\d+) blocks\))?", r.stderr.decode())[group])


def test_shapes_that_no_longer_fit_the_code_are_not_used(tmp_path):
    """A region shape whose bytes are corrupt, or whose code differs, is ignored: the run decodes
    and its output is still the native one."""
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    runs.mkdir()
    cold = _run(cache, runs)
    shapes = sorted(cache.rglob("*.shape"))
    assert len(shapes) > 10
    for i, f in enumerate(shapes):
        data = f.read_bytes()
        f.write_bytes(data[:-3] + b"]]]" if i % 2 else data.replace(b"[", b"[1", 1))
    again = _run(cache, runs)
    assert again.returncode == cold.returncode
    assert again.stdout == cold.stdout == _stdout_of_native(tmp_path)
    assert _stat(again, "blocks decoded") > len(shapes) // 2


def test_corrupt_and_truncated_entries_are_rebuilt(tmp_path):
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    runs.mkdir()
    first = _run(cache, runs)
    files = sorted(cache.rglob("*.o"))
    assert files
    for i, f in enumerate(files):
        data = f.read_bytes()
        if i % 2:
            f.write_bytes(data[: len(data) // 2])                       # truncated
        else:
            f.write_bytes(data[:-16] + bytes(b ^ 0xFF for b in data[-16:]))  # corrupt payload
    second = _run(cache, runs)
    assert second.returncode == first.returncode and second.stdout == first.stdout
    s = _store(second)
    assert s["corrupt"] == len(files) and s["stored"] == len(files)
    third = _run(cache, runs)
    assert _store(third)["corrupt"] == 0 and third.stdout == first.stdout


def test_concurrent_runs_share_the_cache(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    dirs = [tmp_path / f"d{i}" for i in range(3)]
    procs = []
    for d in dirs:
        d.mkdir()
        procs.append(subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", str(GUEST), str(d)],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 7 for p in procs)
    assert len({o for o, _ in outs}) == 1 and outs[0][0] == _stdout_of_native(tmp_path)
    assert not list(cache.rglob(".tmp-*"))       # no half-written file left behind


def test_no_cache_and_cache_commands(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "c"))
    r = run_jitbt("run", "--no-cache", "--stats", BUILD / "hello", env=env)
    assert re.search(r"persistent cache\s+off", r.stderr.decode())
    assert not (tmp_path / "c").exists()
    run_jitbt("run", BUILD / "hello", env=env)
    info = run_jitbt("cache", "info", env=env).stdout.decode()
    assert re.search(r": [1-9]\d* entries", info)
    assert "removed" in run_jitbt("cache", "clear", env=env).stdout.decode()
    assert ": 0 entries" in run_jitbt("cache", "info", env=env).stdout.decode()


def test_a_later_run_forms_the_hot_region_the_first_run_stored(tmp_path):
    """Which blocks a hot region takes in depends on what has run (and what is hot or still
    compiling) when its head turns hot. A later run with the cache reuses the region stored
    under the head, instead of forming another one and compiling it again."""
    from runtime.memory import GuestMemory
    from translator import Translator
    from translator.conformance import assemble
    from translator.knobs import Knobs
    from translator.persist import ObjectStore
    from translator.state import PERM_R, PERM_X
    base = 0x400000
    mem = GuestMemory()
    mem.map(base, 0x1000, PERM_R | PERM_X)
    mem.poke(base, assemble("loop: add rax, rbx; dec rcx; jnz loop; mov rdx, rax; ret", base))
    knobs = Knobs(background="off", baseline="jit")    # (a miss compiles loop and tail)

    def region(store, executed):
        tr = Translator(mem.fetch, knobs, store=store)
        tr.lookup(base)                        # the cold translations, loop and tail
        (t,) = tr.promote(base, executed)
        return t, tr
    first, _ = region(ObjectStore(tmp_path), lambda a: a == base)      # only the loop has run
    fresh, _ = region(None, lambda a: True)                             # the tail has run too
    assert len(fresh.extents()) == 2 and len(first.extents()) == 1
    later, tr = region(ObjectStore(tmp_path), lambda a: True)
    assert later.extents() == first.extents() and later.name == first.name
    assert tr.codegen.seconds_compile == 0 and tr.store.hits >= 1     # loaded, not compiled


def test_a_warm_run_takes_the_stored_hot_region_when_its_head_warms_up(tmp_path):
    """A warm run need not wait for a block to turn hot again (20,000 runs of slower code,
    and meanwhile other blocks of the same loops turn hot first and form other regions): the
    hot region an earlier run stored at a block is loaded once that block has warmed up."""
    from runtime.memory import GuestMemory
    from translator import Translator
    from translator.conformance import assemble
    from translator.knobs import Knobs
    from translator.persist import ObjectStore
    from translator.state import PERM_R, PERM_X
    base = 0x400000
    mem = GuestMemory()
    mem.map(base, 0x1000, PERM_R | PERM_X)
    mem.poke(base, assemble("loop: add rax, rbx; dec rcx; jnz loop; mov rdx, rax; ret", base))
    knobs = Knobs(background="off")             # (the default baseline: interpreted first)

    first = Translator(mem.fetch, knobs, store=ObjectStore(tmp_path))
    first.lookup(base)
    assert first.is_interpreted(base)
    assert first.stored_hot(base) == []         # nothing stored yet: compiled cold, as before
    (hot,) = first.promote(base, lambda a: True)

    later = Translator(mem.fetch, knobs, store=ObjectStore(tmp_path))
    later.lookup(base)
    assert later.is_interpreted(base)
    (t,) = later.stored_hot(base)
    assert t.hot and t.extents() == hot.extents() and t.name == hot.name
    assert later.codegen.seconds_compile == 0 and later.stats.regions_early == 1
    # Changed code at the head: the stored region is not used.
    mem.poke(base, assemble("loop: add rax, rcx; dec rcx; jnz loop; mov rdx, rax; ret", base))
    changed = Translator(mem.fetch, knobs, store=ObjectStore(tmp_path))
    changed.lookup(base)
    assert changed.stored_hot(base) == []


def test_stored_values_round_trip_and_anything_else_is_refused():
    """The structured part of stored entries (region shapes, records' and handler chunks'
    indexes: persist.encode) comes back as it was; anything decode was not made for, an entry
    of the JSON format used before or bytes that happen to carry the tag but no value, is a
    ValueError (the caller's "not stored"), never a crash or an allocation of the size some
    bytes claim."""
    from translator.persist import decode, encode
    value = {"keys": ["add r64 r64", "rule syscall"], "blocks": [[0x401000, 0x401010, None, 16,
                                                                   [0, 1], [0x401010]]]}
    assert decode(encode(value)) == value
    assert decode(encode([[1, 2, None, 3]])) == [[1, 2, None, 3]]
    for bad in (b'{"keys": [], "blocks": []}', b"[[4198400, 4198416, null, 4]]", b"",
                encode(value)[:-3], encode(value)[:2] + b"[\xff\xff\xff\x7f",
                encode(value)[:2] + b"\x00"):
        try:
            decode(bad)
        except ValueError:
            continue
        raise AssertionError(f"decoded {bad!r}")


def test_warmed_up_blocks_are_compiled_for_the_store_on_a_thread(tmp_path):
    """warmup=auto with a store: blocks that warm up stay interpreted in this run while their
    cold module is compiled on a thread and stored; a later run loads that module when the
    blocks warm up there (compiled code, nothing compiled). With background=off, or an
    explicit warmup, they are compiled at once as before."""
    from runtime.memory import GuestMemory
    from translator import Translator
    from translator.conformance import assemble
    from translator.knobs import Knobs
    from translator.persist import ObjectStore
    from translator.state import PERM_R, PERM_X
    base = 0x400000
    mem = GuestMemory()
    mem.map(base, 0x1000, PERM_R | PERM_X)
    mem.poke(base, assemble("loop: add rax, rbx; dec rcx; jnz loop; mov rdx, rax; ret", base))

    first = Translator(mem.fetch, Knobs(), store=ObjectStore(tmp_path))
    first.lookup(base)
    out = first.warm_up(base, lambda a: 64)
    assert [t.address for t, _ in out] == [base] and out[0][0].interpreted
    assert first.cold.seconds_compile == 0 and first.stats.stored_later == 1
    assert first.warm_up(base, lambda a: 64)[0][0].interpreted
    assert len(first.warm_keys) == 1 and first.stats.stored_later == 1     # (sent once)
    first.close()
    assert first.warm_worker.jobs == 1 and first.store.stored == 1

    later = Translator(mem.fetch, Knobs(), store=ObjectStore(tmp_path))
    later.lookup(base)
    (t, runs), = later.warm_up(base, lambda a: 64)
    assert not t.interpreted and not t.hot and runs == 64
    assert later.cold.seconds_compile == 0 and later.store.hits == 1
    assert later.warm_worker is None

    for knobs in (Knobs(background="off"), Knobs(warmup=64)):
        now = Translator(mem.fetch, knobs, store=ObjectStore(tmp_path / knobs.background))
        now.lookup(base)
        (t, _), = now.warm_up(base, lambda a: 64)
        assert not t.interpreted and now.warm_worker is None


def test_stored_files_are_written_whole(tmp_path):
    """persist.write_file: writers racing on one path leave one whole payload and no
    temporary file; a folder that cannot be made is an OSError, which the store shrugs off."""
    import threading
    from translator.persist import ObjectStore, write_file
    path = str(tmp_path / "a" / "b" / "entry")
    payloads = [bytes([i]) * 100_000 for i in range(8)]
    threads = [threading.Thread(target=write_file, args=(path, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Path(path).read_bytes() in payloads
    assert [p.name for p in Path(path).parent.iterdir()] == ["entry"]
    (tmp_path / "file").write_bytes(b"")
    try:
        write_file(str(tmp_path / "file" / "x" / "entry"), b"data")
        raise AssertionError("no error")
    except OSError:
        pass
    store = ObjectStore(tmp_path / "file")
    store.put("ab" * 16, b"code")
    assert store.stored == 0 and store.get("ab" * 16) is None
