/* smc: self-modifying code, every way a guest does it. Each case prints what the new code
 * returned; natively every value is the new code's, so a translator that runs stale
 * translations prints something else.
 *   1. a JIT buffer mapped read-write-execute, rewritten and called again and again;
 *   2. W^X: write code into a read-write buffer, mprotect it executable, call; repeat;
 *   3. a store into the immediate of the very next instruction (same block, own text page);
 *   4. a function called until it is hot, then rewritten;
 *   5. a block whose successor overwrites the flags, then the successor rewritten to read them
 *      (a translator that left the flags out as dead in the first block, and kept that block's
 *      translation when only the successor changed, would read stale ones). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int (*fn_t)(void);

static void emit_return(unsigned char *p, int value)
{
    p[0] = 0xb8;                       /* mov eax, imm32 */
    memcpy(p + 1, &value, 4);
    p[5] = 0xc3;                       /* ret */
    __builtin___clear_cache((char *)p, (char *)p + 6);
}

static long rwx_buffer(void)
{
    unsigned char *buf = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long sum = 0;
    for (int i = 0; i < 100; i++) {
        emit_return(buf, i * 3);
        sum += ((fn_t)buf)();
    }
    munmap(buf, 4096);
    return sum;
}

static long write_xor_execute(void)
{
    unsigned char *buf = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long sum = 0;
    for (int i = 0; i < 50; i++) {
        mprotect(buf, 4096, PROT_READ | PROT_WRITE);
        emit_return(buf, 1000 + i);
        mprotect(buf, 4096, PROT_READ | PROT_EXEC);
        sum += ((fn_t)buf)();
    }
    munmap(buf, 4096);
    return sum;
}

/* Stores `v` into the immediate of the instruction right after the store. */
__attribute__((noinline, aligned(64))) static int patch_next(int v)
{
    int r;
    __asm__ volatile("movl %1, 1f+1(%%rip)\n\t"
                     "1: movl $0, %%eax\n\t"
                     : "=a"(r) : "r"(v) : "memory");
    return r;
}

static long next_instruction(void)
{
    uintptr_t page = (uintptr_t)patch_next & ~(uintptr_t)4095;
    if (mprotect((void *)page, 8192, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
        perror("mprotect");
        return -1;
    }
    long sum = 0;
    for (int v = 1; v <= 60; v++)
        sum += patch_next(v) * (long)v;
    return sum;
}

static long hot_then_rewritten(void)
{
    unsigned char *buf = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long sum = 0;
    for (int round = 0; round < 4; round++) {
        emit_return(buf, round * 7 + 1);
        for (int i = 0; i < 5000; i++)
            sum += ((fn_t)buf)();
        printf("  round %d: sum %ld\n", round, sum);
    }
    munmap(buf, 4096);
    return sum;
}

static long flags_read_by_rewritten_successor(void)
{
    /* Two blocks 128 bytes apart: a change to the second leaves the first's bytes alone. */
    static const unsigned char first[] = {
        0x39, 0xf7,                         /* cmp edi, esi */
        0xeb, 0x7c,                         /* jmp +124: to the second block, at 128 */
    };
    static const unsigned char second[] = {
        0x31, 0xc0, 0x90, 0x90, 0x90, 0x90, /* xor eax, eax (the flags are dead); nops */
        0xc3,                               /* ret */
    };
    static const unsigned char reads_cf[] = {
        0x0f, 0x92, 0xc0,                   /* setb al */
        0x0f, 0xb6, 0xc0,                   /* movzx eax, al */
    };
    unsigned char *buf = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    typedef int (*cmp_t)(unsigned, unsigned);
    memset(buf, 0xcc, 256);                 /* int3 between them */
    memcpy(buf, first, sizeof first);
    memcpy(buf + 128, second, sizeof second);
    __builtin___clear_cache((char *)buf, (char *)buf + 256);
    long sum = 0;
    for (int k = 0; k < 300; k++)
        sum += ((cmp_t)buf)(k % 3, 1);
    memcpy(buf + 128, reads_cf, sizeof reads_cf);
    __builtin___clear_cache((char *)buf, (char *)buf + 256);
    for (int k = 0; k < 300; k++)
        sum += ((cmp_t)buf)(k % 3, 1) * (long)(k + 1);
    munmap(buf, 4096);
    return sum;
}

int main(void)
{
    /* First: its page must not have held code rewritten before (which a translator may
     * translate an instruction at a time). */
    printf("flags read by a rewritten successor: %ld\n", flags_read_by_rewritten_successor());
    printf("rwx buffer: %ld\n", rwx_buffer());
    printf("w^x buffer: %ld\n", write_xor_execute());
    printf("next instruction: %ld\n", next_instruction());
    printf("hot then rewritten:\n");
    printf("  total %ld\n", hot_then_rewritten());
    return 0;
}
