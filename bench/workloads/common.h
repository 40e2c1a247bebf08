/* Shared by the benchmark workloads: a scale from argv and a checksum printer. Each workload
   prints integers only, so outputs compare exactly across native, jitbt and qemu runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline long scale_arg(int argc, char **argv, long dflt) {
    return argc > 1 ? atol(argv[1]) : dflt;
}

static inline uint64_t mix64(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}
