/* fib: iterative and recursive fibonacci. */
#include "sys.h"

static u64 fib_iter(unsigned n)
{
    u64 a = 0, b = 1;
    for (unsigned i = 0; i < n; i++) {
        u64 t = a + b;
        a = b;
        b = t;
    }
    return a;
}

static u64 fib_rec(unsigned n)
{
    if (n < 2)
        return n;
    return fib_rec(n - 1) + fib_rec(n - 2);
}

/* Fibonacci modulo m, to exercise 64-bit unsigned remainder. */
static u64 fib_mod(unsigned n, u64 m)
{
    u64 a = 0, b = 1 % m;
    for (unsigned i = 0; i < n; i++) {
        u64 t = (a + b) % m;
        a = b;
        b = t;
    }
    return a;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static const unsigned iter_n[] = {0, 1, 2, 10, 20, 50, 90, 93};
    u64 sum = 0;

    for (unsigned i = 0; i < sizeof iter_n / sizeof iter_n[0]; i++) {
        u64 v = fib_iter(iter_n[i]);
        put_str("fib_iter(");
        put_u64(iter_n[i]);
        put_str(") = ");
        put_u64(v);
        put_char('\n');
        sum = sum * 31 + v;
    }

    for (unsigned n = 15; n <= 22; n++) {
        u64 r = fib_rec(n);
        put_str("fib_rec(");
        put_u64(n);
        put_str(") = ");
        put_u64(r);
        put_str(r == fib_iter(n) ? " ok\n" : " MISMATCH\n");
        sum = (sum ^ r) * 0x100000001b3ull;
    }

    /* wrap-around past fib(93) is well defined for u64 */
    for (unsigned n = 94; n < 200; n += 7)
        sum += fib_iter(n);

    put_kv_u64("fib_mod(1000, 1000000007) = ", fib_mod(1000, 1000000007ull));
    sum ^= fib_mod(1000, 1000000007ull);
    put_kv_hex64("checksum = ", sum);
    return 0;
}
