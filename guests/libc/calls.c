/* calls: hot code that calls and returns in every way a region may see. A hot region branches
 * inside itself for a call to one of its blocks and for a ret that pops the address after one
 * of its calls; any other return address must leave it for wherever the guest goes. Here:
 * recursion that gcc -O2 unrolls into a deep loop nest whose inner paths first run late (the
 * region around it grows), mutual recursion with several call sites, returns to an address the
 * callee put on the stack itself (a ret used as a jump, as some hand-written code and
 * coroutine switches do), a PLT-like jmp through a pointer that changes while the loop calling
 * it is hot, longjmp out of a deep recursion, and a loop nest whose rare branch
 * only starts being taken long after the loop turned hot. Each result depends on every call. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>

static long fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static long ack(long m, long n)
{
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

static int is_odd(unsigned n);
static __attribute__((noinline)) int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
static __attribute__((noinline)) int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

/* bounce(f, x): calls f(x) by pushing f and returning into it; f then returns to bounce's
 * caller. The ret in bounce pops an address no call pushed. */
long bounce(long (*f)(long), long x);
__asm__(".text\n"
        ".globl bounce\n"
        ".type bounce, @function\n"
        "bounce:\n"
        "  xchg %rdi, %rsi\n"
        "  push %rsi\n"
        "  ret\n"
        ".size bounce, .-bounce\n");

static __attribute__((noinline)) long twice(long x) { return 2 * x + 1; }
static __attribute__((noinline)) long thrice(long x) { return 3 * x - 1; }

/* stub(x): a PLT-like stub, jmp through a pointer in writable data that the program changes
 * while the loop calling it is hot. */
long (*slot)(long) = twice;
long stub(long x);
__asm__(".text\n"
        ".globl stub\n"
        ".type stub, @function\n"
        "stub:\n"
        "  jmp *slot(%rip)\n"
        ".size stub, .-stub\n");

static jmp_buf out;
static long depth_seen;

static __attribute__((noinline)) long dive(long depth, long limit)
{
    if (depth == limit) {
        depth_seen += depth;
        longjmp(out, (int)(depth & 0xff) + 1);
    }
    return depth > limit ? 0 : dive(depth + 1, limit) + 1;
}

int main(void)
{
    uint64_t h = 0;
    for (long n = 20; n < 30; n++)
        h = h * 31 + (uint64_t)fib(n);
    printf("fib %lu\n", (unsigned long)h);

    printf("ack %ld %ld\n", ack(2, 300), ack(3, 5));

    long evens = 0;
    for (unsigned i = 0; i < 3000; i++)
        evens += is_even(i * 7 + 1) + 2 * is_odd(i);
    printf("parity %ld\n", evens);

    long x = 1;
    for (long i = 0; i < 100000; i++)
        x = bounce(i % 3 ? twice : thrice, x) % 1000003;
    printf("bounce %ld\n", x);

    long y = 3;
    for (long i = 0; i < 200000; i++) {
        if (i == 120000)
            slot = thrice;
        y = stub(y) % 1000033;
    }
    printf("slot %ld\n", y);

    long jumps = 0;
    for (long i = 0; i < 2000; i++) {
        volatile long limit = 10 + i % 50;
        int r = setjmp(out);
        if (r == 0)
            dive(0, limit);
        else
            jumps += r;
    }
    printf("longjmp %ld %ld\n", jumps, depth_seen);

    /* the inner loop is hot long before its rare branch is first taken */
    uint64_t acc = 7;
    for (long i = 0; i < 400; i++)
        for (long j = 0; j < 1000; j++) {
            acc = acc * 6364136223846793005ull + (uint64_t)j;
            if (i > 300 && (acc >> 60) == 5)
                acc ^= (uint64_t)fib(j & 7) << 7;
        }
    printf("late %lu\n", (unsigned long)acc);
    return 0;
}
