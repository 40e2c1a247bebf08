/* strmem [MODE] [ROUNDS]: a string- and memory-heavy workload for routine replacement (hle).
     work [ROUNDS]   (default) memcpy/memmove/memset of varied sizes, alignments and overlaps,
                     strlen/strcmp/strncmp/memcmp/strchr/strrchr/memchr/strcpy/stpcpy/strnlen
                     over many strings; prints the signs and some raw values of the comparisons
                     and a checksum of everything at the end. ROUNDS (default 1500) scales the work.
     badmemcpy       memcpy from a bad pointer, no handler: SIGSEGV ends the process
     badstrlen       strlen of a bad pointer, no handler
     catch           both, with a SIGSEGV handler that reports the fault address (relative to
                     the bad pointer) and siglongjmps back
   The output is deterministic, so it can be compared with the native run. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF (1 << 16)
#define NSTR 512

static uint32_t seed = 1;
static uint32_t rnd(void) {
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
}

static uint64_t sum;
static void mix(uint64_t v) { sum = (sum ^ v) * 0x100000001b3ull; }
static void mix_buf(const unsigned char *p, size_t n) {    /* one word in eight: cheap */
    uint64_t h = 0;
    for (size_t i = 0; i < n; i += 64) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h + w) * 31;
    }
    mix(h);
}
static int sign(int v) { return (v > 0) - (v < 0); }

static unsigned char a[BUF + 64], b[BUF + 64];
static char *strs[NSTR];
/* The hooks below keep gcc from turning calls with constant arguments into inline code. */
static size_t (*volatile p_strlen)(const char *) = strlen;
static int (*volatile v_strcmp)(const char *, const char *) = strcmp;
static int (*volatile v_strncmp)(const char *, const char *, size_t) = strncmp;
static int (*volatile v_memcmp)(const void *, const void *, size_t) = memcmp;
static char *(*volatile v_strcpy)(char *, const char *) = strcpy;

static void make_strings(void) {
    for (int i = 0; i < NSTR; i++) {
        size_t len = rnd() % 300;
        if (i % 7 == 0) len = rnd() % 8;
        char *s = malloc(len + 1);
        /* few letters, long shared prefixes: comparisons go deep */
        for (size_t j = 0; j < len; j++)
            s[j] = (j < len / 2 && i % 3) ? 'a' + (j % 5) : 'a' + rnd() % 4;
        if (i % 11 == 0 && len) s[rnd() % len] = (char)(0x80 + rnd() % 100);   /* high bytes */
        s[len] = 0;
        strs[i] = s;
    }
}

static void memory_round(void) {
    for (int k = 0; k < 400; k++) {
        size_t n = rnd() % (k % 10 == 0 ? 8192 : 300);
        size_t so = rnd() % (BUF - n), dof = rnd() % (BUF - n);
        memcpy(b + dof, a + so, n);
        size_t m = rnd() % 2048, o1 = rnd() % (BUF - m - 64), d = rnd() % 64;
        if (k & 1) memmove(a + o1 + d, a + o1, m);    /* forward overlap */
        else memmove(a + o1, a + o1 + d, m);          /* backward overlap */
        size_t z = rnd() % (k % 16 == 0 ? 20000 : 200);
        memset(a + rnd() % (BUF - z), (int)(rnd() & 0xff), z);
        int c = memcmp(a + so, b + dof, n);
        mix((uint64_t)sign(c) + 7);
        void *hit = memchr(b + dof, (int)(rnd() & 0xff), n);
        mix(hit ? (uint64_t)((unsigned char *)hit - b) : 1);
    }
    mix_buf(a, BUF);
    mix_buf(b, BUF);
}

static void string_round(int round) {
    char tmp[1024];
    uint64_t lens = 0;
    for (int i = 0; i < NSTR; i++) {
        const char *s = strs[i], *t = strs[(i * 7 + round) % NSTR];
        lens += strlen(s);
        int c = strcmp(s, t);
        int nc = strncmp(s, t, (size_t)(rnd() % 64));
        size_t ls = strlen(s), lt = strlen(t);
        int mc = memcmp(s, t, ls < lt ? ls : lt);
        mix((uint64_t)(sign(c) * 9 + sign(nc) * 3 + sign(mc)) + 100);
        const char *ch = strchr(s, 'a' + (i + round) % 5);
        const char *rch = strrchr(s, 'a' + (i + round) % 5);
        mix(ch ? (uint64_t)(ch - s) : 999);
        mix(rch ? (uint64_t)(rch - s) : 999);
        mix(strchr(s, 0) - s);                       /* strchr finds the terminator */
        char *e = stpcpy(v_strcpy(tmp, s) + ls, t);  /* strcpy, then stpcpy appends */
        mix((uint64_t)(e - tmp) + strnlen(tmp, 100));
        mix(strlen(tmp));
    }
    mix(lens);
}

