/* hello: write a greeting with write(2) and exit_group(0). */
        .section .rodata
msg:    .ascii "Hello from jitbt guest\n"
        .set msglen, . - msg

        .text
        .globl _start
        .type _start, @function
_start:
        mov     $1, %eax                /* write */
        mov     $1, %edi                /* fd 1 */
        lea     msg(%rip), %rsi
        mov     $msglen, %edx
        syscall
        mov     $231, %eax              /* exit_group */
        xor     %edi, %edi
        syscall
        hlt
        .size _start, . - _start
        .section .note.GNU-stack, "", @progbits
