/* sort: quicksort and merge sort of pseudo-random 64-bit keys, repeated. */
#include "common.h"

static void quick(uint64_t *a, long lo, long hi) {
    while (lo < hi) {
        uint64_t p = a[(lo + hi) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { uint64_t t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { quick(a, lo, j); lo = i; } else { quick(a, i, hi); hi = j; }
    }
}

static void merge_sort(uint64_t *a, uint64_t *tmp, long n) {
    for (long w = 1; w < n; w *= 2)
        for (long lo = 0; lo < n; lo += 2 * w) {
            long mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            long i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
            for (k = lo; k < hi; k++) a[k] = tmp[k];
        }
}

int main(int argc, char **argv) {
    long n = 200000, rounds = scale_arg(argc, argv, 32);
    uint64_t *a = malloc(n * 8), *b = malloc(n * 8), *tmp = malloc(n * 8), h = 0, x = 88172645463325252ULL;
    for (long r = 0; r < rounds; r++) {
        for (long i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; a[i] = b[i] = x; }
        quick(a, 0, n - 1);
        merge_sort(b, tmp, n);
        for (long i = 0; i < n; i += 997) h = mix64(h, a[i] ^ b[i] ^ (uint64_t)i);
    }
    printf("sort %lu\n", (unsigned long)h);
    return 0;
}
