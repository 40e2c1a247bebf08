/* statemachine: a bytecode interpreter with a dense switch, branchy and unpredictable. */
#include "common.h"

enum { PUSH, ADD, SUB, MUL, DUP, SWAP, JNZ, DEC, XOR, SHR, POP, HALT };

int main(int argc, char **argv) {
    long rounds = scale_arg(argc, argv, 2100);
    /* stack: [acc, counter]; the loop body runs 20000 times per round */
    static const int prog[] = {PUSH, 20000, /* 2: */ SWAP, PUSH, 3, MUL, PUSH, 5, ADD, DUP, SHR, XOR,
                               SWAP, DEC, DUP, JNZ, 2, POP, HALT};
    uint64_t h = 0;
    for (long r = 0; r < rounds; r++) {
        int64_t stack[64];
        int sp = 0, pc = 0;
        stack[sp++] = r;
        for (;;) {
            int op = prog[pc++];
            switch (op) {
            case PUSH: stack[sp++] = prog[pc++]; break;
            case ADD: sp--; stack[sp - 1] += stack[sp]; break;
            case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
            case MUL: sp--; stack[sp - 1] = stack[sp - 1] * stack[sp] + (stack[sp - 1] >> 3); break;
            case DUP: stack[sp] = stack[sp - 1]; sp++; break;
            case SWAP: { int64_t t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; } break;
            case JNZ: { int t = prog[pc++]; if (stack[--sp]) pc = t; } break;
            case DEC: stack[sp - 1]--; break;
            case XOR: sp--; stack[sp - 1] ^= stack[sp]; break;
            case SHR: stack[sp - 1] = (int64_t)((uint64_t)stack[sp - 1] >> 1); break;
            case POP: sp--; break;
            default: goto done;
            }
            if (sp > 60) sp = 2;
        }
    done:
        h = mix64(h, (uint64_t)stack[sp - 1]);
    }
    printf("statemachine %lu\n", (unsigned long)h);
    return 0;
}
