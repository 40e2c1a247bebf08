/* jitbt's native helpers (loaded by translator/native.py), for work Python does an item at a
 * time on every run's path. Each has a Python path beside it that stays the reference.
 *
 * jb_block: the interpreter's decoding. One call decodes a block with capstone and makes its
 * records' words and each instruction's shape key, what translator/decoder.py and
 * translator/interp.py (shape_words) make in Python an instruction at a time
 * (translator/fastdec.py). It knows nothing of capstone but what the Python side hands it: the
 * address of cs_disasm_iter, an open handle and a cs_insn from cs_malloc, the offsets of the
 * fields it reads (the decoder's layout, taken from capstone's own ctypes mirrors when the
 * library is not 5.0), a table of capstone's register ids, the mnemonics that have rewrite
 * rules and the prefix words capstone writes before a mnemonic. So it needs no capstone headers and no Python headers: gcc alone builds it. It makes
 * only what the Python path would make the same way. Whatever else it meets (an instruction
 * with a rewrite rule, a register the translator does not take, bytes that do not decode, the
 * end of the fetched bytes) makes it return -1, and the block is decoded in Python, which
 * handles those cases. tests/test_fastdec.py checks on every block of the guest programs that
 * both give the same records and keys.
 *
 * jb_relocate: the RELA relocations of one section of an object being loaded
 * (translator/objload.py: the handler library's chunks, 4,000 relocations each, are loaded by
 * every run), each checked as the Python path checks it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ABI 3
#define MAX_OPS 4

typedef _Bool (*disasm_iter_fn)(size_t handle, const uint8_t **code, size_t *size,
                                uint64_t *address, void *insn);

/* A register's class in the table: what the decoder's REGS, XMMS, STS and MMS say of it. */
enum { R_NONE, R_GPR, R_XMM, R_ST, R_MM, R_RIP, R_FS, R_GS };

enum {  /* the configuration words jb_init takes, in this order */
    C_ITER, C_HANDLE, C_INSN,
    C_ADDRESS, C_SIZE, C_BYTES, C_MNEMONIC, C_DETAIL,
    C_GROUPS, C_NGROUPS, C_X86,
    C_PREFIX, C_NOPS, C_OPS,
    C_OP_STRIDE, C_OP_VALUE, C_OP_SIZE,
    C_COUNT
};

#define NREGS 1024
#define MAX_RULES 128

static int64_t cfg[C_COUNT];
static uint8_t reg_class[NREGS], reg_index[NREGS], reg_size[NREGS], reg_high[NREGS];
#define MAX_PREFIXES 32
static char rules[MAX_RULES][32];
static int nrules;
static char prefix_words[MAX_PREFIXES][32];
static int nprefixes;
static int ready;

int jb_abi(void) { return ABI; }

/* Words ended by a NUL each, `len` bytes of them, into `out`; their number, or -1 when one
 * is empty or too long or there are more than `most` (none may be left out: a rule missed
 * would be decoded as an ordinary instruction). */
static int words_of(const char *blob, int len, char out[][32], int most)
{
    int n = 0;
    for (int at = 0; at < len;) {
        size_t k = strnlen(blob + at, (size_t)(len - at));
        if (k == 0 || k >= 32 || n == most)
            return -1;
        memcpy(out[n], blob + at, k);
        out[n][k] = 0;
        n++;
        at += (int)k + 1;
    }
    return n;
}

/* cfg: C_COUNT words; regs: 4 bytes a capstone register id (class, index, size, high) for ids
 * 0..nregs-1; rule_names: the mnemonics with rewrite rules (rewrite.RULES), prefixes: the
 * prefix words capstone writes before a mnemonic (decoder.PREFIX_WORDS), each ended by a
 * NUL. */
