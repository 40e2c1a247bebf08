/* fault-div0: prints a line, then divides by zero: the kernel sends SIGFPE (status 136). */
        .text
        .globl _start
_start:
        mov     $1, %eax
        mov     $1, %edi
        lea     msg(%rip), %rsi
        mov     $len, %edx
        syscall
        xor     %ecx, %ecx
        mov     $7, %eax
        cqo
        idiv    %rcx
        mov     $60, %eax
        syscall
        .section .rodata
msg:    .ascii "about to divide by zero\n"
        .set len, . - msg
        .section .note.GNU-stack, "", @progbits
