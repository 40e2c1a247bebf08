/* statemachine: a bytecode VM interpreted by a big switch (dense opcodes, so
 * gcc emits a jump table) and a character-level tokenizer state machine. */
#include "sys.h"

/* ---------------- register VM ---------------- */

enum {
    OP_HALT, OP_LI, OP_MOV, OP_ADD, OP_ADDI, OP_SUB, OP_MUL, OP_MULI,
    OP_DIVU, OP_REMU, OP_AND, OP_ANDI, OP_OR, OP_XOR, OP_SHLI, OP_SHRI,
    OP_EQI, OP_LTU, OP_LTS, OP_JMP, OP_JZ, OP_JNZ, OP_OUT, OP_NEG,
};

struct insn {
    u8 op, a, b, c;
    i32 imm;
};

#define I(op, a, b, c, imm) { OP_##op, a, b, c, imm }

/* r0 = i, r1 = acc, r2 = limit, r3 = x, r4 = steps, r5 = tmp, r6/r7 = gcd */
static const struct insn prog[] = {
    /*  0 */ I(LI, 0, 0, 0, 1),
    /*  1 */ I(LI, 1, 0, 0, 0),
    /*  2 */ I(LI, 2, 0, 0, 301),
    /*  3 */ I(MOV, 3, 0, 0, 0),      /* outer: x = i */
    /*  4 */ I(LI, 4, 0, 0, 0),       /* steps = 0 */
    /*  5 */ I(EQI, 5, 3, 0, 1),      /* inner: while x != 1 */
    /*  6 */ I(JNZ, 5, 0, 0, 15),
    /*  7 */ I(ANDI, 5, 3, 0, 1),
    /*  8 */ I(JZ, 5, 0, 0, 12),
    /*  9 */ I(MULI, 3, 3, 0, 3),     /* odd: x = 3x + 1 */
    /* 10 */ I(ADDI, 3, 3, 0, 1),
    /* 11 */ I(JMP, 0, 0, 0, 13),
    /* 12 */ I(SHRI, 3, 3, 0, 1),     /* even: x >>= 1 */
    /* 13 */ I(ADDI, 4, 4, 0, 1),
    /* 14 */ I(JMP, 0, 0, 0, 5),
    /* 15 */ I(MULI, 1, 1, 0, 31),    /* acc = acc * 31 + steps */
    /* 16 */ I(ADD, 1, 1, 4, 0),
    /* 17 */ I(OUT, 4, 0, 0, 0),
    /* 18 */ I(ADDI, 0, 0, 0, 1),
    /* 19 */ I(LTU, 5, 0, 2, 0),
    /* 20 */ I(JNZ, 5, 0, 0, 3),
    /* 21 */ I(OUT, 1, 0, 0, 0),
    /* 22 */ I(LI, 6, 0, 0, 1071),    /* gcd(1071, 462) */
    /* 23 */ I(LI, 7, 0, 0, 462),
    /* 24 */ I(JZ, 7, 0, 0, 29),      /* gcd loop */
    /* 25 */ I(REMU, 5, 6, 7, 0),
    /* 26 */ I(MOV, 6, 7, 0, 0),
    /* 27 */ I(MOV, 7, 5, 0, 0),
    /* 28 */ I(JMP, 0, 0, 0, 24),
    /* 29 */ I(OUT, 6, 0, 0, 0),
    /* 30 */ I(LI, 5, 0, 0, -5),      /* signed/unsigned compare of -5, 3 */
    /* 31 */ I(LI, 4, 0, 0, 3),
    /* 32 */ I(LTS, 3, 5, 4, 0),      /* 1 */
    /* 33 */ I(LTU, 2, 5, 4, 0),      /* 0 */
    /* 34 */ I(SHLI, 3, 3, 0, 1),
    /* 35 */ I(OR, 3, 3, 2, 0),
    /* 36 */ I(OUT, 3, 0, 0, 0),      /* 2 */
    /* 37 */ I(DIVU, 2, 1, 6, 0),     /* misc ALU ops on acc */
    /* 38 */ I(XOR, 2, 2, 1, 0),
    /* 39 */ I(SUB, 2, 2, 6, 0),
    /* 40 */ I(MUL, 2, 2, 2, 0),
    /* 41 */ I(AND, 2, 2, 1, 0),
    /* 42 */ I(NEG, 2, 2, 0, 0),
    /* 43 */ I(OUT, 2, 0, 0, 0),
    /* 44 */ I(HALT, 0, 0, 0, 0),
};

struct vm_result {
    u64 hash;
    u64 outs;
    u64 last_out[4]; /* last four OUT values, most recent last */
    u64 steps;
};