int jb_init(const int64_t *config, const uint8_t *regs, int nregs, const char *rule_names,
            int rules_len, const char *prefixes, int prefixes_len)
{
    memcpy(cfg, config, sizeof cfg);
    if (nregs > NREGS)
        return -1;
    memset(reg_class, 0, sizeof reg_class);
    for (int i = 0; i < nregs; i++) {
        reg_class[i] = regs[4 * i];
        reg_index[i] = regs[4 * i + 1];
        reg_size[i] = regs[4 * i + 2];
        reg_high[i] = regs[4 * i + 3];
    }
    nrules = words_of(rule_names, rules_len, rules, MAX_RULES);
    nprefixes = words_of(prefixes, prefixes_len, prefix_words, MAX_PREFIXES);
    if (nrules < 0 || nprefixes < 0)
        return -1;
    ready = 1;
    return 0;
}

static int is_prefix_word(const char *s, size_t n)
{
    for (int i = 0; i < nprefixes; i++)
        if (strlen(prefix_words[i]) == n && memcmp(prefix_words[i], s, n) == 0)
            return 1;
    return 0;
}

/* The mnemonic without the prefix words capstone writes into its text ("rep stosq" ->
 * "stosq"); the whole text when a word before the last is not a prefix (decoder._mnemonic). */
static const char *strip_prefixes(const char *full)
{
    const char *m = full;
    for (;;) {
        const char *sp = strchr(m, ' ');
        if (!sp)
            return m;
        if (!is_prefix_word(m, (size_t)(sp - m)))
            return full;
        m = sp + 1;
    }
}

static int has_rule(const char *m)
{
    for (int i = 0; i < nrules; i++)
        if (strcmp(rules[i], m) == 0)
            return 1;
    return 0;
}

static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int32_t rds32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline int64_t rd64(const uint8_t *p) { int64_t v; memcpy(&v, p, 8); return v; }
static inline uint64_t rdu64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* Appends to the key text; returns the new length, or -1 when it does not fit. */
static long put(char *keys, long at, long cap, const char *s)
{
    size_t n = strlen(s);
    if (at + (long)n >= cap)
        return -1;
    memcpy(keys + at, s, n);
    return at + (long)n;
}

static long put_num(char *keys, long at, long cap, char kind, unsigned size)
{
    char s[8];
    int i = 0;
    s[i++] = kind;
    if (size >= 100)
        s[i++] = (char)('0' + size / 100);
    if (size >= 10)
        s[i++] = (char)('0' + size / 10 % 10);
    s[i++] = (char)('0' + size % 10);
    s[i] = 0;
    return put(keys, at, cap, s);
}

/* Decodes the block at the start of `code` (guest `address`): up to a branch or `limit`
 * instructions. Writes record i's eight words to words[8i..8i+7] (word 0, the handler, left
 * 0) and the record after the last (the block's end), the instructions' shape keys to `keys`
 * (separated by '\n'), and to info: the block's end address, the length of the key text, the
 * number of successors and the successors (at most 2). Returns the number of instructions, or
 * -1 when the block must be decoded by the Python path. */
