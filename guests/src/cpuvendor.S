/* cpuvendor: prints the cpuid vendor string. Natively that is the host's; under jitbt it is
   jitbt's CPU model ("JitbtVirtCPU"), which shows whether a program runs translated. */
        .text
        .globl _start
_start:
        xor     %eax, %eax
        cpuid
        mov     %ebx, buf(%rip)
        mov     %edx, buf+4(%rip)
        mov     %ecx, buf+8(%rip)
        movb    $10, buf+12(%rip)
        mov     $1, %eax
        mov     $1, %edi
        lea     buf(%rip), %rsi
        mov     $13, %edx
        syscall
        mov     $60, %eax
        xor     %edi, %edi
        syscall
        .bss
buf:    .skip 16
        .section .note.GNU-stack, "", @progbits
