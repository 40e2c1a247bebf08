/* hotloops: loops that run long enough to be compiled by the optimising tier (20,000 runs), whose
 * values live in registers across their trips and are printed after them: doubles in xmm
 * registers, an array loop gcc -O3 vectorises with SSE2, an integer loop with carries and
 * compares, a switch, and a short inner loop inside a long outer one (the inner loop turns hot
 * first, the outer one later). Each result depends on every trip. */
#include <stdint.h>
#include <stdio.h>

#define N 4096

static double xs[N], ys[N];

int main(void)
{
    double a = 1.0, b = 0.5, s = 0.0;
    for (long i = 0; i < 200000; i++) {
        s += a * b;
        a += 1e-7;
        b = b * 0.999999 + 1e-9;
    }
    printf("doubles %.17g %.17g %.17g\n", s, a, b);

    for (int i = 0; i < N; i++) {
        xs[i] = (double)(i % 17) / 7.0;
        ys[i] = (double)(i % 13) - 6.0;
    }
    for (int r = 0; r < 60; r++)
        for (int i = 0; i < N; i++)
            ys[i] = ys[i] * 0.5 + xs[i] * (double)r;
    double t = 0;
    for (int i = 0; i < N; i++)
        t += ys[i] * (double)(i & 7);
    printf("arrays %.17g\n", t);

    uint64_t h = 0x9e3779b97f4a7c15ull, lo = 0, hi = 0;
    for (uint64_t i = 1; i < 300000; i++) {
        uint64_t x = h * i;
        lo += x;
        hi += lo < x;              /* carry */
        h ^= (x >> 29) + (h << 7);
        if ((int64_t)h < 0)
            h = ~h;
    }
    printf("integers %llx %llx %llx\n", (unsigned long long)h, (unsigned long long)lo,
           (unsigned long long)hi);

    unsigned state = 0, counts[5] = {0};
    for (unsigned i = 0; i < 400000; i++) {
        switch (state) {
        case 0: state = (i & 3) ? 1 : 2; break;
        case 1: state = (i % 7 == 0) ? 3 : 0; break;
        case 2: state = 4; break;
        case 3: state = (i & 1) ? 0 : 4; break;
        default: state = (i % 5) ? 1 : 0; break;
        }
        counts[state]++;
    }
    printf("switch %u %u %u %u %u\n", counts[0], counts[1], counts[2], counts[3], counts[4]);

    /* 40 inner trips an outer trip at first (the inner loop turns hot on its own), then 0 to 3
     * (the outer loop turns hot later, around the hot inner one). */
    uint64_t acc = 0;
    for (uint64_t i = 1; i < 200000; i++) {
        uint64_t v = i * 0x9e3779b97f4a7c15ull;
        unsigned trips = i < 1000 ? 40 : (unsigned)(v >> 62);
        for (unsigned t = 0; t < trips; t++) {
            acc += v;
            v = (v >> 1) | (v << 63);
        }
        acc = (acc << 3) ^ (acc >> 61) ^ v;
    }
    printf("nested %llx\n", (unsigned long long)acc);
    return 0;
}
