/* hashtable: open addressing with linear probing: inserts, lookups, deletes with tombstones. */
#include "common.h"

#define EMPTY 0
#define TOMB 1

int main(int argc, char **argv) {
    long rounds = scale_arg(argc, argv, 38);
    long cap = 1 << 20;
    uint64_t *keys = calloc(cap, 8), *vals = calloc(cap, 8), h = 0, x = 12345;
    for (long r = 0; r < rounds; r++) {
        for (long i = 0; i < cap * 6 / 10; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            uint64_t k = (x >> 20) | 2, s = (k * 0x9e3779b97f4a7c15ULL) >> 44;
            while (keys[s] > TOMB && keys[s] != k) s = (s + 1) & (cap - 1);
            keys[s] = k; vals[s] = i;
        }
        uint64_t y = 12345 + r, hits = 0;
        for (long i = 0; i < cap / 2; i++) {
            y = y * 6364136223846793005ULL + 1442695040888963407ULL;
            uint64_t k = (y >> 20) | 2, s = (k * 0x9e3779b97f4a7c15ULL) >> 44;
            while (keys[s] != EMPTY && keys[s] != k) s = (s + 1) & (cap - 1);
            if (keys[s] == k) { hits++; if (i & 1) keys[s] = TOMB; }
        }
        h = mix64(h, hits);
        for (long i = 0; i < cap; i++) keys[i] = EMPTY;
    }
    printf("hashtable %lu\n", (unsigned long)h);
    return 0;
}
