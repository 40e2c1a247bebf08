/* windows: hot loops over a mapping whose page permissions change between their runs.
 * The optimising tier checks an access inside a loop against a window of pages found to allow
 * it, kept from one run of the loop to the next; a change of permissions (mprotect, munmap,
 * mmap over) must end every such window. Each loop below runs hot over the whole mapping,
 * then again after part of it lost its permission: it must fault at the first byte it may no
 * longer touch, as natively. The handler prints the fault's offset in the mapping and jumps
 * back; the loops' partial results are printed too. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define PAGES 16
#define PAGE 4096

static sigjmp_buf back;
static unsigned char *area;
static volatile long progress;

static void handler(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    printf("  signal %d at offset %ld after %ld bytes\n", sig,
           (long)((unsigned char *)si->si_addr - area), (long)progress);
    siglongjmp(back, 1);
}

/* noinline: one translation serves every call, so its windows outlive each call. */
__attribute__((noinline)) static uint64_t sum(const unsigned char *p, long n)
{
    uint64_t s = 0;
    for (long i = 0; i < n; i++) {
        s = s * 31 + p[i];
        progress = i;
    }
    return s;
}

__attribute__((noinline)) static void fill(unsigned char *p, long n, unsigned char v)
{
    for (long i = 0; i < n; i++) {
        p[i] = (unsigned char)(v + i);
        progress = i;
    }
}

/* 8-byte accesses, from `start` on in steps of `step`: from 3 in steps of 7, one in eight
 * straddles a page boundary, and the one that reaches a bad page starts on the page before:
 * it faults at the first byte of the bad page (si_addr), not at its own first byte. */
__attribute__((noinline)) static uint64_t sum_unaligned(const unsigned char *p, long n, long start,
                                                       long step)
{
    uint64_t s = 0;
    for (long i = start; i + 8 <= n; i += step) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s ^= v + (uint64_t)i;
        progress = i;
    }
    return s;
}

/* Loads and stores through the same registers (one window of read-write pages serves both):
 * zero every byte equal to `v`; counts the bytes read. */
__attribute__((noinline)) static long scrub(unsigned char *p, long n, unsigned char v)
{
    long zeroed = 0;
    for (long i = 0; i < n; i++) {
        if (p[i] == v) {
            p[i] = 0;
            zeroed++;
        }
        progress = i;
    }
    return zeroed;
}

static void run(const char *what, int kind)
{
    printf("%s\n", what);
    if (sigsetjmp(back, 1) == 0) {
        long n = PAGES * PAGE;
        if (kind == 0)
            printf("  sum %llx\n", (unsigned long long)sum(area, n));
        else if (kind == 4)
            printf("  scrubbed %ld\n", scrub(area, n, (unsigned char)progress));
        else if (kind == 1) {
            fill(area, n, (unsigned char)progress);
            printf("  filled, sum %llx\n", (unsigned long long)sum(area, n));
        } else
            printf("  unaligned sum %llx\n",
                   (unsigned long long)sum_unaligned(area, n, kind == 2 ? 3 : 0,
                                                               kind == 2 ? 7 : 8));
    }
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    area = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return 1;

    for (int round = 0; round < 30; round++) {      /* hot, with windows over the whole area */
        fill(area, PAGES * PAGE, (unsigned char)round);
        sum(area, PAGES * PAGE);
        sum_unaligned(area, PAGES * PAGE, 3, 7);
        scrub(area, PAGES * PAGE, 0xAA);
    }
    run("all pages read-write", 1);
    run("all pages, unaligned", 2);

    mprotect(area + 12 * PAGE, 4 * PAGE, PROT_NONE);
    run("last four pages inaccessible: read", 0);
    run("last four pages inaccessible: unaligned read", 2);
    run("last four pages inaccessible: aligned read", 3);

    mprotect(area + 12 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE);
    run("read-write again", 1);

    mprotect(area + 5 * PAGE, PAGE, PROT_READ);
    run("page 5 read-only: write", 1);
    run("page 5 read-only: read", 0);
    run("page 5 read-only: scrub", 4);

    munmap(area + 9 * PAGE, PAGE);
    run("page 9 unmapped: read", 0);

    mmap(area + 9 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
         -1, 0);
    mprotect(area + 5 * PAGE, PAGE, PROT_READ | PROT_WRITE);
    run("all mapped again: write", 1);
    run("all mapped again: unaligned", 2);

    mprotect(area, PAGE, PROT_NONE);
    run("first page inaccessible: read", 0);
    return 0;
}
