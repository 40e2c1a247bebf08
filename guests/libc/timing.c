/* Reads every clock a program can read and prints what it saw: rdtsc around a loop and back to
 * back, CLOCK_REALTIME, CLOCK_MONOTONIC, gettimeofday, time(), the CPU-time clock, how many
 * times a loop calling clock_gettime runs before the clock has advanced by 1 ms, and how long
 * nanosleep and clock_nanosleep take by clock_gettime. Natively, and under jitbt with the host
 * clock, the output differs from run to run; with `--accuracy cycle` (a virtual clock driven by
 * modelled cycles) two runs print the same bytes. One "name value" pair a line. */
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <x86intrin.h>

#define SPIN_NS 1000000LL            /* the spin loop runs until the clock advanced this much */
#define SPIN_LIMIT 5000000L          /* ... or this many times (a clock that never advances) */

static volatile uint64_t sink;

static long long ns_of(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static long long now(clockid_t clock)
{
    struct timespec t;
    if (clock_gettime(clock, &t) != 0)
        return -1;
    return ns_of(&t);
}

int main(void)
{
    long long realtime = now(CLOCK_REALTIME), monotonic = now(CLOCK_MONOTONIC);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long seconds = (long long)time(NULL);
    printf("realtime_ns %lld\n", realtime);
    printf("monotonic_ns %lld\n", monotonic);
    printf("gettimeofday_us %lld\n", (long long)tv.tv_sec * 1000000LL + tv.tv_usec);
    printf("time_s %lld\n", seconds);

    uint64_t t0 = __rdtsc();
    for (uint64_t i = 0; i < 100000; i++)
        sink += i * i;
    uint64_t t1 = __rdtsc();
    uint64_t t2 = __rdtsc();
    printf("rdtsc_loop_ticks %llu\n", (unsigned long long)(t1 - t0));
    printf("rdtsc_back_to_back_ticks %llu\n", (unsigned long long)(t2 - t1));

    long long start = now(CLOCK_MONOTONIC), end;
    long iterations = 0;
    do {
        end = now(CLOCK_MONOTONIC);
        iterations++;
    } while (end - start < SPIN_NS && iterations < SPIN_LIMIT);
    printf("spin_iterations %ld\n", iterations);
    printf("spin_ns %lld\n", end - start);

    struct timespec req = {0, 5000000};           /* 5 ms */
    uint64_t s0 = __rdtsc();
    start = now(CLOCK_MONOTONIC);
    nanosleep(&req, NULL);
    end = now(CLOCK_MONOTONIC);
    uint64_t s1 = __rdtsc();
    printf("nanosleep_requested_ns %lld\n", ns_of(&req));
    printf("nanosleep_measured_ns %lld\n", end - start);
    printf("nanosleep_rdtsc_ticks %llu\n", (unsigned long long)(s1 - s0));

    req.tv_nsec = 2000000;                        /* 2 ms, relative, on CLOCK_MONOTONIC */
    start = now(CLOCK_MONOTONIC);
    clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    end = now(CLOCK_MONOTONIC);
    printf("clock_nanosleep_requested_ns %lld\n", ns_of(&req));
    printf("clock_nanosleep_measured_ns %lld\n", end - start);

    printf("process_cputime_ns %lld\n", now(CLOCK_PROCESS_CPUTIME_ID));
    printf("realtime_end_ns %lld\n", now(CLOCK_REALTIME));
    printf("monotonic_end_ns %lld\n", now(CLOCK_MONOTONIC));
    return 0;
}