static void run_vm(const struct insn *code, struct vm_result *res)
{
    u64 r[8] = {0};
    u32 pc = 0;
    res->hash = 0xcbf29ce484222325ull;
    res->outs = 0;
    res->steps = 0;
    for (int i = 0; i < 4; i++)
        res->last_out[i] = 0;

    for (;;) {
        const struct insn *in = &code[pc++];
        u64 imm = (u64)(i64)in->imm;
        res->steps++;
        switch (in->op) {
        case OP_HALT: return;
        case OP_LI:   r[in->a] = imm; break;
        case OP_MOV:  r[in->a] = r[in->b]; break;
        case OP_ADD:  r[in->a] = r[in->b] + r[in->c]; break;
        case OP_ADDI: r[in->a] = r[in->b] + imm; break;
        case OP_SUB:  r[in->a] = r[in->b] - r[in->c]; break;
        case OP_MUL:  r[in->a] = r[in->b] * r[in->c]; break;
        case OP_MULI: r[in->a] = r[in->b] * imm; break;
        case OP_DIVU: r[in->a] = r[in->c] ? r[in->b] / r[in->c] : 0; break;
        case OP_REMU: r[in->a] = r[in->c] ? r[in->b] % r[in->c] : r[in->b]; break;
        case OP_AND:  r[in->a] = r[in->b] & r[in->c]; break;
        case OP_ANDI: r[in->a] = r[in->b] & imm; break;
        case OP_OR:   r[in->a] = r[in->b] | r[in->c]; break;
        case OP_XOR:  r[in->a] = r[in->b] ^ r[in->c]; break;
        case OP_SHLI: r[in->a] = r[in->b] << (imm & 63); break;
        case OP_SHRI: r[in->a] = r[in->b] >> (imm & 63); break;
        case OP_EQI:  r[in->a] = r[in->b] == imm; break;
        case OP_LTU:  r[in->a] = r[in->b] < r[in->c]; break;
        case OP_LTS:  r[in->a] = (i64)r[in->b] < (i64)r[in->c]; break;
        case OP_JMP:  pc = (u32)imm; break;
        case OP_JZ:   if (r[in->a] == 0) pc = (u32)imm; break;
        case OP_JNZ:  if (r[in->a] != 0) pc = (u32)imm; break;
        case OP_NEG:  r[in->a] = -r[in->b]; break;
        case OP_OUT:
            res->hash = (res->hash ^ r[in->a]) * 0x100000001b3ull;
            res->outs++;
            for (int i = 0; i < 3; i++)
                res->last_out[i] = res->last_out[i + 1];
            res->last_out[3] = r[in->a];
            break;
        default:
            res->hash = 0; /* bad opcode */
            return;
        }
    }
}

/* ---------------- tokenizer ---------------- */

static const char source_text[] =
    "# a tiny program\n"
    "def gcd(a, b):\n"
    "    while b != 0:\n"
    "        a, b = b, a % b   # euclid\n"
    "    return a\n"
    "x = 0x1F + 42 * (7 - 3) / 2\n"
    "name = \"hello \\\"world\\\"\"\n"
    "mask = 0xff & ~x | 1 << 3\n"
    "if x >= 10 and name != '':\n"
    "    print(gcd(1071, 462), x <= 99, mask)\n"
    "total += 12345 ; total -= 0x10\n";

enum tok_state { S_START, S_IDENT, S_ZERO, S_DEC, S_HEX, S_OP, S_STR, S_STR_ESC, S_COMMENT };

enum tok_kind { T_IDENT, T_NUMBER, T_OP, T_STRING, T_COMMENT, T_NEWLINE, T_KINDS };

enum char_class { C_SPACE, C_NL, C_ALPHA, C_DIGIT, C_ZERO, C_X, C_HEXALPHA, C_QUOTE,
                  C_BSLASH, C_HASH, C_OPCH, C_OTHER, C_EOF };

static int classify(int c)
{
    switch (c) {
    case 0: return C_EOF;
    case ' ': case '\t': return C_SPACE;
    case '\n': return C_NL;
    case '0': return C_ZERO;
    case '1': case '2': case '3': case '4': case '5':
    case '6': case '7': case '8': case '9': return C_DIGIT;
    case 'x': case 'X': return C_X;
    case 'a': case 'b': case 'c': case 'd': case 'e': case 'f':
    case 'A': case 'B': case 'C': case 'D': case 'E': case 'F': return C_HEXALPHA;
    case '"': case '\'': return C_QUOTE;
    case '\\': return C_BSLASH;
    case '#': return C_HASH;
    case '+': case '-': case '*': case '/': case '%': case '=': case '<':
    case '>': case '!': case '&': case '|': case '~': case '^': case '(':
    case ')': case ',': case ':': case ';': return C_OPCH;
    default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
            return C_ALPHA;
        return C_OTHER;
    }
}

struct tok_result {
    u32 count[T_KINDS];
    u64 number_sum;
    u64 ident_hash;
    u64 op_hash;
    u32 str_chars;
};

static int is_ident_char(int cls)
{
    return cls == C_ALPHA || cls == C_X || cls == C_HEXALPHA || cls == C_DIGIT ||
           cls == C_ZERO;
}

/* == != <= >= += -= *= /= << >> */
static int is_op2(int first, int c)
{
    switch (first) {
    case '<': case '>':
        return c == '=' || c == first;
    case '=': case '!': case '+': case '-': case '*': case '/':
        return c == '=';
    default:
        return 0;
    }
}

