/* fault-ud2: ud2 raises #UD: SIGILL (status 132). */
        .text
        .globl _start
_start:
        nop
        ud2
        .section .note.GNU-stack, "", @progbits
