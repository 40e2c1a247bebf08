/* Numeric workout for hosted guests built at -O0, -O2 and -O3 with glibc and musl: 128-bit
 * integer arithmetic, loops that gcc -O3 vectorises with SSE2 (sums, dot products, saxpy,
 * min/max, byte histograms), double and float formatting (%f %e %g %a), long double arithmetic
 * and printing (%Lf %Le), conversions between the three, and strtod/strtold round trips.
 * The output is deterministic: every input comes from a fixed linear congruential generator. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef __int128 i128;

#define N 1000

static uint64_t seed = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return seed;
}

static void print_u128_hex(const char *label, u128 v)
{
    printf("%s 0x%016llx%016llx\n", label, (unsigned long long)(v >> 64), (unsigned long long)v);
}

static void u128_to_dec(u128 v, char *out)
{
    char tmp[48];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

static void print_i128_dec(const char *label, i128 v)
{
    char buf[48];
    if (v < 0) {
        u128_to_dec(-(u128)v, buf);
        printf("%s -%s\n", label, buf);
    } else {
        u128_to_dec((u128)v, buf);
        printf("%s %s\n", label, buf);
    }
}

static void int128_math(void)
{
    u128 a = ((u128)next() << 64) | next();
    u128 b = next() | 1;
    i128 s = -(i128)(((u128)next() << 40) | next());
    print_u128_hex("a", a);
    print_u128_hex("b", b);
    print_u128_hex("a*b", a * b);
    print_u128_hex("a/b", a / b);
    print_u128_hex("a%b", a % b);
    u128 c = ((u128)next() << 64) | next();
    print_u128_hex("a/c", a / (c >> 3));
    print_u128_hex("a%c", a % (c >> 3));
    for (int sh = 0; sh < 128; sh += 27) {
        printf("shift %d ", sh);
        print_u128_hex("<<", a << sh);
        print_u128_hex("  >>", a >> sh);
        print_i128_dec("  sar", s >> sh);
    }
    print_i128_dec("s", s);
    print_i128_dec("s*7", s * 7);
    print_i128_dec("s/1000003", s / 1000003);
    print_i128_dec("s%1000003", s % 1000003);
    u128 f = 1;
    for (int i = 1; i <= 34; i++) {
        f *= (u128)i;
        if (i % 6 == 4) {
            char buf[48];
            u128_to_dec(f, buf);
            printf("%d! = %s\n", i, buf);
        }
    }
    /* 64x64 -> 128 products through the widening multiply */
    uint64_t x = next(), y = next();
    u128 p = (u128)x * y;
    printf("mulhi %016llx mullo %016llx\n", (unsigned long long)(p >> 64), (unsigned long long)p);
}

/* ---- loops gcc -O3 vectorises -------------------------------------------------------------- */
static int32_t ia[N], ib[N];
static int64_t la[N];
static double da[N], db[N], dc[N];
static float fa[N], fb[N];
static uint8_t bytes[4096];

static void fill(void)
{
    for (int i = 0; i < N; i++) {
        ia[i] = (int32_t)(next() >> 40) - (1 << 23);
        ib[i] = (int32_t)(next() >> 44);
        la[i] = (int64_t)next() >> 20;
        da[i] = (double)(int32_t)(next() >> 32) / 65536.0;
        db[i] = (double)(int32_t)(next() >> 32) / 1048576.0;
        fa[i] = (float)(int32_t)(next() >> 40) / 256.0f;
        fb[i] = (float)(int32_t)(next() >> 40) / 4096.0f;
    }
    for (int i = 0; i < (int)sizeof bytes; i++)
        bytes[i] = (uint8_t)(next() >> 56) & 0x3F;
}

__attribute__((noinline)) static int32_t sum_i32(const int32_t *a, int n)
{
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}

__attribute__((noinline)) static int64_t sum_i64(const int64_t *a, int n)
{
    int64_t s = 0;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}