static void show_values(void) {
    /* raw return values a program might print: both libcs return byte differences */
    const char *pairs[][2] = {{"abc", "abd"}, {"abd", "abc"}, {"abc", "abc"}, {"", "a"},
                              {"a", ""}, {"hello\x80", "hello\x01"}, {"zzzz", "aaaa"},
                              {"same prefix that is long x", "same prefix that is long y"}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        const char *x = pairs[i][0], *y = pairs[i][1];
        size_t n = p_strlen(x) < p_strlen(y) ? p_strlen(x) : p_strlen(y);
        printf("cmp %zu: strcmp sign %d strncmp sign %d memcmp sign %d\n", i,
               sign(v_strcmp(x, y)), sign(v_strncmp(x, y, 3)), sign(v_memcmp(x, y, n)));
    }
    /* memcmp's value is the byte difference in every glibc variant only for n = 1 and n > 16
       (__memcmp_sse2 returns -1/1 or a word difference for 2..16); the sign for all sizes */
    printf("raw: strcmp(abc,abd)=%d strcmp(b,a)=%d strncmp=%d memcmp=%d %d %d %d\n",
           v_strcmp("abc", "abd"), v_strcmp("b", "a"), v_strncmp("xyz\x90", "xyz\x10", 9),
           v_memcmp("\x10", "\x05", 1), v_memcmp("\x01", "\xf0", 1),
           v_memcmp("0123456789abcdefgh\x20", "0123456789abcdefgh\x05", 19),
           v_memcmp("0123456789abcdefgh\x01", "0123456789abcdefgh\xf0", 19));
    for (size_t n = 2; n <= 16; n++)
        printf("%d", sign(v_memcmp("0123456789abcdef\x01", "0123456789abcdef\x02", n))
               + sign(v_memcmp("0123456789abcdef\xff" + 17 - n, "0123456789abcdef\x01" + 17 - n,
                               n)) * 3 + 4);
    printf("\n");
    char *p = strchr(strs[3], 'c');
    printf("strlen(strs[0..3]) = %zu %zu %zu %zu; strchr found=%d\n", strlen(strs[0]),
           strlen(strs[1]), strlen(strs[2]), strlen(strs[3]), p != NULL);
}

static sigjmp_buf env;
static char *volatile badp = (char *)16;
static volatile size_t n100 = 100, n5000 = 5000;    /* sizes gcc cannot see: real calls */
static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    printf("caught signal %d at bad+%ld\n", sig, (long)((char *)si->si_addr - badp));
    fflush(stdout);
    siglongjmp(env, 1);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "work";
    static char dst[256];
    if (!strcmp(mode, "badmemcpy")) {
        printf("memcpy from a bad pointer\n");
        fflush(stdout);
        memcpy(dst, badp, n100);
        printf("not reached\n");
        return 1;
    }
    if (!strcmp(mode, "badstrlen")) {
        printf("strlen of a bad pointer\n");
        fflush(stdout);
        printf("not reached %zu\n", strlen(badp));
        return 1;
    }
    if (!strcmp(mode, "catch")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigaction(SIGSEGV, &sa, NULL);
        if (!sigsetjmp(env, 1)) memcpy(dst, badp, n100);
        if (!sigsetjmp(env, 1)) printf("%zu\n", strlen(badp));
        if (!sigsetjmp(env, 1)) memset(badp + 4096, 1, n5000);
        if (!sigsetjmp(env, 1)) printf("%d\n", strcmp("abc", badp));
        printf("done\n");
        return 0;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 1500;
    for (size_t i = 0; i < BUF; i++) a[i] = (unsigned char)rnd();
    make_strings();
    show_values();
    for (int r = 0; r < rounds; r++) {
        memory_round();
        string_round(r);
        if (r % 500 == 0) printf("round %d: %016llx\n", r, (unsigned long long)sum);
    }
    printf("checksum %016llx\n", (unsigned long long)sum);
    return 0;
}
