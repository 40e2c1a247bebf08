/* support.c - entry point and the mem* functions gcc may call even when
 * freestanding. Linked into every C guest program. */
#include "sys.h"

/* Entry: the kernel leaves argc at (%rsp), then argv[], NULL, envp[], NULL,
 * auxv. Pass the initial stack pointer to cstart with a 16-byte aligned
 * stack (so cstart sees the usual rsp % 16 == 8 after the call). */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call cstart\n"
        "    hlt\n"
        ".size _start, .-_start\n");

__attribute__((noreturn, used)) void cstart(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    sys_exit_group(main(argc, argv));
}

/* Plain byte loops; the attribute stops gcc from recognising them as
 * memset/memcpy patterns and compiling them into calls to themselves. */
#define NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_LIBCALL void *memset(void *d, int c, size_t n)
{
    u8 *p = (u8 *)d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

NO_LIBCALL void *memcpy(void *d, const void *s, size_t n)
{
    u8 *dp = (u8 *)d;
    const u8 *sp = (const u8 *)s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

NO_LIBCALL void *memmove(void *d, const void *s, size_t n)
{
    u8 *dp = (u8 *)d;
    const u8 *sp = (const u8 *)s;
    if (dp < sp) {
        while (n--)
            *dp++ = *sp++;
    } else if (dp > sp) {
        while (n--)
            dp[n] = sp[n];
    }
    return d;
}

NO_LIBCALL int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *x = (const u8 *)a;
    const u8 *y = (const u8 *)b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
