/* brk: grow the heap with the brk syscall, use it, shrink it again.
 * Only differences between break values are printed, never addresses. */
#include "sys.h"

#define PAGE 4096
#define GROW_PAGES 16

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    u64 base = sys_brk(0);
    u64 again = sys_brk(0);
    put_kv_u64("brk(0) twice, difference = ", again - base);

    /* unaligned request: the kernel keeps the exact value */
    u64 b1 = sys_brk(base + 100);
    put_kv_u64("grow by 100, difference = ", b1 - base);

    u64 want = base + GROW_PAGES * PAGE;
    u64 b2 = sys_brk(want);
    put_kv_u64("grow to 16 pages, difference = ", b2 - base);
    if (b2 != want) {
        put_str("brk: grow FAILED\n");
        return 1;
    }

    /* fill every byte of the new area, then read it back */
    u8 *heap = (u8 *)base;
    u32 x = 2463534242u;
    for (u32 i = 0; i < GROW_PAGES * PAGE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        heap[i] = (u8)(x ^ i);
    }
    u64 sum = 0, hash = 0xcbf29ce484222325ull;
    x = 2463534242u;
    u32 bad = 0;
    for (u32 i = 0; i < GROW_PAGES * PAGE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        u8 v = heap[i];
        if (v != (u8)(x ^ i))
            bad++;
        sum += v;
        hash = (hash ^ v) * 0x100000001b3ull;
    }
    /* 64-bit stores/loads across page boundaries */
    u64 *words = (u64 *)(base + ((8 - (base & 7)) & 7));
    u32 nwords = (GROW_PAGES * PAGE - 8) / 8;
    for (u32 i = 0; i < nwords; i++)
        words[i] = (u64)i * 0x9E3779B97F4A7C15ull;
    u64 wsum = 0;
    for (u32 i = 0; i < nwords; i++)
        wsum += words[i] ^ (words[i] >> 29);

    put_kv_u64("bytes written = ", GROW_PAGES * PAGE);
    put_kv_u64("mismatches = ", bad);
    put_kv_u64("byte sum = ", sum);
    put_kv_hex64("byte hash = ", hash);
    put_kv_hex64("word checksum = ", wsum);

    /* shrink by half, then back to the start */
    u64 b3 = sys_brk(base + GROW_PAGES * PAGE / 2);
    put_kv_u64("shrink to 8 pages, difference = ", b3 - base);
    u64 b4 = sys_brk(base);
    put_kv_u64("shrink to start, difference = ", b4 - base);
    u64 b5 = sys_brk(0);
    put_kv_u64("final brk(0), difference = ", b5 - base);
    return bad ? 1 : 0;
}
