/* crc32: table-driven CRC-32 (table built at runtime) and bitwise CRC-32
 * (reflected, polynomial 0xEDB88320) over a generated buffer. */
#include "sys.h"

#define BUF_SIZE 16384

static u32 table[256];
static u8 buf[BUF_SIZE];

static void build_table(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        table[i] = c;
    }
}

static u32 crc32_table(const u8 *p, size_t n)
{
    u32 c = 0xFFFFFFFFu;
    while (n--)
        c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

static u32 crc32_bitwise(const u8 *p, size_t n)
{
    u32 c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            u32 mask = -(c & 1);
            c = (c >> 1) ^ (0xEDB88320u & mask);
        }
    }
    return ~c;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    build_table();

    static const char check[] = "123456789";
    u32 t9 = crc32_table((const u8 *)check, 9);
    u32 b9 = crc32_bitwise((const u8 *)check, 9);
    put_kv_hex32("crc32(\"123456789\") table   = ", t9);
    put_kv_hex32("crc32(\"123456789\") bitwise = ", b9);

    /* xorshift32-generated buffer */
    u32 x = 0x9E3779B9u;
    for (int i = 0; i < BUF_SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (u8)(x >> 24);
    }
    u32 t = crc32_table(buf, BUF_SIZE);
    u32 b = crc32_bitwise(buf, BUF_SIZE);
    put_kv_u64("buffer bytes = ", BUF_SIZE);
    put_kv_hex32("crc32 table   = ", t);
    put_kv_hex32("crc32 bitwise = ", b);

    /* CRCs of every 1 KiB block, folded */
    u32 fold = 0;
    for (int off = 0; off < BUF_SIZE; off += 1024)
        fold = (fold << 1 | fold >> 31) ^ crc32_table(buf + off, 1024);
    put_kv_hex32("block fold    = ", fold);
    put_kv_hex32("table[255]    = ", table[255]);

    int ok = t9 == 0xCBF43926u && b9 == t9 && b == t;
    put_str(ok ? "crc32: ok\n" : "crc32: MISMATCH\n");
    return ok ? 0 : 1;
}
