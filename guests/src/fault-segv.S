/* fault-segv: stores through a null pointer in the middle of a block: SIGSEGV (status 139). */
        .text
        .globl _start
_start:
        mov     $1, %eax
        mov     $1, %edi
        lea     msg(%rip), %rsi
        mov     $len, %edx
        syscall
        mov     $5, %ebx
        add     $3, %ebx
        movq    $1, 16               /* unmapped page 0 */
        mov     $60, %eax
        syscall
        .section .rodata
msg:    .ascii "about to write to address 16\n"
        .set len, . - msg
        .section .note.GNU-stack, "", @progbits
