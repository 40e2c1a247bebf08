/* asmloop: an integer loop using add/sub/shl/shr/imul/mul/div/cmov/setcc,
 * prints the result in decimal (own itoa) and exits with status 3.
 *
 * for i = 1 .. 1000:
 *     t   = (i * i) >> 1                   ; imul, shr
 *     t  -= i << 2                         ; shl, sub
 *     q   = acc / i, r = acc % i           ; div (unsigned)
 *     p   = low64(i * 0x9E3779B97F4A7C15)  ; mul
 *     acc = acc + t + q + r + (p >> 40)    ; add
 *     if (t < 0) acc += 7                  ; signed compare, cmovl
 *     odd += (i & 1) != 0                  ; setcc
 * acc += odd; print acc, then odd
 */
        .text
        .globl _start
        .type _start, @function
_start:
        xor     %r12d, %r12d            /* acc */
        xor     %r13d, %r13d            /* odd count */
        mov     $1, %ebx                /* i */
        movabs  $0x9E3779B97F4A7C15, %r14
.Lloop:
        mov     %rbx, %rcx
        imul    %rbx, %rcx              /* t = i*i */
        shr     $1, %rcx
        mov     %rbx, %rdx
        shl     $2, %rdx
        sub     %rdx, %rcx              /* t -= i << 2 */

        mov     %r12, %rax
        xor     %edx, %edx
        div     %rbx                    /* rax = acc / i, rdx = acc % i */
        add     %rax, %r12
        add     %rdx, %r12
        add     %rcx, %r12

        mov     %rbx, %rax
        mul     %r14                    /* rdx:rax = i * golden */
        shr     $40, %rax
        add     %rax, %r12

        lea     7(%r12), %rax
        test    %rcx, %rcx
        cmovl   %rax, %r12              /* t < 0: acc += 7 */

        test    $1, %bl
        setnz   %al
        movzbl  %al, %eax
        add     %rax, %r13

        add     $1, %rbx
        cmp     $1000, %rbx
        jbe     .Lloop

        add     %r13, %r12
        mov     %r12, %rdi
        call    print_u64
        mov     %r13, %rdi
        call    print_u64

        mov     $231, %eax              /* exit_group(3) */
        mov     $3, %edi
        syscall
        hlt
        .size _start, . - _start

/* print_u64(rdi): write the unsigned decimal value of rdi and a newline. */
        .type print_u64, @function
print_u64:
        sub     $40, %rsp
        lea     32(%rsp), %rsi          /* build digits backwards */
        movb    $'\n', (%rsi)
        mov     %rdi, %rax
        mov     $10, %ecx
1:      xor     %edx, %edx
        div     %rcx
        add     $'0', %dl
        dec     %rsi
        mov     %dl, (%rsi)
        test    %rax, %rax
        jnz     1b
        lea     33(%rsp), %rdx
        sub     %rsi, %rdx              /* length */
        mov     $1, %eax                /* write(1, rsi, rdx) */
        mov     $1, %edi
        syscall
        add     $40, %rsp
        ret
        .size print_u64, . - print_u64
        .section .note.GNU-stack, "", @progbits
