/* revstr: reverse each argv[1..] string and the bytes read from stdin.
 * Exit status = argc. */
#include "sys.h"

#define STDIN_MAX (1 << 20)

static char in[STDIN_MAX];

static void reverse(char *p, size_t n)
{
    if (n < 2)
        return;
    for (size_t i = 0, j = n - 1; i < j; i++, j--) {
        char t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

int main(int argc, char **argv)
{
    put_kv_u64("argc = ", (u64)argc);
    for (int i = 1; i < argc; i++) {
        char *s = argv[i];
        size_t n = str_len(s);
        reverse(s, n); /* argv strings are writable */
        put_str("argv[");
        put_u64((u64)i);
        put_str("] reversed: \"");
        write_all(1, s, n);
        put_str("\"\n");
    }

    /* read until EOF (or error: a closed stdin counts as empty) */
    size_t len = 0, total = 0;
    for (;;) {
        char scratch[256];
        char *dst = len < STDIN_MAX ? in + len : scratch;
        size_t room = len < STDIN_MAX ? STDIN_MAX - len : sizeof scratch;
        long r = sys_read(0, dst, room);
        if (r <= 0)
            break;
        total += (size_t)r;
        if (dst == in + len)
            len += (size_t)r;
    }
    put_kv_u64("stdin bytes = ", total);
    if (total > len)
        put_kv_u64("stdin bytes kept = ", len);
    reverse(in, len);
    put_str("stdin reversed: [");
    write_all(1, in, len);
    put_str("]\n");
    return argc;
}
