/* faultctx: faults in the middle of a block, and what the signal handler sees.
 * Each case sets registers and flags, then faults on an instruction in the middle of a
 * straight-line sequence whose later instructions would change registers and flags again.
 * The handler prints the faulting address relative to the case's start, the general
 * registers the sequence uses, rsp relative to its value at the start, and the status flags:
 * natively these are the state right before the faulting instruction. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

static sigjmp_buf back;
static uintptr_t case_start, stack_at_start;
static volatile char *readonly;
static volatile char *guarded;          /* no access until the handler of resume_in_hot_loop */
static volatile int resuming;

/* Addresses in the read-only page are printed as offsets: they differ from run to run. */
static unsigned long long shown(greg_t v)
{
    uintptr_t ro = (uintptr_t)readonly;
    return (uintptr_t)v - ro < 4096 ? (uintptr_t)v - ro : (unsigned long long)v;
}

static void handler(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    if (resuming) {                     /* fix the cause and return: the store runs again */
        resuming = 0;
        mprotect((void *)guarded, 4096, PROT_READ | PROT_WRITE);
        printf("  signal %d, page made writable, returning\n", sig);
        return;
    }
    printf("  signal %d code %d rip start+%ld\n", sig, si->si_code,
           (long)(g[REG_RIP] - case_start));
    printf("  rax %llx rbx %llx rcx %llx rdx %llx rsi %llx rdi %llx\n",
           (unsigned long long)g[REG_RAX], (unsigned long long)g[REG_RBX],
           (unsigned long long)g[REG_RCX], (unsigned long long)g[REG_RDX],
           shown(g[REG_RSI]), shown(g[REG_RDI]));
    printf("  r8 %llx r9 %llx rsp start%+ld flags %llx\n", (unsigned long long)g[REG_R8],
           (unsigned long long)g[REG_R9], (long)(g[REG_RSP] - stack_at_start),
           (unsigned long long)(g[REG_EFL] & 0x8d5));
    siglongjmp(back, 1);
}

/* Each case: %0 receives the address of label 1 (the case's start) and %1 rsp there. */
#define CASE(name, body)                                                               \
    static void name(void)                                                             \
    {                                                                                  \
        __asm__ volatile("lea 1f(%%rip), %%rax\n\t"                                    \
                         "mov %%rax, %0\n\t"                                           \
                         "mov %%rsp, %1\n\t"                                           \
                         "mov $0xa0, %%eax\n\tmov $0xb0, %%ebx\n\tmov $0xc0, %%ecx\n\t"    \
                         "mov $0xd0, %%edx\n\tmov $0x50, %%esi\n\tmov $0x70, %%edi\n\t"    \
                         "mov $0x80, %%r8d\n\tmov $0x90, %%r9d\n\t"                      \
                         "1:\n\t" body                                                 \
                         : "=m"(case_start), "=m"(stack_at_start)                      \
                         : "r"(readonly)                                               \
                         : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "memory", \
                           "cc");                                                      \
    }

/* A store to an unmapped page after an add that sets flags; a later add would change them. */
CASE(store_unmapped,
     "mov $0x7fffffff, %%eax\n\t"
     "mov $1, %%ebx\n\t"
     "add %%ebx, %%eax\n\t"          /* OF SF AF PF set */
     "mov $16, %%rcx\n\t"
     "mov %%rbx, (%%rcx)\n\t"        /* faults: page 0 */
     "add %%rbx, %%rbx\n\t"
     "xor %%eax, %%eax\n\t")

/* A read-modify-write of a read-only page: nothing of it may happen. */
CASE(rmw_readonly,
     "mov %2, %%rsi\n\t"
     "mov $5, %%edx\n\t"
     "sub $7, %%edx\n\t"             /* CF SF set */
     "lea 8(%%rsi), %%rdi\n\t"
     "addq $1, (%%rdi)\n\t"          /* faults: read-only */
     "mov $3, %%edx\n\t"
     "cmp %%edx, %%edx\n\t")

/* push and pop whose memory operand faults leave rsp and the destination alone. */
CASE(push_pop_unmapped,
     "mov $0x123, %%r8\n\t"
     "mov $32, %%r9\n\t"
     "test %%r8, %%r8\n\t"
     "push (%%r9)\n\t"               /* faults: reads page 0 */
     "pop %%r8\n\t")

/* Division by zero in the middle of a sequence. */
CASE(divide_by_zero,
     "mov $100, %%eax\n\t"
     "xor %%edx, %%edx\n\t"
     "mov $0, %%ecx\n\t"
     "cmp $1, %%eax\n\t"
     "div %%ecx\n\t"                 /* faults: #DE */
     "inc %%eax\n\t")