long jb_block(const uint8_t *code, size_t len, uint64_t address, long limit, uint64_t *words,
              char *keys, long keys_cap, uint64_t *info)
{
    if (!ready || len == 0 || limit <= 0)
        return -1;
    disasm_iter_fn iter = (disasm_iter_fn)(uintptr_t)cfg[C_ITER];
    size_t handle = (size_t)cfg[C_HANDLE];
    uint8_t *insn = (uint8_t *)(uintptr_t)cfg[C_INSN];
    const uint8_t *ptr = code;
    size_t left = len;
    uint64_t pc = address;
    long n = 0, kat = 0;
    while (iter(handle, &ptr, &left, &pc, insn)) {
        uint64_t addr = rdu64(insn + cfg[C_ADDRESS]);
        uint64_t next = addr + rd16(insn + cfg[C_SIZE]);
        const char *full = (const char *)insn + cfg[C_MNEMONIC];
        const char *m = strip_prefixes(full);
        if (has_rule(m))
            return -1;
        const uint8_t *d = (const uint8_t *)(uintptr_t)rdu64(insn + cfg[C_DETAIL]);
        if (!d)
            return -1;
        const uint8_t *x = d + cfg[C_X86];
        uint8_t prefix = x[cfg[C_PREFIX]];
        int nops = x[cfg[C_NOPS]];
        uint64_t *w = words + 8 * n;
        w[0] = 0;
        w[1] = addr;
        w[2] = next;
        w[3] = w[4] = w[5] = w[6] = w[7] = 0;
        if (n > 0)
            kat = put(keys, kat, keys_cap, "\n");
        if (kat >= 0 && prefix == 0xF3)
            kat = put(keys, kat, keys_cap, "rep ");
        else if (prefix == 0xF2)
            kat = put(keys, kat, keys_cap, "repne ");
        if (kat >= 0 && prefix == 0xF0)
            kat = put(keys, kat, keys_cap, "lock ");
        if (kat >= 0)
            kat = put(keys, kat, keys_cap, m);
        int jmp_imm = 0;
        uint64_t target = 0;
        for (int i = 0; i < nops && kat >= 0; i++) {
            const uint8_t *op = x + cfg[C_OPS] + i * cfg[C_OP_STRIDE];
            const uint8_t *v = op + cfg[C_OP_VALUE];
            unsigned size = op[cfg[C_OP_SIZE]];
            uint32_t type = rd32(op);
            uint64_t word = 0;
            kat = put(keys, kat, keys_cap, " ");
            if (kat < 0)
                break;
            if (type == 1) {                              /* X86_OP_REG */
                uint32_t r = rd32(v);
                if (r >= NREGS)
                    return -1;
                switch (reg_class[r]) {
                case R_GPR:
                    kat = put_num(keys, kat, keys_cap, 'r', reg_size[r]);
                    if (kat >= 0 && reg_high[r])
                        kat = put(keys, kat, keys_cap, "h");
                    break;
                case R_XMM: kat = put(keys, kat, keys_cap, "xmm"); break;
                case R_ST: kat = put(keys, kat, keys_cap, "st"); break;
                case R_MM: kat = put(keys, kat, keys_cap, "mm"); break;
                default: return -1;
                }
                word = reg_index[r];
            } else if (type == 2) {                       /* X86_OP_IMM */
                int64_t imm = rd64(v);
                kat = put_num(keys, kat, keys_cap, 'i', size);
                word = (uint64_t)imm;
                if (i == 0) {
                    jmp_imm = 1;
                    target = word;
                }
            } else if (type == 3) {                       /* X86_OP_MEM */
                uint32_t seg = rd32(v), base = rd32(v + 4), index = rd32(v + 8);
                int32_t scale = rds32(v + 12);
                int64_t disp = rd64(v + 16);
                int log2 = scale == 1 ? 0 : scale == 2 ? 1 : scale == 4 ? 2 : scale == 8 ? 3 : -1;
                if (base >= NREGS || index >= NREGS || seg >= NREGS || log2 < 0)
                    return -1;
                kat = put_num(keys, kat, keys_cap, 'm', size);
                int rip = 0;
                if (base && reg_class[base] == R_RIP) {
                    rip = 1;
                    if (kat >= 0) kat = put(keys, kat, keys_cap, "@");
                } else if (base) {
                    if (reg_class[base] != R_GPR)
                        return -1;
                    word = reg_index[base];
                    if (kat >= 0) kat = put(keys, kat, keys_cap, "b");
                }
                if (index) {
                    if (reg_class[index] != R_GPR)
                        return -1;
                    word |= (uint64_t)reg_index[index] << 8;
                    if (kat >= 0) kat = put(keys, kat, keys_cap, "i");
                }
                word |= (uint64_t)log2 << 16;
                if (seg && kat >= 0) {
                    if (reg_class[seg] == R_FS) kat = put(keys, kat, keys_cap, "fs");
                    else if (reg_class[seg] == R_GS) kat = put(keys, kat, keys_cap, "gs");
                }
                if (i < MAX_OPS)
                    w[7] = rip ? next + (uint64_t)disp : (uint64_t)disp;
            } else {
                return -1;
            }
            if (i < MAX_OPS)
                w[3 + i] = word;
        }
        if (kat < 0)
            return -1;
        n++;
        const uint8_t *g = d + cfg[C_GROUPS];
        int ng = d[cfg[C_NGROUPS]], jump = 0, call = 0, ret = 0;
        for (int i = 0; i < ng; i++) {
            jump |= g[i] == 1;
            call |= g[i] == 2;
            ret |= g[i] == 3 || g[i] == 5;
        }
        if (jump || call || ret || n >= limit) {
            uint64_t *end = words + 8 * n;
            end[0] = 0;
            end[1] = end[2] = next;
            end[3] = end[4] = end[5] = end[6] = end[7] = 0;
            info[0] = next;
            info[1] = (uint64_t)kat;
            info[2] = 0;
            if (ret) {
                /* no successor known */
            } else if (jump || call) {
                if (jmp_imm)
                    info[3 + info[2]++] = target;
                if (strcmp(m, "jmp") != 0)
                    info[3 + info[2]++] = next;
            } else {
                info[3 + info[2]++] = next;
            }
            return n;
        }
    }
    return -1;    /* capstone stopped first: bad bytes or the end of what was fetched */
}

