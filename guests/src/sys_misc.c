/* sys_misc.c - process information, time, randomness and the thread pointer: ids compared as
 * relations, uname, resource limits, affinity, prctl names, arch_prctl FS/GS (and %fs:0 read
 * after setting it), clocks, sleeps, getrandom.
 * Usage: sys_misc               prints results that are the same on every run
 *        sys_misc enosys        makes an unknown syscall (500) and prints its result */
#include "sys.h"

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004
#define RLIMIT_STACK 3
#define RLIMIT_NOFILE 7

static void show(const char *label, long v)
{
    put_str(label);
    put_str(": ");
    put_i64(v);
    put_char('\n');
}

static i64 now_ns(int clock)
{
    struct ktimespec t;
    syscall2(SYS_clock_gettime, clock, (long)&t);
    return t.tv_sec * 1000000000l + t.tv_nsec;
}

static u64 tls_block[4] = {0x1122334455667788ul, 0x99aabbccddeeff00ul, 0, 0};
static u64 gs_block[2] = {0xfeedfacecafebeeful, 7};

int main(int argc, char **argv)
{
    if (argc >= 2 && str_eq(argv[1], "enosys")) {
        show("syscall 500", syscall0(500));
        return 0;
    }
    char buf[512];

    /* ids */
    long pid = syscall0(SYS_getpid);
    show("gettid == getpid", syscall0(SYS_gettid) == pid);
    show("set_tid_address == tid", syscall1(SYS_set_tid_address, (long)buf) == pid);
    show("getppid > 0", syscall0(SYS_getppid) > 0);
    show("getuid", syscall0(SYS_getuid));
    show("geteuid", syscall0(SYS_geteuid));
    show("getgid", syscall0(SYS_getgid));
    show("getegid", syscall0(SYS_getegid));
    long ng = syscall2(SYS_getgroups, 0, 0);
    show("getgroups count", ng);
    show("getgroups full", syscall2(SYS_getgroups, 64, (long)buf) == ng);
    show("set_robust_list", syscall2(SYS_set_robust_list, (long)buf, 24));
    show("set_robust_list bad size", syscall2(SYS_set_robust_list, (long)buf, 5));
    show("sched_yield", syscall0(SYS_sched_yield));

    /* uname */
    show("uname", syscall1(SYS_uname, (long)buf));
    put_str("  sysname ");
    put_str(buf);
    put_str("\n  machine ");
    put_str(buf + 4 * 65);
    put_char('\n');
    show("  release non-empty", buf[2 * 65] != 0);
    show("uname bad pointer", syscall1(SYS_uname, 8));

    /* prctl */
    memset(buf, 0, 32);
    show("PR_GET_NAME", syscall2(SYS_prctl, 16, (long)buf));
    put_str("  name ");
    put_str(buf);
    put_char('\n');
    show("PR_SET_NAME", syscall2(SYS_prctl, 15, (long)"a-rather-long-thread-name"));
    syscall2(SYS_prctl, 16, (long)buf);
    put_str("  name ");
    put_str(buf);
    put_char('\n');
    show("prctl unknown", syscall2(SYS_prctl, 9999, 0));

    /* arch_prctl */
    u64 base = 1;
    show("ARCH_GET_FS", syscall2(SYS_arch_prctl, ARCH_GET_FS, (long)&base));
    show("  initial fs base", base);
    show("ARCH_SET_FS", syscall2(SYS_arch_prctl, ARCH_SET_FS, (long)tls_block));
    syscall2(SYS_arch_prctl, ARCH_GET_FS, (long)&base);
    show("  get == set", base == (u64)tls_block);
    u64 v0, v1;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(v0));
    __asm__ volatile("mov %%fs:8, %0" : "=r"(v1));
    put_kv_hex64("  %fs:0 ", v0);
    put_kv_hex64("  %fs:8 ", v1);
    show("ARCH_SET_GS", syscall2(SYS_arch_prctl, ARCH_SET_GS, (long)gs_block));
    syscall2(SYS_arch_prctl, ARCH_GET_GS, (long)&base);
    show("  gs get == set", base == (u64)gs_block);
    __asm__ volatile("mov %%gs:0, %0" : "=r"(v0));
    put_kv_hex64("  %gs:0 ", v0);
    show("ARCH_SET_FS non-canonical", syscall2(SYS_arch_prctl, ARCH_SET_FS, 1l << 60));
    show("arch_prctl unknown", syscall2(SYS_arch_prctl, 0x9999, 0));

    /* resource limits */
    u64 lim[2], old[2];
    show("getrlimit NOFILE", syscall2(SYS_getrlimit, RLIMIT_NOFILE, (long)lim));
    show("  soft <= hard", lim[0] <= lim[1]);
    u64 newlim[2] = {16, lim[1]};
    show("prlimit64 NOFILE 16", syscall4(SYS_prlimit64, 0, RLIMIT_NOFILE, (long)newlim,
                                         (long)old));
    show("  old soft == getrlimit", old[0] == lim[0]);
    show("  dup2 to 20", syscall2(SYS_dup2, 1, 20));
    show("  F_DUPFD 16", syscall3(SYS_fcntl, 1, F_DUPFD, 16));
    show("  F_DUPFD 15", syscall3(SYS_fcntl, 1, F_DUPFD, 15));
    show("  dup", syscall1(SYS_dup, 1));
    syscall1(SYS_close, 15);
    syscall1(SYS_close, 3);
    syscall2(SYS_getrlimit, RLIMIT_NOFILE, (long)lim);
    show("  soft now", lim[0]);
    u64 bad[2] = {100, 10};
    show("setrlimit soft > hard", syscall2(SYS_setrlimit, RLIMIT_NOFILE, (long)bad));
    show("getrlimit bad resource", syscall2(SYS_getrlimit, 99, (long)lim));
    show("prlimit64 no such pid", syscall4(SYS_prlimit64, 2147483647, RLIMIT_NOFILE, 0, (long)lim));
    show("getrlimit STACK", syscall2(SYS_getrlimit, RLIMIT_STACK, (long)lim));

    /* affinity, usage */
    u64 mask[16];
    memset(mask, 0, sizeof mask);
    long n = syscall3(SYS_sched_getaffinity, 0, sizeof mask, (long)mask);
    show("sched_getaffinity > 0", n > 0);
    long cpus = 0;
    for (int i = 0; i < 16; i++)
        for (u64 w = mask[i]; w; w &= w - 1)
            cpus++;
    show("  cpus >= 1", cpus >= 1);
    show("sysinfo", syscall1(SYS_sysinfo, (long)buf));
    show("  uptime > 0", *(long *)buf > 0);
    show("getrusage self", syscall2(SYS_getrusage, 0, (long)buf));
    show("getrusage bad who", syscall2(SYS_getrusage, 5, (long)buf));
    show("times > 0", syscall1(SYS_times, (long)buf) > 0);

    /* time */
    i64 t0 = now_ns(CLOCK_MONOTONIC), t1 = now_ns(CLOCK_MONOTONIC);
    show("monotonic does not go back", t1 >= t0);
    struct ktimespec ts;
    syscall2(SYS_clock_gettime, CLOCK_REALTIME, (long)&ts);
    show("realtime after 2020", ts.tv_sec > 1577836800);
    show("  nsec in range", ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    show("clock_gettime bad clock", syscall2(SYS_clock_gettime, 99, (long)&ts));
    show("clock_gettime bad pointer", syscall2(SYS_clock_gettime, CLOCK_MONOTONIC, 8));
    show("clock_getres", syscall2(SYS_clock_getres, CLOCK_MONOTONIC, (long)&ts));
    show("  res", ts.tv_sec * 1000000000l + ts.tv_nsec);
    i64 tv[2];
    show("gettimeofday", syscall2(SYS_gettimeofday, (long)tv, 0));
    show("  usec in range", tv[1] >= 0 && tv[1] < 1000000);
    i64 t = 0;
    long tr = syscall1(SYS_time, (long)&t);
    show("time matches", tr == t && tr - tv[0] >= -1 && tr - tv[0] <= 2);   /* time() reads a coarse clock */
    struct ktimespec req = {0, 20000000};
    t0 = now_ns(CLOCK_MONOTONIC);
    show("nanosleep 20ms", syscall2(SYS_nanosleep, (long)&req, 0));
    show("  slept >= 20ms", now_ns(CLOCK_MONOTONIC) - t0 >= 20000000);
    req.tv_nsec = 1000000000;
    show("nanosleep bad nsec", syscall2(SYS_nanosleep, (long)&req, 0));
    req.tv_nsec = 10000000;
    t0 = now_ns(CLOCK_MONOTONIC);
    show("clock_nanosleep 10ms", syscall4(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (long)&req, 0));
    show("  slept >= 10ms", now_ns(CLOCK_MONOTONIC) - t0 >= 10000000);
    struct ktimespec abs = {0, 0};
    t0 = now_ns(CLOCK_MONOTONIC) + 10000000;
    abs.tv_sec = t0 / 1000000000;
    abs.tv_nsec = t0 % 1000000000;
    show("clock_nanosleep absolute", syscall4(SYS_clock_nanosleep, CLOCK_MONOTONIC, 1,
                                              (long)&abs, 0));
    show("  reached deadline", now_ns(CLOCK_MONOTONIC) >= t0);

    /* randomness */
    u8 r1[32], r2[32];
    show("getrandom 32", syscall3(SYS_getrandom, (long)r1, 32, 0));
    show("getrandom again", syscall3(SYS_getrandom, (long)r2, 32, 0));
    show("  differ", memcmp(r1, r2, 32) != 0);
    show("getrandom bad flags", syscall3(SYS_getrandom, (long)r1, 32, 0x100));
    show("getrandom bad pointer", syscall3(SYS_getrandom, 8, 32, 0));
    return 0;
}
