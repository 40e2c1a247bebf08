"""The benchmark suite: each workload run natively, under jitbt and under qemu-x86_64, in one run.

    .venv/bin/python bench/run.py [--runs N] [--qemu-runs N] [--only sort,crc32]
                                  [--levels hle,datapath] [--out bench/results]
    make bench                     # builds the workloads, then runs this

jitbt runs at the default level (block) cold and warm, and at every other accuracy level warm
(`jitbt cold`, `jitbt warm`, then `jitbt datapath`, `jitbt cycle`, ...): the datapath-versus-HLE
trade-off on one page.

For every workload the runner checks that all configurations print the same output, takes the
median wall time of N runs (under qemu-x86_64, --qemu-runs of a workload it needs 5 s or more
for; the JSON's "runs" says how many each configuration had), and prints a table of times and
ratios to native with the geometric mean, plus jitbt's translation statistics from --stats
runs: blocks, compile seconds and translation throughput (guest instructions per second of
decoding, lifting and compiling) cold, over all tiers and without the optimising tier (its
forming of hot regions, their IR and their -O2: recompiling code that already runs), and the
persistent-cache hits of a warm run. Start-up is measured apart: a static glibc hello world
(bench/workloads/hello.c), native, cold, warm and under qemu-x86_64, median of 5. It writes
JSON (for machines) and a PNG chart (ratios to native, log scale) to the output folder. It
measures and reports; it never fails on speed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / "build"


def workloads() -> list[str]:
    out = subprocess.run(["make", "-s", "-C", str(ROOT / "bench"), "list"], capture_output=True,
                         text=True, check=True).stdout
    return out.split()


# The `jitbt` command users run (the virtual environment's script beside this Python), else the
# module: `-m` goes through runpy, whose imports (importlib.util, contextlib) add 2-4 ms to a start.
_SCRIPT = os.path.join(os.path.dirname(sys.executable), "jitbt")
JITBT = [_SCRIPT, "run"] if os.access(_SCRIPT, os.X_OK) else [sys.executable, "-m", "runtime.cli",
                                                                "run"]
WARM_CACHE = ROOT / "bench" / "results" / "cache"


def configurations(levels=None) -> dict[str, list[str]]:
    """name -> command prefix. jitbt runs cold (no persistent cache: everything is translated)
    and warm (a cache filled by an untimed run first) at the default level, and warm at each
    other accuracy level in `levels` (default: all of them)."""
    from translator.knobs import DEFAULT_LEVEL, LEVELS
    configs = {"native": [], "jitbt cold": JITBT + ["--no-cache"], "jitbt warm": JITBT}
    for level in (levels if levels is not None else LEVELS):
        if level != DEFAULT_LEVEL:
            configs[f"jitbt {level}"] = JITBT + ["--accuracy", level]
    qemu = shutil.which("qemu-x86_64")
    if qemu:
        configs["qemu-x86_64"] = [qemu]
    return configs


def timed(cmd: list[str], timeout: float) -> tuple[float, bytes, int]:
    t0 = time.perf_counter()
    env = dict(os.environ, XDG_CACHE_HOME=str(WARM_CACHE))
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=ROOT, env=env)
    return time.perf_counter() - t0, p.stdout, p.returncode


STAT_KEYS = {"blocks translated": "blocks", "guest instructions translated": "insns",
             "blocks interpreted first": "interp_blocks",
             "instructions interpreted first": "interp_insns",
             "time making interpreter records": "records_s",
             "blocks compiled once interpreted": "warmed",
             "time optimising + compiling": "compile_s", "time parsing IR": "parse_s",
             "time building IR": "ir_s", "time decoding": "decode_s",
             "time starting LLVM and compiling the dispatcher": "start_s",
             "time forming hot regions (decoding again)": "form_s",
             "blocks run by the dispatcher loop": "blocks_run",
             "persistent cache": "cache_hits",
             "time compiling on the background thread": "background_s",
             "time compiling cold halves on a second thread": "cold_worker_s",
             "of which for the optimising tier": "hot_ir_s"}


def jitbt_stats(path: Path, timeout: float) -> dict:
    """Translation statistics of a cold run (--no-cache), and the persistent-cache hits of a warm
    one (the cache filled by the timed runs)."""
    stats = _stats_of(JITBT + ["--no-cache", "--stats", str(path)], timeout)
    # Translation throughput: guest instructions made runnable for the first time (interpreted
    # first, or compiled without the interpreter when it lacked a handler) per second of all
    # translation work: decoding, making records, building IR, parsing and compiling by every
    # tier, the optimising tier's work on the background thread and the cold halves compiled
    # on a second thread included (recompiling interpreted or cold code adds time, not
    # instructions), and so is forming hot regions (decoding their blocks again); starting
    # LLVM and compiling the dispatcher, once a process whatever the guest, is not. And the
    # interpreter's own: its instructions per second of decoding and making records.
    seconds = sum(stats.get(k, 0.0) for k in ("decode_s", "form_s", "records_s", "ir_s",
                                              "parse_s", "compile_s", "background_s",
                                              "cold_worker_s"))
    first = stats.get("interp_insns", 0) + stats.get("insns", 0) - stats.get("warm_insns", 0)
    stats["insns_per_s"] = first / seconds if seconds else 0.0
    # The same without the optimising tier, which recompiles code that already runs: forming
    # hot regions, building their IR (main thread) and their -O2 (background thread). What is
    # left is what making guest code runnable the first time (the interpreter's records, and
    # the cold tier's compiling of warm code) costs. (Until the sixteenth round this left out
    # only the -O2: forming and IR counted here, strings' 0.08 s of 0.37 s.)
    cold = seconds - sum(stats.get(k, 0.0) for k in ("background_s", "form_s", "hot_ir_s"))
    stats["first_insns_per_s"] = first / cold if cold else 0.0
    front = stats.get("decode_s", 0.0) + stats.get("records_s", 0.0)
    stats["interp_insns_per_s"] = stats.get("interp_insns", 0) / front if front else 0.0
    warm = _stats_of(JITBT + ["--stats", str(path)], timeout)
    stats["warm_hits"] = warm.get("cache_hits", 0)
    return stats


def _stats_of(cmd: list[str], timeout: float) -> dict:
    """--stats of a run with the cache folder the timed runs use (the cold one is told
    --no-cache: it translates everything, with the prepared handler library)."""
    env = dict(os.environ, XDG_CACHE_HOME=str(WARM_CACHE))
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=ROOT, env=env)
    stats = {}
    for line in p.stderr.decode(errors="replace").splitlines():
        m = re.match(r"\s+(.+?)\s{2,}([\d.]+)(?: \((\d+) instructions\))?", line)
        if m and m.group(1) in STAT_KEYS:
            stats[STAT_KEYS[m.group(1)]] = float(m.group(2))
            if m.group(3):
                stats[STAT_KEYS[m.group(1)].replace("warmed", "warm_insns")] = float(m.group(3))
    return stats


def startup(timeout: float, runs: int = 5) -> dict:
    """Wall time of a static hello world: native, jitbt cold and warm, qemu-x86_64."""
    path = str(BUILD / "hello")
    configs = {"native": [], "jitbt cold": JITBT + ["--no-cache"], "jitbt warm": JITBT}
    qemu = shutil.which("qemu-x86_64")
    if qemu:
        configs["qemu-x86_64"] = [qemu]
    timed(JITBT + [path], timeout)                  # fills the cache for the warm runs
    out = {}
    for name, prefix in configs.items():
        out[name] = statistics.median(timed(prefix + [path], timeout)[0] for _ in range(runs))
    return out


def geomean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


QEMU_FULL_BELOW = 5.0     # seconds: a workload qemu-x86_64 runs faster than this, it runs as
                          # often as the others whatever --qemu-runs says


def run_suite(names, runs: int, timeout: float, progress=None, levels=None,
              qemu_runs: int | None = None) -> dict:
    """`qemu_runs`: runs under qemu-x86_64 of a workload whose first run there took
    QEMU_FULL_BELOW seconds or more (matmul takes a minute); one that took less runs `runs`
    times like the others (crc32's cold comparison with qemu-x86_64 is within a few percent,
    and one run of qemu-x86_64 against jitbt's median of three decided it either way)."""
    configs = configurations(levels)
    results = {}
    for name in names:
        path = BUILD / name
        row = {"times": {}, "ok": True, "errors": []}
        outputs = {}
        # Rounds, each running every configuration once: this machine's speed drifts by up to
        # 2x within minutes, and a drift between the native runs and jitbt's would show up as
        # a ratio (with all native runs first, recursion's native median was 1.33 s in one run
        # of the suite and 2.33 s in another).
        samples = {cname: [] for cname in configs}
        failed = set()
        for cname, prefix in configs.items():
            if cname.startswith("jitbt") and cname != "jitbt cold":
                timed(prefix + [str(path)], timeout)      # fills the cache; not timed
        def wanted(cname: str) -> int:
            if cname != "qemu-x86_64" or not qemu_runs:
                return runs
            first = samples[cname][:1]
            return max(runs, qemu_runs) if first and first[0] < QEMU_FULL_BELOW else qemu_runs

        for r in range(max(runs, qemu_runs or 0)):
            for cname, prefix in configs.items():
                if r >= wanted(cname) or cname in failed:
                    continue
                try:
                    seconds, out, code = timed(prefix + [str(path)], timeout)
                except subprocess.TimeoutExpired:
                    row["errors"].append(f"{cname}: timed out after {timeout:.0f} s")
                    failed.add(cname)
                    continue
                if code != 0:
                    row["errors"].append(f"{cname}: exit status {code}")
                    failed.add(cname)
                    continue
                samples[cname].append(seconds)
                outputs[cname] = out
        row["runs"] = {cname: len(samples[cname]) for cname in configs}
        for cname in configs:
            row["times"][cname] = statistics.median(samples[cname]) if samples[cname] else None
            if progress:
                progress()
        reference = outputs.get("native")
        for cname, out in outputs.items():
            if out != reference:
                row["ok"] = False
                row["errors"].append(f"{cname}: output differs from native")
        row["output"] = (reference or b"").decode(errors="replace").strip()
        row["stats"] = jitbt_stats(path, timeout)
        results[name] = row
    return results


def ratios(results: dict) -> dict:
    out = {}
    for name, row in results.items():
        native = row["times"].get("native")
        out[name] = {c: (t / native if t and native else None) for c, t in row["times"].items()}
    return out


def report(results: dict, console) -> None:
    from rich.table import Table
    configs = list(next(iter(results.values()))["times"])
    r = ratios(results)
    table = Table(title="jitbt benchmark: median wall time, ratio to native")
    table.add_column("workload")
    for c in configs:
        table.add_column(c, justify="right")
    table.add_column("blocks interp / compiled", justify="right")
    table.add_column("compile s (bg)", justify="right")
    table.add_column("insns/s all tiers / without the optimising tier (interp)", justify="right")
    table.add_column("warm hits", justify="right")
    table.add_column("outputs")
    for name, row in results.items():
        cells = []
        for c in configs:
            t = row["times"][c]
            cells.append("—" if t is None else f"{t:.2f}s" + ("" if c == "native" else f" ({r[name][c]:.2f}x)"))
        st = row["stats"]
        compiled = f"{st.get('compile_s', 0):.2f} ({st.get('background_s', 0):.2f})"
        table.add_row(name, *cells,
                      f"{st.get('interp_blocks', 0):.0f} / {st.get('blocks', 0):.0f}", compiled,
                      f"{st.get('insns_per_s', 0):,.0f} / {st.get('first_insns_per_s', 0):,.0f} "
                      f"({st.get('interp_insns_per_s', 0):,.0f})",
                      f"{st.get('warm_hits', 0):.0f}",
                      "match" if row["ok"] else "; ".join(row["errors"]))
    means = [f"{geomean([r[n][c] for n in results]):.2f}x" if c != "native" else "1.00x"
             for c in configs]
    table.add_row("geometric mean", *means, "", "", "", "", "")
    console.print(table)


def chart(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    r = ratios(results)
    names = list(results)
    configs = [c for c in next(iter(results.values()))["times"] if c != "native"]
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 1.6), 5))
    width = 0.8 / max(1, len(configs))
    for i, c in enumerate(configs):
        ax.bar([x + i * width for x in range(len(names))], [r[n][c] or 0 for n in names], width, label=c)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("time / native (log scale)")
    ax.set_xticks([x + width * (len(configs) - 1) / 2 for x in range(len(names))], names, rotation=30)
    ax.legend()
    ax.set_title("jitbt at each accuracy level vs native vs qemu-x86_64")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--qemu-runs", type=int, help="runs under qemu-x86_64 of a workload whose "
                    f"first run there took {QEMU_FULL_BELOW:.0f} s or more (default: --runs; "
                    "qemu needs a minute for matmul); quicker ones run --runs times")
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--levels", help="comma-separated accuracy levels to run besides the "
                    "default (block); default: all of them, 'none' for none")
    a = ap.parse_args(argv)
    from translator.knobs import LEVELS
    levels = None if not a.levels else [] if a.levels == "none" else a.levels.split(",")
    if levels and set(levels) - set(LEVELS):
        print(f"--levels: unknown {sorted(set(levels) - set(LEVELS))}; expected {list(LEVELS)}")
        return 2
    from rich.console import Console
    from rich.progress import Progress
    console = Console(width=None if sys.stdout.isatty() else 200)
    names = a.only.split(",") if a.only else workloads()
    missing = [n for n in names if not (BUILD / n).exists()]
    if missing:
        console.print(f"missing workloads {missing}: run make -C bench first")
        return 1
    # Byte-compile jitbt's own modules first, as an install does: with PYTHONDONTWRITEBYTECODE
    # in the environment every run would otherwise compile the sources it imports again
    # (70 ms of start-up measured).
    import compileall
    for package in ("translator", "runtime"):
        compileall.compile_dir(str(ROOT / package), quiet=2)
    # The interpreter's handler library, as `make run` prepares it for a user (once per jitbt
    # version: jitbt's own compiled code, not a translation of the workloads, so cold runs
    # use it too; --no-cache runs never add to it).
    t0 = time.perf_counter()
    prep = subprocess.run(["make", "-s", "prepare"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, XDG_CACHE_HOME=str(WARM_CACHE)))
    if prep.returncode != 0:
        # (without it every run would build handlers as it meets their shapes, compiling the
        # blocks that lack one meanwhile: timings of something no user runs)
        console.print(f"handler library: `make prepare` failed, nothing measured:\n"
                      f"{prep.stdout.strip()}\n{prep.stderr.strip()}")
        return 1
    console.print(f"handler library: {prep.stdout.strip()} "
                  f"({time.perf_counter() - t0:.1f} s with decoding the programs)")
    total = len(names) * len(configurations(levels))
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("running workloads", total=total)
        results = run_suite(names, a.runs, a.timeout, lambda: progress.advance(task), levels,
                            a.qemu_runs)
    report(results, console)
    start = startup(a.timeout) if (BUILD / "hello").exists() else {}
    if start:
        console.print("start-up, static glibc hello world (median of 5): " + ", ".join(
            f"{k} {v:.3f} s" for k, v in start.items()))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpu": _cpu_name(),
            "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "cores": os.cpu_count(), "python": platform.python_version(), "runs": a.runs,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    r = ratios(results)
    configs = list(next(iter(results.values()))["times"])
    summary = {c: geomean([r[n][c] for n in results]) for c in configs}
    (out / "latest.json").write_text(json.dumps({"meta": meta, "results": results, "ratios": r,
                                                  "geomean": summary, "startup": start},
                                                 indent=2, default=str))
    try:
        chart(results, out / "latest.png")
    except ImportError:         # (run directly, without `make bench`'s extras)
        console.print(f"wrote {out / 'latest.json'}; no chart: matplotlib is missing "
                      "(`make bench` installs it: pip install -e '.[bench]')")
        return 0
    console.print(f"wrote {out / 'latest.json'} and {out / 'latest.png'}")
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