static void tokenize(const char *p, struct tok_result *t)
{
    enum tok_state st = S_START;
    u64 num = 0, h = 0;
    char quote = 0;
    memset(t, 0, sizeof *t);

    for (;;) {
        int c = (u8)*p;
        int cls = classify(c);
        int consume = 1;

        switch (st) {
        case S_START:
            switch (cls) {
            case C_EOF: return;
            case C_SPACE: break;
            case C_NL: t->count[T_NEWLINE]++; break;
            case C_ALPHA: case C_X: case C_HEXALPHA:
                st = S_IDENT; h = 0xcbf29ce484222325ull; consume = 0; break;
            case C_ZERO: st = S_ZERO; num = 0; break;
            case C_DIGIT: st = S_DEC; num = 0; consume = 0; break;
            case C_QUOTE: st = S_STR; quote = (char)c; break;
            case C_HASH: st = S_COMMENT; break;
            case C_OPCH: st = S_OP; h = 0; consume = 0; break;
            default: break; /* ignore stray characters */
            }
            break;
        case S_IDENT:
            if (is_ident_char(cls)) {
                h = (h ^ (u64)c) * 0x100000001b3ull;
            } else {
                t->ident_hash = t->ident_hash * 131 + h;
                t->count[T_IDENT]++;
                st = S_START;
                consume = 0;
            }
            break;
        case S_ZERO:
            if (cls == C_X) {
                st = S_HEX;
            } else {
                st = S_DEC;
                consume = 0;
            }
            break;
        case S_DEC:
            if (cls == C_DIGIT || cls == C_ZERO) {
                num = num * 10 + (u64)(c - '0');
            } else {
                t->number_sum += num;
                t->count[T_NUMBER]++;
                st = S_START;
                consume = 0;
            }
            break;
        case S_HEX:
            if (cls == C_DIGIT || cls == C_ZERO) {
                num = num * 16 + (u64)(c - '0');
            } else if (cls == C_HEXALPHA) {
                num = num * 16 + (u64)((c | 0x20) - 'a' + 10);
            } else {
                t->number_sum += num;
                t->count[T_NUMBER]++;
                st = S_START;
                consume = 0;
            }
            break;
        case S_OP:
            /* one-character operators, and the two-character ones from is_op2 */
            if (h == 0 && cls == C_OPCH) {
                h = (u64)c;
            } else if (h != 0 && h < 256 && is_op2((int)h, c)) {
                h = h * 256 + (u64)c;
            } else {
                t->op_hash = t->op_hash * 257 + h;
                t->count[T_OP]++;
                st = S_START;
                consume = 0;
            }
            break;
        case S_STR:
            if (cls == C_BSLASH) {
                st = S_STR_ESC;
            } else if (c == quote || cls == C_EOF || cls == C_NL) {
                t->count[T_STRING]++;
                st = S_START;
                consume = c == quote;
            } else {
                t->str_chars++;
            }
            break;
        case S_STR_ESC:
            t->str_chars++;
            st = S_STR;
            consume = cls != C_EOF;
            break;
        case S_COMMENT:
            if (cls == C_NL || cls == C_EOF) {
                t->count[T_COMMENT]++;
                st = S_START;
                consume = 0;
            }
            break;
        }
        if (consume)
            p++;
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct vm_result vr;
    struct tok_result tr;

    run_vm(prog, &vr);
    put_kv_u64("vm steps = ", vr.steps);
    put_kv_u64("vm outs = ", vr.outs);
    put_kv_u64("vm collatz acc = ", vr.last_out[0]);
    put_kv_u64("vm gcd = ", vr.last_out[1]);
    put_kv_u64("vm cmp bits = ", vr.last_out[2]);
    put_kv_hex64("vm alu = ", vr.last_out[3]);
    put_kv_hex64("vm hash = ", vr.hash);

    tokenize(source_text, &tr);
    put_kv_u64("tok idents = ", tr.count[T_IDENT]);
    put_kv_u64("tok numbers = ", tr.count[T_NUMBER]);
    put_kv_u64("tok ops = ", tr.count[T_OP]);
    put_kv_u64("tok strings = ", tr.count[T_STRING]);
    put_kv_u64("tok comments = ", tr.count[T_COMMENT]);
    put_kv_u64("tok newlines = ", tr.count[T_NEWLINE]);
    put_kv_u64("tok number sum = ", tr.number_sum);
    put_kv_u64("tok string chars = ", tr.str_chars);

    u64 sum = vr.hash;
    sum = (sum ^ tr.ident_hash) * 0x100000001b3ull;
    sum = (sum ^ tr.op_hash) * 0x100000001b3ull;
    sum = (sum ^ tr.number_sum) * 0x100000001b3ull;
    for (int i = 0; i < T_KINDS; i++)
        sum = (sum ^ tr.count[i]) * 0x100000001b3ull;
    put_kv_hex64("checksum = ", sum);
    return 0;
}
