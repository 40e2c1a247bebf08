/* sys_mmap.c - the address space: anonymous mmap/munmap/mprotect/mremap/madvise, MAP_FIXED,
 * MAP_FIXED_NOREPLACE, hints, and (given a directory) file-backed private and shared mappings.
 * Usage: sys_mmap [DIR]             prints results (never addresses, only relations)
 *        sys_mmap DIR segv-none     reads a PROT_NONE page: dies of SIGSEGV
 *        sys_mmap DIR segv-ro       writes a page made read-only: dies of SIGSEGV */
#include "sys.h"

#define PAGE 4096
#define FIXED_AT 0x300000000ul      /* below jitbt's 64 GiB guest space, free natively too */

static void show(const char *label, long v)
{
    put_str(label);
    put_str(": ");
    put_i64(v);
    put_char('\n');
}

static long mmap6(u64 addr, u64 len, int prot, int flags, int fd, long off)
{
    return syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
}

static char *anon(u64 addr, u64 len, int prot, int flags)
{
    return (char *)mmap6(addr, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static int is_err(long v) { return v < 0 && v > -4096; }

static void file_tests(const char *dir)
{
    show("chdir", syscall1(SYS_chdir, (long)dir));
    int fd = syscall4(SYS_openat, AT_FDCWD, (long)"data", O_CREAT | O_RDWR | O_TRUNC, 0644);
    static char page[PAGE];
    for (int i = 0; i < 3; i++) {
        memset(page, 'a' + i, PAGE);
        write_all(fd, page, PAGE);
    }
    write_all(fd, "tail", 4);                 /* file is 3 pages + 4 bytes */
    char *p = (char *)mmap6(0, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    show("file mmap ok", !is_err((long)p));
    show("  bytes", p[0] * 1000000 + p[PAGE] * 1000 + p[2 * PAGE]);
    show("  tail", memcmp(p + 3 * PAGE, "tail", 4) == 0);
    show("  zero past EOF", p[3 * PAGE + 4] == 0 && p[4 * PAGE - 1] == 0);
    show("munmap", syscall2(SYS_munmap, (long)p, 4 * PAGE));
    p = (char *)mmap6(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 2 * PAGE);
    show("file mmap offset 2 pages", p[0]);
    p[0] = 'Z';
    char c = 0;
    syscall4(SYS_pread64, fd, (long)&c, 1, 2 * PAGE);
    show("  private write not in file", c);
    show("  private write visible", p[0]);
    show("file mmap unaligned offset", mmap6(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 100));
    p = (char *)mmap6(0, PAGE, PROT_READ, MAP_SHARED, fd, PAGE);
    show("shared read-only file mmap", p[10]);
    show("mmap bad fd", mmap6(0, PAGE, PROT_READ, MAP_PRIVATE, 99, 0));
    int wfd = syscall4(SYS_openat, AT_FDCWD, (long)"data", O_WRONLY, 0);
    show("mmap write-only fd", mmap6(0, PAGE, PROT_READ, MAP_PRIVATE, wfd, 0));
    syscall1(SYS_close, wfd);
    syscall1(SYS_close, fd);
    show("mmap still readable after close", p[0]);
    syscall1(SYS_unlink, (long)"data");
}

int main(int argc, char **argv)
{
    if (argc >= 3 && str_eq(argv[2], "segv-none")) {
        char *p = anon(0, PAGE, PROT_NONE, 0);
        put_str("reading a PROT_NONE page\n");
        return *(volatile char *)p;
    }
    if (argc >= 3 && str_eq(argv[2], "segv-ro")) {
        char *p = anon(0, PAGE, PROT_READ | PROT_WRITE, 0);
        p[0] = 1;
        syscall3(SYS_mprotect, (long)p, PAGE, PROT_READ);
        put_str("writing a read-only page\n");
        *(volatile char *)p = 2;
        return 0;
    }

    char *p = anon(0, 3 * PAGE, PROT_READ | PROT_WRITE, 0);
    show("anon mmap ok", !is_err((long)p) && ((u64)p & (PAGE - 1)) == 0);
    show("  zero filled", p[0] == 0 && p[3 * PAGE - 1] == 0);
    for (int i = 0; i < 3 * PAGE; i++)
        p[i] = (char)i;
    long sum = 0;
    for (int i = 0; i < 3 * PAGE; i++)
        sum += (u8)p[i];
    show("  sum", sum);
    show("mprotect middle read-only", syscall3(SYS_mprotect, (long)(p + PAGE), PAGE, PROT_READ));
    show("  still readable", (u8)p[PAGE + 5]);
    show("mprotect unaligned", syscall3(SYS_mprotect, (long)(p + 1), PAGE, PROT_READ));
    show("mprotect bad prot", syscall3(SYS_mprotect, (long)p, PAGE, 0x100));
    show("madvise DONTNEED", syscall3(SYS_madvise, (long)p, PAGE, MADV_DONTNEED));
    show("  zero again", p[0] == 0 && p[100] == 0 && (u8)p[PAGE + 5] == 5);
    show("madvise bad advice", syscall3(SYS_madvise, (long)p, PAGE, 12345));
    show("munmap", syscall2(SYS_munmap, (long)p, 3 * PAGE));
    show("munmap unaligned", syscall2(SYS_munmap, (long)p + 1, PAGE));
    show("munmap length 0", syscall2(SYS_munmap, (long)p, 0));
    show("mprotect unmapped", syscall3(SYS_mprotect, (long)p, PAGE, PROT_READ));
    show("madvise unmapped", syscall3(SYS_madvise, (long)p, PAGE, MADV_DONTNEED));

    show("mmap length 0", (long)anon(0, 0, PROT_READ, 0));
    show("mmap no type", mmap6(0, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0));
    show("mmap huge", (long)anon(0, 1ul << 62, PROT_READ, 0));

    char *f = anon(FIXED_AT, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
    show("MAP_FIXED at address", (u64)f == FIXED_AT);
    f[0] = 42;
    show("MAP_FIXED_NOREPLACE taken",
         (long)anon(FIXED_AT, PAGE, PROT_READ, MAP_FIXED_NOREPLACE));
    show("MAP_FIXED unaligned", (long)anon(FIXED_AT + 1, PAGE, PROT_READ, MAP_FIXED));
    char *r = anon(FIXED_AT, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
    show("MAP_FIXED replaces (zeroed)", r == f && f[0] == 0);
    char *h = anon(FIXED_AT + 16 * PAGE, PAGE, PROT_READ | PROT_WRITE, 0);
    show("hint honoured when free", (u64)h == FIXED_AT + 16 * PAGE);
    char *h2 = anon(FIXED_AT + 16 * PAGE, PAGE, PROT_READ | PROT_WRITE, 0);
    show("hint taken: placed elsewhere", !is_err((long)h2) && h2 != h);
    char *n = anon(FIXED_AT + 32 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
    show("MAP_FIXED_NOREPLACE free", (u64)n == FIXED_AT + 32 * PAGE);

    /* mremap: grow in place, refuse to move, move, shrink */
    syscall2(SYS_munmap, FIXED_AT, 2 * PAGE);
    char *g = anon(FIXED_AT, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
    g[0] = 'g';
    g[PAGE - 1] = 'G';
    long m = syscall4(SYS_mremap, (long)g, PAGE, 2 * PAGE, 0);
    show("mremap grow in place", m == (long)g);
    g[2 * PAGE - 1] = 'x';
    anon(FIXED_AT + 2 * PAGE, PAGE, PROT_READ, MAP_FIXED);     /* block further growth */
    show("mremap blocked, no MAYMOVE", syscall4(SYS_mremap, (long)g, 2 * PAGE, 8 * PAGE, 0));
    m = syscall4(SYS_mremap, (long)g, 2 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
    char *mv = (char *)m;
    show("mremap moved", !is_err(m) && mv != g);
    show("  contents kept", mv[0] == 'g' && mv[PAGE - 1] == 'G' && mv[2 * PAGE - 1] == 'x');
    show("  new tail zero", mv[8 * PAGE - 1] == 0);
    mv[8 * PAGE - 1] = 1;
    show("mremap shrink", syscall4(SYS_mremap, m, 8 * PAGE, PAGE, 0) == m);
    show("mremap unmapped source", syscall4(SYS_mremap, (long)FIXED_AT + 40 * PAGE, PAGE,
                                            2 * PAGE, MREMAP_MAYMOVE));
    show("mremap bad flags", syscall4(SYS_mremap, m, PAGE, 2 * PAGE, 0x80));

    if (argc >= 2)
        file_tests(argv[1]);
    return 0;
}
