/* recursion: call-heavy code: naive fibonacci, Ackermann and a recursive tree walk. */
#include "common.h"

static long fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static long ack(long m, long n) {
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

struct node { struct node *l, *r; long v; };

static struct node *build(long depth, long *ctr) {
    if (!depth) return NULL;
    struct node *n = malloc(sizeof *n);
    n->v = (*ctr)++;
    n->l = build(depth - 1, ctr);
    n->r = build(depth - 1, ctr);
    return n;
}

static long walk(struct node *n) { return n ? n->v ^ (walk(n->l) + 2 * walk(n->r)) : 1; }

int main(int argc, char **argv) {
    long scale = scale_arg(argc, argv, 44);
    long ctr = 0;
    struct node *t = build(16, &ctr);
    uint64_t h = mix64(0, (uint64_t)fib(scale));
    h = mix64(h, (uint64_t)ack(2, 2000));
    for (int i = 0; i < 20; i++) h = mix64(h, (uint64_t)walk(t));
    printf("recursion %lu\n", (unsigned long)h);
    return 0;
}
