/* libcmix: a hosted C program using the parts of libc real programs lean on: stdio with integer
   and floating-point formats, malloc/realloc/free, strings, qsort/bsearch, setjmp/longjmp, the
   environment, argv, files in a directory given as argv[1], time, and libm. Its output is
   deterministic (no addresses, no clock values), so it can be compared with the native run. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static jmp_buf env;
static int depth(int n) {
    if (n < 0) return 0;
    if (n == 0) longjmp(env, 42);
    return depth(n - 1) + 1;
}

int main(int argc, char **argv) {
    printf("argc=%d argv0-ok=%d\n", argc, argv[0] != NULL);
    printf("ints: %d %u %ld %lx %o %5d|%-5d|%05d\n", -42, 42u, -1234567890123L, 0xdeadbeefUL, 8, 7, 7, 7);
    printf("doubles: %f %.3f %e %g %g %a\n", 3.14159, -2.5, 12345.678, 0.0001, 1e20, 1.0);
    printf("math: %.6f %.6f %.6f %.6f %.6f\n", sqrt(2.0), sin(1.0), exp(1.0), log(10.0), pow(2.0, 0.5));
    printf("rounding: %.1f %.0f %.2f\n", 2.25, 2.5, 1.005);

    size_t n = 1000;
    int *v = malloc(n * sizeof *v);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) { x = x * 1103515245u + 12345u; v[i] = (int)(x >> 8) % 10000 - 5000; }
    qsort(v, n, sizeof *v, cmp_int);
    int key = v[500];
    int *found = bsearch(&key, v, n, sizeof *v, cmp_int);
    printf("qsort: min=%d max=%d median=%d found=%d\n", v[0], v[n - 1], v[500], found && *found == key);
    v = realloc(v, 2 * n * sizeof *v);
    memset(v + n, 0, n * sizeof *v);
    long sum = 0;
    for (size_t i = 0; i < 2 * n; i++) sum += v[i];
    printf("realloc sum=%ld\n", sum);
    free(v);

    char buf[64];
    snprintf(buf, sizeof buf, "%s-%d", "abc", 123);
    printf("strings: %s len=%zu cmp=%d chr=%s dup=%s\n", buf, strlen(buf), strcmp("abc", "abd") < 0,
           strchr(buf, '-'), strdup("copy"));

    int r = setjmp(env);
    if (r == 0) depth(10);
    printf("longjmp returned %d\n", r);

    setenv("JITBT_TEST", "value", 1);
    printf("env: %s home-set=%d\n", getenv("JITBT_TEST"), getenv("HOME") != NULL);

    if (argc > 1) {
        char path[4096];
        snprintf(path, sizeof path, "%s/file.txt", argv[1]);
        FILE *f = fopen(path, "w");
        for (int i = 0; i < 100; i++) fprintf(f, "line %d %.2f\n", i, i / 3.0);
        fclose(f);
        f = fopen(path, "r");
        char line[128];
        int lines = 0;
        double total = 0;
        while (fgets(line, sizeof line, f)) { int a; double d; sscanf(line, "line %d %lf", &a, &d); total += d; lines++; }
        fclose(f);
        printf("file: lines=%d total=%.2f\n", lines, total);
        printf("missing: %d errno=%d\n", fopen("/nonexistent/x", "r") == NULL, errno);
        unlink(path);
    }
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&(time_t){86400 * 365}, &tm);
    printf("time: sane=%d gm=%d-%02d-%02d\n", t > 1600000000, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    long double ld = 1.0L / 3.0L;
    printf("long double: %.15Lf\n", ld);
    fprintf(stderr, "to stderr\n");
    return 7;
}
