/* icount: a loop whose retired-instruction count is known by construction.
 * It runs 2000 * argc + 5 instructions: 2 to set up, 2 per iteration (argc * 1000 of them),
 * and 3 to exit (the syscall included); the exit status is 0. */
        .text
        .globl _start
        .type _start, @function
_start:
        mov     (%rsp), %rcx            /* argc */
        imul    $1000, %rcx, %rcx
.Lloop:
        dec     %rcx
        jnz     .Lloop
        mov     $60, %eax
        xor     %edi, %edi
        syscall