__attribute__((noinline)) static int64_t dot_i32(const int32_t *a, const int32_t *b, int n)
{
    int64_t s = 0;
    for (int i = 0; i < n; i++)
        s += (int64_t)a[i] * b[i];
    return s;
}

__attribute__((noinline)) static void mul_i32(int32_t *restrict out, const int32_t *a,
                                              const int32_t *b, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = a[i] * b[i] + (a[i] >> 3);
}

__attribute__((noinline)) static void saxpy(float *restrict y, const float *x, float k, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = k * x[i] + y[i];
}

__attribute__((noinline)) static void daxpy(double *restrict out, const double *x,
                                            const double *y, double k, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = k * x[i] + y[i];
}

__attribute__((noinline)) static double dot_f64(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

__attribute__((noinline)) static void minmax_i32(const int32_t *a, int n, int32_t *mn, int32_t *mx)
{
    int32_t lo = a[0], hi = a[0];
    for (int i = 0; i < n; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

__attribute__((noinline)) static void minmax_u8(const uint8_t *a, int n, uint8_t *mn, uint8_t *mx)
{
    uint8_t lo = 255, hi = 0;
    for (int i = 0; i < n; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

__attribute__((noinline)) static void minmax_f64(const double *a, int n, double *mn, double *mx)
{
    double lo = a[0], hi = a[0];
    for (int i = 0; i < n; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

__attribute__((noinline)) static void histogram(const uint8_t *a, int n, uint32_t *h)
{
    for (int i = 0; i < 64; i++)
        h[i] = 0;
    for (int i = 0; i < n; i++)
        h[a[i]]++;
}

__attribute__((noinline)) static uint32_t count_eq(const uint8_t *a, int n, uint8_t v)
{
    uint32_t c = 0;
    for (int i = 0; i < n; i++)
        c += a[i] == v;
    return c;
}

__attribute__((noinline)) static void convert(double *restrict out, const int32_t *a,
                                              const float *f, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = (double)a[i] * 0.5 + (double)f[i];
}

__attribute__((noinline)) static void shorts(int16_t *restrict out, const int32_t *a, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = (int16_t)(a[i] >> 8) ^ (int16_t)i;
}

__attribute__((noinline)) static uint32_t sad_u8(const uint8_t *a, const uint8_t *b, int n)
{
    uint32_t s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
    return s;
}

__attribute__((noinline)) static void avg_sat_u8(uint8_t *restrict out, const uint8_t *a,
                                                 const uint8_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t avg = (uint8_t)((a[i] + b[i] + 1) >> 1);
        unsigned sum = a[i] * 4u + avg;
        out[i] = sum > 255 ? 255 : (uint8_t)sum;
    }
}

__attribute__((noinline)) static void mul_i16(int16_t *restrict out, const int16_t *a, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = (int16_t)(a[i] * 3 + ((a[i] * a[i]) >> 16));
}

__attribute__((noinline)) static void fp_misc(float *restrict out, int32_t *restrict iout,
                                              double *restrict dout, const float *a,
                                              const float *b, const double *d, int n)
{
    for (int i = 0; i < n; i++) {
        float lo = a[i] < b[i] ? a[i] : b[i];
        float hi = a[i] > b[i] ? a[i] : b[i];
        out[i] = hi - lo + (float)iout[i];
        iout[i] = (int32_t)(lo * 2.0f);
        dout[i] = sqrt(fabs(d[i])) + (double)a[i];
    }
}

static void vector_loops(void)
{
    int32_t out[N], mn, mx;
    int16_t sh[N];
    uint32_t h[64];
    uint8_t bmn, bmx;
    double dmn, dmx;
    printf("sum_i32 %d\n", sum_i32(ia, N));
    printf("sum_i64 %lld\n", (long long)sum_i64(la, N));
    printf("dot_i32 %lld\n", (long long)dot_i32(ia, ib, N));
    mul_i32(out, ia, ib, N);
    printf("mul_i32 %d %d %d\n", out[0], out[N / 2], sum_i32(out, N));
    saxpy(fb, fa, 1.25f, N);
    printf("saxpy %a %a %.9g\n", fb[0], fb[N - 1], fb[N / 3]);
    daxpy(dc, da, db, -0.375, N);
    printf("daxpy %a %a\n", dc[7], dc[N - 3]);
    printf("dot_f64 %.17g %a\n", dot_f64(da, db, N), dot_f64(dc, da, N - 1));
    minmax_i32(ia, N, &mn, &mx);
    printf("minmax_i32 %d %d\n", mn, mx);
    minmax_u8(bytes, sizeof bytes, &bmn, &bmx);
    printf("minmax_u8 %u %u\n", bmn, bmx);
    minmax_f64(da, N, &dmn, &dmx);
    printf("minmax_f64 %g %g\n", dmn, dmx);
    histogram(bytes, sizeof bytes, h);
    for (int i = 0; i < 64; i += 8)
        printf("hist[%d..] %u %u %u %u %u %u %u %u\n", i, h[i], h[i + 1], h[i + 2], h[i + 3],
               h[i + 4], h[i + 5], h[i + 6], h[i + 7]);
    printf("count_eq %u %u\n", count_eq(bytes, sizeof bytes, 7), count_eq(bytes, 4095, 63));
    convert(dc, ia, fa, N);
    printf("convert %.6f %.6f\n", dc[1], dc[N - 1]);
    shorts(sh, ia, N);
    int32_t t = 0;
    for (int i = 0; i < N; i++)
        t = t * 31 + sh[i];
    printf("shorts %d\n", t);
    printf("sad_u8 %u\n", sad_u8(bytes, bytes + 1024, 3000));
    uint8_t avg[1024];
    avg_sat_u8(avg, bytes, bytes + 2048, 1024);
    uint32_t ah = 0;
    for (int i = 0; i < 1024; i++)
        ah = ah * 33 + avg[i];
    printf("avg_sat_u8 %u %u %u\n", avg[3], avg[1000], ah);
    int16_t m16[N];
    mul_i16(m16, sh, N);
    for (int i = 0; i < N; i++)
        t = t * 31 + m16[i];
    printf("mul_i16 %d\n", t);
    float fo[N];
    int32_t io[N];
    memcpy(io, ib, sizeof io);
    fp_misc(fo, io, dc, fa, fb, da, N);
    printf("fp_misc %a %a %d %d %a %a\n", fo[0], fo[N - 1], io[5], io[N - 2], dc[3], dc[N - 1]);
}

/* ---- floating point ------------------------------------------------------------------------ */
static void double_math(void)
{
    static const double vals[] = {0.0, -0.0, 1.0, -1.5, 0.1, 1.0 / 3.0, 2.5e-310, 1e300, -7e-5,
                                  123456789.125, 6.02214076e23, DBL_MAX, DBL_MIN, DBL_EPSILON};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        double v = vals[i];
        printf("d %f | %e | %g | %a | %.3g | %+.10e\n", v, v, v, v, v, v);
    }
    printf("inf %f %e %g nan %f\n", HUGE_VAL, -HUGE_VAL, HUGE_VAL, NAN);
    double x = 0.7;
    for (int i = 0; i < 5; i++) {
        x = x * 1.61803398875 - 0.25 / (x + 1.0);
        printf("iter %d %.17g sqrt %.17g floor %g ceil %g rint %g\n", i, x, sqrt(fabs(x)),
               floor(x * 10), ceil(x * 10), rint(x * 10));
    }
    printf("libm %.15g %.15g %.15g %.15g %.15g\n", sin(0.5), cos(2.0), exp(1.5), log(10.0),
           pow(2.0, 0.5));
    printf("fmod %g remainder %g hypot %g atan2 %g\n", fmod(10.5, 3.0), remainder(10.5, 3.0),
           hypot(3.0, 4.0), atan2(1.0, -1.0));
    float f = 1.0f;
    for (int i = 0; i < 6; i++) {
        f = f * 3.3f + 0.1f / f;
        printf("float %d %f %e %g %a %.9g\n", i, f, f, f, f, (double)sqrtf(f));
    }
    printf("floats %a %a %a\n", FLT_MAX, FLT_MIN, FLT_EPSILON);
}

static void long_double_math(void)
{
    long double a = 1.0L / 3.0L, b = 2.0L, c = -12345.6789L;
    printf("ld %Lf %Le %Lg %.20Lf\n", a, a, a, a);
    printf("ld sqrt2 %.21Le\n", sqrtl(b));
    printf("ld mul %.18Le div %.18Le\n", a * c, c / a);
    printf("ld sub %Lf add %Le\n", c - a, c + 1e-15L);
    long double f = 1.0L;
    for (int i = 1; i <= 25; i++)
        f *= i;
    printf("ld 25! %Lf %.25Le\n", f, f);
    printf("ld max %Le min %Le eps %Le\n", LDBL_MAX, LDBL_MIN, LDBL_EPSILON);
    long double acc = 0;
    for (int i = 1; i <= 200; i++)
        acc += 1.0L / ((long double)i * i);
    printf("ld zeta2 %.20Lf\n", acc);
    printf("ld libm %.18Le %.18Le %.18Le\n", expl(1.0L), logl(2.0L), sinl(1.0L));
}

static void conversions(void)
{
    long double ld = 1234567.890123456789L;
    double d = (double)ld;
    float f = (float)d;
    printf("conv %.20Lf %.17g %.9g\n", ld, d, f);
    printf("conv back %.20Lf %.20Lf\n", (long double)d, (long double)f);
    for (int i = 0; i < 8; i++) {
        int64_t v = (int64_t)next();
        double dv = (double)v;
        long double lv = (long double)v;
        uint64_t u = next();
        printf("i2f %lld %.17g %.1Lf %.17g %.1Lf", (long long)v, dv, lv, (double)u,
               (long double)u);
        printf(" f2i %lld %llu %lld\n", (long long)(dv / 3), (unsigned long long)((double)u / 5),
               (long long)(lv / 7));
    }
    double neg = -2.75;
    printf("trunc %d %ld %u %d\n", (int)neg, (long)(neg * 1e9), (unsigned)(-neg * 1e9),
           (int)(float)neg);
}

static void round_trips(void)
{
    static const char *texts[] = {"0.1", "-2.5e-3", "3.141592653589793238462643383279",
                                  "1e308", "4.9e-324", "0x1.8p+3", "inf", "-0", "123456789012345678901234567890",
                                  "2.2250738585072011e-308", "1.18973149535723176502e+4932"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        double d = strtod(texts[i], NULL);
        long double ld = strtold(texts[i], NULL);
        float f = strtof(texts[i], NULL);
        char buf[64], lbuf[80];
        snprintf(buf, sizeof buf, "%.17g", d);
        snprintf(lbuf, sizeof lbuf, "%.21Lg", ld);
        double d2 = strtod(buf, NULL);
        long double ld2 = strtold(lbuf, NULL);
        printf("rt %s -> %s %s %a %s %s\n", texts[i], buf, lbuf, (double)f,
               d2 == d || (d != d) ? "ok" : "BAD", ld2 == ld ? "ok" : "BAD");
    }
    double x = 1.0;
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        char buf[64];
        x = x * 1.7 + (double)(next() >> 40) * 1e-9;
        snprintf(buf, sizeof buf, "%.17g", x);
        bad += strtod(buf, NULL) != x;
        snprintf(buf, sizeof buf, "%a", x);
        bad += strtod(buf, NULL) != x;
    }
    printf("rt loop bad %d last %.17g\n", bad, x);
}

int main(void)
{
    int128_math();
    fill();
    vector_loops();
    double_math();
    long_double_math();
    conversions();
    round_trips();
    return 0;
}
