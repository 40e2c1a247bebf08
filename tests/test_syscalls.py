"""The Linux layer's syscalls, through guest programs that exercise them (guests/src/sys_*.c):
each runs natively and under jitbt with the same arguments (a fresh directory of its own), and
stdout, stderr and exit status must be identical. Also: --strace lines for file syscalls, and an
unknown syscall returning -ENOSYS with one report line (fatal with --strict)."""
from __future__ import annotations

import re

import pytest

from conftest import BUILD, clean_env, run_jitbt, run_native

VARIANTS = ["O0", "O2", "O2-pie"]


def _dirs(tmp_path):
    native, jit = tmp_path / "native", tmp_path / "jitbt"
    native.mkdir()
    jit.mkdir()
    return native, jit


def _same(native, jit, native_dir=None, jit_dir=None):
    out_n, out_j = native.stdout, jit.stdout
    if native_dir is not None:      # the programs may print their directory
        out_n = out_n.replace(bytes(native_dir), b"DIR")
        out_j = out_j.replace(bytes(jit_dir), b"DIR")
    assert jit.stderr == native.stderr
    assert out_j == out_n
    assert jit.returncode == native.returncode


@pytest.mark.parametrize("prog", ["sys_files", "sys_mmap"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_in_a_directory_same_as_native(tmp_path, prog, variant):
    native_dir, jit_dir = _dirs(tmp_path)
    guest = BUILD / f"{prog}-{variant}"
    native = run_native(guest, [str(native_dir)], env=clean_env())
    jit = run_jitbt("run", guest, native_dir.parent / "jitbt", env=clean_env())
    assert native.returncode == 0, native.stderr
    _same(native, jit, str(native_dir).encode(), str(jit_dir).encode())
    assert not list(native_dir.iterdir()) and not list(jit_dir.iterdir()), "guests clean up"


@pytest.mark.parametrize("variant", VARIANTS)
def test_misc_same_as_native(variant):
    guest = BUILD / f"sys_misc-{variant}"
    native = run_native(guest, env=clean_env())
    jit = run_jitbt("run", guest, env=clean_env())
    assert native.returncode == 0, native.stderr
    _same(native, jit)
    out = jit.stdout.decode()
    assert "sysname Linux" in out and "machine x86_64" in out
    assert "%fs:0 0x1122334455667788" in out and "%gs:0 0xfeedfacecafebeef" in out


@pytest.mark.parametrize("mode", ["segv-none", "segv-ro"])
def test_protection_fault_kills_like_native(tmp_path, mode):
    guest = BUILD / "sys_mmap-O2"
    native = run_native(guest, [str(tmp_path), mode])
    jit = run_jitbt("run", guest, tmp_path, mode)
    assert native.returncode == -11
    assert jit.returncode == native.returncode == -11   # both killed by SIGSEGV
    assert jit.stdout == native.stdout != b""
    (line,) = jit.stderr.decode().splitlines()
    assert "SIGSEGV" in line


def test_strace_shows_file_syscalls_decoded(tmp_path):
    r = run_jitbt("run", "--strace", BUILD / "sys_files-O2", tmp_path, env=clean_env())
    assert r.returncode == 0
    err = r.stderr.decode()
    for pattern in (
            r"openat\(AT_FDCWD, 'd/f', O_WRONLY\|O_CREAT\|O_TRUNC\|O_CLOEXEC, 0644\) = 3",
            r"openat\(AT_FDCWD, 'd/f', O_RDONLY, 00\) = 3",
            r"read\(3, 'HELLO', 5\) = 5",
            r"close\(3\) = 0",
            r"close\(3\) = -1 EBADF \(Bad file descriptor\)",
            r"mkdir\('d', 0755\) = -1 EEXIST \(File exists\)",
            r"fcntl\(3, F_GETFD, 0x0\) = 1",
            r"lseek\(3, 0, SEEK_END\) = 19",
            r"fstat\(3, \{st_mode=S_IFREG\|0644, st_size=19, \.\.\.\}\) = 0",
            r"dup3\(3, 11, O_CLOEXEC\) = 11"):
        assert re.search(pattern, err), pattern


def test_strace_shows_mmap_flags():
    r = run_jitbt("run", "--strace", BUILD / "sys_mmap-O2", env=clean_env())
    assert re.search(r"mmap\(NULL, 12288, PROT_READ\|PROT_WRITE, MAP_PRIVATE\|MAP_ANONYMOUS, -1, "
                     r"0\) = 0x[0-9a-f]+", r.stderr.decode())


def test_unknown_syscall_returns_enosys_and_is_reported_once():
    guest = BUILD / "sys_misc-O2"
    native = run_native(guest, ["enosys"])
    jit = run_jitbt("run", guest, "enosys")
    assert native.stdout == jit.stdout == b"syscall 500: -38\n"
    assert jit.returncode == native.returncode == 0
    assert jit.stderr.decode().splitlines() == ["jitbt: unimplemented syscall 500, returning -ENOSYS"]


def test_unknown_syscall_is_fatal_with_strict():
    jit = run_jitbt("run", "--strict", BUILD / "sys_misc-O2", "enosys")
    assert jit.returncode != 0 and jit.stdout == b""
    (line,) = jit.stderr.decode().splitlines()
    assert "unimplemented syscall 500" in line and "--strict" in line


def test_strace_ends_with_a_summary_of_unimplemented_syscalls():
    jit = run_jitbt("run", "--strace", BUILD / "sys_misc-O2", "enosys")
    lines = jit.stderr.decode().splitlines()
    assert any(line.startswith("[") and "syscall_500(" in line and "ENOSYS" in line for line in lines)
    assert lines[-1] == "jitbt: unimplemented syscalls met: 500 1x"
