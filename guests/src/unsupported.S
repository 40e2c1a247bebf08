/* unsupported: an AVX-512 instruction, which the jitbt CPU model does not claim. Natively it
   runs where the host has AVX-512 (and is SIGILL elsewhere); jitbt must report it clearly. */
        .text
        .globl _start
_start:
        vpaddd  %zmm1, %zmm2, %zmm3
        mov     $60, %eax
        xor     %edi, %edi
        syscall
        .section .note.GNU-stack, "", @progbits
