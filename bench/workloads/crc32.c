/* crc32: table-driven CRC-32 over a buffer, many passes. */
#include "common.h"

int main(int argc, char **argv) {
    long rounds = scale_arg(argc, argv, 420);
    static uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    long n = 1 << 20;
    unsigned char *buf = malloc(n);
    for (long i = 0; i < n; i++) buf[i] = (unsigned char)(i * 31 + (i >> 8));
    uint32_t crc = 0xFFFFFFFFu;
    for (long r = 0; r < rounds; r++)
        for (long i = 0; i < n; i++) crc = table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
    printf("crc32 %u\n", crc ^ 0xFFFFFFFFu);
    return 0;
}