/* Relocation types objload applies (the x86-64 psABI's numbers). */
enum { RX_NONE = 0, RX_64 = 1, RX_PC32 = 2, RX_PLT32 = 4, RX_32 = 10, RX_32S = 11, RX_PC64 = 24 };

/* Applies `n` RELA entries (offset, info, addend: 24 bytes each) of a section placed at
 * image[where .. where + size), the image to be mapped at host address `base`, the symbols'
 * values in `values`. Returns 0, or the error objload reports: -1 a relocation outside its
 * section (or the section outside the image), -2 a value out of its field's range, -3 a type
 * it does not apply, -4 a symbol index outside the table. The values are computed exactly
 * (128 bits), as Python's integers compute them. */
long jb_relocate(uint8_t *image, size_t image_len, const uint8_t *rela, size_t n,
                 const uint64_t *values, size_t nvalues, size_t where, size_t size, uint64_t base)
{
    if (where > image_len || size > image_len - where)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = rela + 24 * i;
        uint64_t offset = rdu64(r), info = rdu64(r + 8);
        int64_t addend = rd64(r + 16);
        uint32_t kind = (uint32_t)info;
        uint64_t sym = info >> 32;
        if (sym >= nvalues)
            return -4;
        __int128 value = (__int128)values[sym] + addend;
        if ((kind == RX_64 || kind == RX_PC64) && (offset > size || size - offset < 8))
            return -1;
        if (offset > size || size - offset < 4)
            return -1;
        uint8_t *at = image + where + offset;
        __int128 place = (__int128)base + where + offset;
        if (kind == RX_64) {
            uint64_t v = (uint64_t)value;
            memcpy(at, &v, 8);
        } else if (kind == RX_PC64) {
            uint64_t v = (uint64_t)(value - place);
            memcpy(at, &v, 8);
        } else if (kind == RX_PC32 || kind == RX_PLT32 || kind == RX_32S) {
            __int128 v = kind == RX_32S ? value : value - place;
            if (v < -((__int128)1 << 31) || v >= ((__int128)1 << 31))
                return -2;
            int32_t w = (int32_t)v;
            memcpy(at, &w, 4);
        } else if (kind == RX_32) {
            if (value < 0 || value >= ((__int128)1 << 32))
                return -2;
            uint32_t w = (uint32_t)value;
            memcpy(at, &w, 4);
        } else if (kind != RX_NONE) {
            return -3;
        }
    }
    return 0;
}
