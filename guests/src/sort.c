/* sort: LCG-generated u32 array sorted by quicksort and by insertion sort
 * (on a copy), verified, checksummed; plus signed sorting and a mix of
 * signed/unsigned 32/64-bit division and remainder. */
#include "sys.h"

#define N 5000

static u32 a[N], b[N];
static i32 s[N];

static u32 lcg_state = 12345;

static u32 lcg(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state;
}

static void swap_u32(u32 *x, u32 *y)
{
    u32 t = *x;
    *x = *y;
    *y = t;
}

/* Hoare-style quicksort, median-of-three pivot, unsigned compares. */
static void quicksort_u32(u32 *v, int lo, int hi)
{
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap_u32(&v[mid], &v[lo]);
        if (v[hi] < v[lo])
            swap_u32(&v[hi], &v[lo]);
        if (v[hi] < v[mid])
            swap_u32(&v[hi], &v[mid]);
        u32 pivot = v[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                swap_u32(&v[i], &v[j]);
                i++;
                j--;
            }
        }
        /* recurse into the smaller half, loop on the larger */
        if (j - lo < hi - i) {
            quicksort_u32(v, lo, j);
            lo = i;
        } else {
            quicksort_u32(v, i, hi);
            hi = j;
        }
    }
}

/* Lomuto quicksort on signed values (signed compares). */
static void quicksort_i32(i32 *v, int lo, int hi)
{
    if (lo >= hi)
        return;
    i32 pivot = v[hi];
    int i = lo;
    for (int j = lo; j < hi; j++) {
        if (v[j] <= pivot) {
            i32 t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
        }
    }
    i32 t = v[i];
    v[i] = v[hi];
    v[hi] = t;
    quicksort_i32(v, lo, i - 1);
    quicksort_i32(v, i + 1, hi);
}

static void insertion_sort_u32(u32 *v, int n)
{
    for (int i = 1; i < n; i++) {
        u32 x = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

static int is_sorted_u32(const u32 *v, int n)
{
    for (int i = 1; i < n; i++)
        if (v[i - 1] > v[i])
            return 0;
    return 1;
}

static int is_sorted_i32(const i32 *v, int n)
{
    for (int i = 1; i < n; i++)
        if (v[i - 1] > v[i])
            return 0;
    return 1;
}

static u64 hash_u32(const u32 *v, int n)
{
    u64 h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++)
        h = (h ^ v[i]) * 0x100000001b3ull;
    return h;
}

/* Data-dependent divisors so gcc keeps real div/idiv instructions. */
static u64 division_mix(const u32 *v, int n)
{
    u64 acc = 0;
    for (int i = 0; i + 2 < n; i++) {
        u32 x = v[i];
        u32 du = (v[i + 1] & 0xffff) | 1;
        acc += x / du;
        acc ^= x % du;

        i32 sx = (i32)x;
        i32 sd = (i32)(v[i + 1] >> 16) - 32768; /* -32768..32767 */
        if (sd == 0 || sd == -1)
            sd = -3;
        acc += (u64)(i64)(sx / sd);
        acc = acc * 3 + (u64)(i64)(sx % sd);

        u64 x64 = ((u64)v[i] << 32) | v[i + 2];
        u64 d64 = ((u64)v[i + 1] << 7) | 1;
        acc ^= x64 / d64;
        acc += x64 % d64;

        i64 sx64 = (i64)x64;
        i64 sd64 = (i64)(d64 ^ ((u64)v[i + 2] << 40)); /* often negative */
        if (sd64 == -1)
            sd64 = 7;
        acc += (u64)(sx64 / sd64);
        acc ^= (u64)(sx64 % sd64) << 1;
    }
    return acc;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;

    for (int i = 0; i < N; i++) {
        a[i] = lcg();
        b[i] = a[i];
        s[i] = (i32)a[i];
    }
    u64 hdiv = division_mix(a, N);
    u64 hunsorted = hash_u32(a, N);

    quicksort_u32(a, 0, N - 1);
    insertion_sort_u32(b, N);
    quicksort_i32(s, 0, N - 1);

    int ok_q = is_sorted_u32(a, N);
    int ok_i = is_sorted_u32(b, N);
    int ok_s = is_sorted_i32(s, N);
    int same = memcmp(a, b, sizeof a) == 0;

    /* the signed order starts with the values that have the top bit set */
    int negatives = 0;
    while (negatives < N && s[negatives] < 0)
        negatives++;

    put_kv_u64("n = ", N);
    put_str(ok_q ? "quicksort: sorted\n" : "quicksort: NOT SORTED\n");
    put_str(ok_i ? "insertion sort: sorted\n" : "insertion sort: NOT SORTED\n");
    put_str(same ? "results agree\n" : "results DIFFER\n");
    put_str(ok_s ? "signed quicksort: sorted\n" : "signed quicksort: NOT SORTED\n");
    put_kv_u64("negatives = ", (u64)negatives);
    put_kv_u64("min = ", a[0]);
    put_kv_u64("max = ", a[N - 1]);
    put_kv_u64("median = ", a[N / 2]);
    put_str("signed min = ");
    put_i64(s[0]);
    put_char('\n');
    put_kv_hex64("unsorted hash = ", hunsorted);
    put_kv_hex64("division mix = ", hdiv);
    put_kv_hex64("checksum = ", hash_u32(a, N) ^ hash_u32((const u32 *)s, N) * 3);
    return (ok_q && ok_i && ok_s && same) ? 0 : 1;
}
