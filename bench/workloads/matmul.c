/* matmul: dense double-precision matrix multiply (i-k-j order, so gcc vectorises the inner loop). */
#include "common.h"

int main(int argc, char **argv) {
    long n = 220, rounds = scale_arg(argc, argv, 370);
    double *a = malloc(n * n * 8), *b = malloc(n * n * 8), *c = malloc(n * n * 8);
    for (long i = 0; i < n * n; i++) { a[i] = (double)(i % 17) / 7.0; b[i] = (double)(i % 13) / 5.0 - 1.0; }
    uint64_t h = 0;
    for (long r = 0; r < rounds; r++) {
        for (long i = 0; i < n * n; i++) c[i] = 0;
        for (long i = 0; i < n; i++)
            for (long k = 0; k < n; k++) {
                double aik = a[i * n + k];
                for (long j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
            }
        for (long i = 0; i < n * n; i += 31) h = mix64(h, (uint64_t)(int64_t)(c[i] * 1000.0));
        a[r % (n * n)] += 1.0;
    }
    printf("matmul %lu\n", (unsigned long)h);
    return 0;
}
