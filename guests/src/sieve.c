/* sieve: sieve of Eratosthenes on a static (bss) array. */
#include "sys.h"

#define LIMIT 100000

static u8 composite[LIMIT + 1];

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    composite[0] = composite[1] = 1;
    for (u32 i = 2; i * i <= LIMIT; i++)
        if (!composite[i])
            for (u32 j = i * i; j <= LIMIT; j += i)
                composite[j] = 1;

    u32 count = 0, last = 0, twins = 0;
    u64 sum = 0, hash = 0xcbf29ce484222325ull;
    for (u32 i = 2; i <= LIMIT; i++) {
        if (composite[i])
            continue;
        count++;
        sum += i;
        hash = (hash ^ i) * 0x100000001b3ull;
        if (last && i - last == 2)
            twins++;
        last = i;
    }

    put_kv_u64("limit = ", LIMIT);
    put_kv_u64("primes = ", count);
    put_kv_u64("largest = ", last);
    put_kv_u64("twin pairs = ", twins);
    put_kv_u64("sum = ", sum);
    put_kv_hex64("checksum = ", hash);
    return count == 9592 ? 0 : 1;
}