/* An invalid instruction after a sequence of flag changes. */
CASE(undefined_opcode,
     "mov $-1, %%rax\n\t"
     "inc %%rax\n\t"                  /* ZF PF AF set */
     "mov $7, %%ebx\n\t"
     "ud2\n\t"
     "dec %%rbx\n\t")

/* A loop that runs long enough to be compiled hot (its registers and flags then live in host
 * registers) and faults in its last trip: the handler must see them as they were there. */
CASE(hot_loop,
     "mov $30000, %%ecx\n\t"
     "mov %2, %%rsi\n\t"
     "mov $16, %%r8\n\t"
     "2:\n\t"
     "add $3, %%eax\n\t"
     "cmp $1, %%ecx\n\t"
     "cmove %%r8, %%rsi\n\t"      /* the last trip reads page 0 */
     "mov (%%rsi), %%rdx\n\t"     /* faults there */
     "dec %%ecx\n\t"
     "jnz 2b\n\t")

/* A loop compiled hot whose last trip stores to the guarded page between a compare and the
 * setcc that reads it. The handler makes the page writable and returns, so the store runs again
 * and the trip goes on: the flags the rest of it reads must have survived the fault (those it
 * overwrites first need not). Each trip adds 1, and 2 more when ecx was 1. */
static void resume_in_hot_loop(void)
{
    unsigned long sum;
    static int buffer;
    resuming = 1;
    __asm__ volatile("mov %2, %%r8\n\t"
                     "mov $30000, %%ecx\n\t"
                     "xor %%eax, %%eax\n\t"
                     "2:\n\t"
                     "cmp $1, %%ecx\n\t"
                     "mov %1, %%rdi\n\t"
                     "cmove %%r8, %%rdi\n\t"
                     "mov %%eax, (%%rdi)\n\t"     /* faults in the last trip */
                     "sete %%dl\n\t"
                     "movzbl %%dl, %%edx\n\t"
                     "lea 1(%%rax,%%rdx,2), %%eax\n\t"
                     "dec %%ecx\n\t"
                     "jnz 2b\n\t"
                     : "=&a"(sum)
                     : "r"(&buffer), "r"(guarded)
                     : "rcx", "rdx", "rdi", "r8", "memory", "cc");
    printf("  sum %lu, stored %d\n", sum, *(volatile int *)guarded);
}

/* straight(p, q): straight-line code with several stores, called often enough to be compiled
 * hot inside its caller's region (not in a loop there: a fault anywhere in it leaves through
 * one exit shared with the other stores' faults). The last call passes the read-only page as
 * p: the third store faults, and the handler must see that store's address and registers. */
void straight(volatile int *p, volatile int *q);
__asm__(".text\n"
        "straight:\n"
        "  push %rbx\n"
        "  mov %rsp, stack_at_start(%rip)\n"
        "  lea straight(%rip), %rax\n"
        "  mov %rax, case_start(%rip)\n"
        "  mov $0xb1, %ebx\n"
        "  mov $0x91, %r9d\n"
        "  mov $0x11, %eax\n"
        "  mov %eax, (%rsi)\n"
        "  mov $0x22, %ecx\n"
        "  mov %ecx, 4(%rsi)\n"
        "  mov $0x33, %edx\n"
        "  mov %edx, (%rdi)\n"           /* faults in the last call */
        "  mov $0x44, %r8d\n"
        "  mov %r8d, 8(%rsi)\n"
        "  pop %rbx\n"
        "  ret\n");

static void fault_in_hot_call(void)
{
    static int buffer[4];
    static volatile int last = 29999;   /* read each trip: gcc cannot peel the last call off */
    for (int i = 0; i < 30000; i++)
        straight(i == last ? (volatile int *)readonly : &buffer[3], buffer);
}

int main(void)
{
    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0);
    sigaction(SIGFPE, &sa, 0);
    sigaction(SIGILL, &sa, 0);
    readonly = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    guarded = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct { const char *name; void (*fn)(void); } cases[] = {
        {"store to an unmapped page", store_unmapped},
        {"read-modify-write of a read-only page", rmw_readonly},
        {"push from an unmapped page", push_pop_unmapped},
        {"divide by zero", divide_by_zero},
        {"ud2", undefined_opcode},
        {"fault in a hot loop", hot_loop},
        {"resume in a hot loop", resume_in_hot_loop},
        {"fault in hot straight-line code", fault_in_hot_call},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("%s:\n", cases[i].name);
        fflush(stdout);
        if (!sigsetjmp(back, 1))
            cases[i].fn();
    }
    printf("readonly page still %d\n", readonly[8]);
    return 0;
}
