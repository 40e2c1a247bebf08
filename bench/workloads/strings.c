/* strings: tokenising, reversing, searching and copying text with libc string functions. */
#include <string.h>
#include "common.h"

int main(int argc, char **argv) {
    long rounds = scale_arg(argc, argv, 900);
    const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"};
    long n = 1 << 18;
    char *text = malloc(n + 16), *copy = malloc(n + 16);
    long len = 0;
    for (long i = 0; len + 10 < n; i++) {
        const char *w = words[(i * 7 + (i >> 3)) % 8];
        size_t l = strlen(w);
        memcpy(text + len, w, l);
        len += l;
        text[len++] = i % 11 ? ' ' : '\n';
    }
    text[len] = 0;
    uint64_t h = 0;
    for (long r = 0; r < rounds; r++) {
        memcpy(copy, text, len + 1);
        long count = 0;
        for (char *tok = strtok(copy, " \n"); tok; tok = strtok(NULL, " \n")) {
            size_t l = strlen(tok);
            for (size_t i = 0; i < l / 2; i++) { char t = tok[i]; tok[i] = tok[l - 1 - i]; tok[l - 1 - i] = t; }
            h = mix64(h, (uint64_t)(unsigned char)tok[0] * l);
            count++;
        }
        const char *p = text;
        long found = 0;
        while ((p = strstr(p, words[r % 8])) != NULL) { found++; p++; }
        h = mix64(h, (uint64_t)(count * 131 + found + (long)(strchr(text + r, 'h') - text)));
    }
    printf("strings %lu\n", (unsigned long)h);
    return 0;
}
