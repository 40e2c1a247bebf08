/* fault-wx: writes into its own (read-only, executable) code: SIGSEGV (status 139). */
        .text
        .globl _start
_start:
        lea     _start(%rip), %rax
        movb    $0x90, (%rax)
        mov     $60, %eax
        xor     %edi, %edi
        syscall
        .section .note.GNU-stack, "", @progbits
