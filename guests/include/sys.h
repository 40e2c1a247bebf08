/* sys.h - freestanding support for jitbt guest programs (x86-64 Linux, no libc).
 *
 * Raw syscall wrappers, a few syscall helpers and small print helpers.
 * The program entry point (_start -> cstart -> main) and memset/memcpy/
 * memmove/memcmp live in lib/support.c.
 */
#ifndef JITBT_GUEST_SYS_H
#define JITBT_GUEST_SYS_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef signed char i8;
typedef short i16;
typedef int i32;
typedef long i64;
typedef unsigned long size_t;
typedef long ssize_t;

#define SYS_read 0
#define SYS_write 1
#define SYS_brk 12
#define SYS_exit_group 231

/* ---- raw syscalls: nr in rax, args in rdi rsi rdx r10 r8 r9 ---- */

static inline long syscall0(long n)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n) : "rcx", "r11", "memory");
    return ret;
}

static inline long syscall1(long n, long a1)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a1)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long syscall2(long n, long a1, long a2)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a1), "S"(a2)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long syscall3(long n, long a1, long a2, long a3)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a1), "S"(a2), "d"(a3)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long syscall4(long n, long a1, long a2, long a3, long a4)
{
    long ret;
    register long r10 __asm__("r10") = a4;
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long syscall5(long n, long a1, long a2, long a3, long a4, long a5)
{
    long ret;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long syscall6(long n, long a1, long a2, long a3, long a4, long a5,
                            long a6)
{
    long ret;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8),
                       "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* ---- syscall helpers ---- */

static inline long sys_write(int fd, const void *buf, size_t len)
{
    return syscall3(SYS_write, fd, (long)buf, (long)len);
}

static inline long sys_read(int fd, void *buf, size_t len)
{
    return syscall3(SYS_read, fd, (long)buf, (long)len);
}

/* Returns the new program break (the current one if the request failed). */
static inline u64 sys_brk(u64 addr)
{
    return (u64)syscall1(SYS_brk, (long)addr);
}

static inline __attribute__((noreturn)) void sys_exit_group(int status)
{
    for (;;)
        syscall1(SYS_exit_group, status);
}

/* ---- print helpers (no buffering: each call is one write) ---- */

static inline size_t str_len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* Write all of buf, retrying on short writes. */
static inline void write_all(int fd, const void *buf, size_t len)
{
    const char *p = (const char *)buf;
    while (len > 0) {
        long r = sys_write(fd, p, len);
        if (r <= 0)
            return;
        p += r;
        len -= (size_t)r;
    }
}

static inline void fput_str(int fd, const char *s) { write_all(fd, s, str_len(s)); }
static inline void put_str(const char *s) { fput_str(1, s); }

static inline void put_char(char c) { write_all(1, &c, 1); }

static inline void put_u64(u64 v)
{
    char buf[24];
    int i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    write_all(1, buf + i, sizeof buf - i);
}

static inline void put_i64(i64 v)
{
    if (v < 0) {
        put_char('-');
        put_u64(-(u64)v);
    } else {
        put_u64((u64)v);
    }
}

/* Hex with exactly `digits` digits (1..16), no prefix. */
static inline void put_hexn(u64 v, int digits)
{
    char buf[16];
    for (int i = digits - 1; i >= 0; i--) {
        buf[i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    }
    write_all(1, buf, (size_t)digits);
}

static inline void put_hex32(u32 v) { put_hexn(v, 8); }
static inline void put_hex64(u64 v) { put_hexn(v, 16); }

/* "label value\n" conveniences. */
static inline void put_kv_u64(const char *label, u64 v)
{
    put_str(label);
    put_u64(v);
    put_char('\n');
}

static inline void put_kv_hex32(const char *label, u32 v)
{
    put_str(label);
    put_str("0x");
    put_hex32(v);
    put_char('\n');
}

static inline void put_kv_hex64(const char *label, u64 v)
{
    put_str(label);
    put_str("0x");
    put_hex64(v);
    put_char('\n');
}

/* ---- provided by lib/support.c ---- */
int main(int argc, char **argv);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
