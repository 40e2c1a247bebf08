/* spin: prints a line, then loops forever (jitbt must still answer SIGINT). */
        .text
        .globl _start
_start:
        mov     $1, %eax
        mov     $1, %edi
        lea     msg(%rip), %rsi
        mov     $len, %edx
        syscall
        xor     %ecx, %ecx
1:      add     $1, %rcx
        jmp     1b
        .section .rodata
msg:    .ascii "spinning\n"
        .set len, . - msg
        .section .note.GNU-stack, "", @progbits
