/* sigcatch: guest signal handlers as Linux delivers them. Faults recovered with siglongjmp
   (SIGSEGV unmapped / read-only / jump to nowhere / privileged instruction, SIGFPE, SIGILL,
   SIGTRAP), raise and kill with SA_SIGINFO, blocking and unblocking, sigpending, sa_mask,
   SA_NODEFER, SA_RESETHAND, SIG_IGN, an alternate stack, sigsuspend, an interval timer with
   pause, and handlers that edit the saved context (rt_sigreturn must restore from the frame).
   Only deterministic values are printed (no addresses, no floating point). */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf jb;
static volatile sig_atomic_t got, got_signo, got_code, addr_ok, pid_ok, aligned, blocked_self,
    blocked_other, on_alt, alt_flags;
static void *volatile expect_addr;
static char altstack[1 << 16];

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_signo = sig == si->si_signo ? sig : -1;
    got_code = si->si_code;
    addr_ok = si->si_addr == expect_addr;
    siglongjmp(jb, 1);
}

static void catch(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void report(const char *what) {
    printf("%s: signo=%d code=%d addr-ok=%d\n", what, (int)got_signo, (int)got_code, (int)addr_ok);
}

static void on_info(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    sigset_t cur;
    char __attribute__((aligned(16))) probe[16];
    got++;
    got_signo = si->si_signo == sig ? sig : -1;
    got_code = si->si_code;
    pid_ok = si->si_pid == getpid() && si->si_uid == getuid();
    aligned = ((uintptr_t)probe & 15) == 0;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    blocked_self = sigismember(&cur, sig);
    blocked_other = sigismember(&cur, SIGUSR2);
    stack_t ss;
    sigaltstack(NULL, &ss);
    alt_flags = ss.ss_flags;
    on_alt = (char *)&cur >= altstack && (char *)&cur < altstack + sizeof altstack;
    probe[0] = 1;
}

static void on_skip(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    got_signo = sig;
    got_code = si->si_code;
    uc->uc_mcontext.gregs[REG_RIP] += 2;          /* ud2 is two bytes long */
    uc->uc_mcontext.gregs[REG_RAX] = 42;
    uc->uc_mcontext.gregs[REG_RBX] += 1000;
}

static void on_trap(int sig, siginfo_t *si, void *ucv) {
    (void)ucv;
    got_signo = sig;
    got_code = si->si_code;
}

static int divide(volatile int a, volatile int b) { return a / b; }

static void on_clobber(int sig) {      /* handlers start with clean SSE state; sigreturn restores */
    long x;
    (void)sig;
    __asm__ volatile("movq %%xmm5, %0\n\tpcmpeqd %%xmm5, %%xmm5" : "=r"(x) : : "xmm5");
    got_code = x == 0;
}

int main(void) {
    /* faults, recovered with siglongjmp */
    catch(SIGSEGV, on_fault, 0);
    catch(SIGFPE, on_fault, 0);
    expect_addr = (void *)0x10;
    if (!sigsetjmp(jb, 1)) { *(int *volatile)expect_addr = 1; puts("no fault?"); }
    report("segv unmapped");
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect_addr = ro + 8;
    if (!sigsetjmp(jb, 1)) { ro[8] = 1; puts("no fault?"); }
    report("segv read-only");
    expect_addr = (void *)0x3000;
    if (!sigsetjmp(jb, 1)) { ((void (*)(void))0x3000)(); puts("no fault?"); }
    report("segv jump");
    expect_addr = NULL;
    if (!sigsetjmp(jb, 1)) { __asm__ volatile("hlt"); puts("no fault?"); }
    report("segv hlt");
    if (!sigsetjmp(jb, 1)) { printf("%d\n", divide(7, 0)); }
    printf("fpe div0: signo=%d code=%d\n", (int)got_signo, (int)got_code);
    got_signo = got_code = 0;
    if (!sigsetjmp(jb, 1)) {
        int q;
        __asm__ volatile("mov $0x80000000, %%eax\n\tcdq\n\tmov $-1, %%ecx\n\tidiv %%ecx"
                         : "=a"(q) : : "ecx", "edx");
        printf("%d\n", q);
    }
    printf("fpe overflow: signo=%d code=%d\n", (int)got_signo, (int)got_code);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("after siglongjmp SIGSEGV blocked=%d\n", sigismember(&now, SIGSEGV));

    /* handlers that edit the saved context: rt_sigreturn restores rip, rax, rbx from the frame */
    catch(SIGILL, on_skip, 0);
    long rax, rbx = 5;
    __asm__ volatile("mov $1, %%eax\n\tud2\n\t" : "=a"(rax), "+b"(rbx));
    printf("ud2 skipped: signo=%d code=%d rax=%ld rbx=%ld\n", (int)got_signo, (int)got_code,
           rax, rbx);
    catch(SIGTRAP, on_trap, 0);
    got_code = -1;
    __asm__ volatile("int3");
    printf("int3: signo=%d code=%d\n", (int)got_signo, (int)got_code);

    /* xmm registers survive a handler that clobbers them */
    signal(SIGUSR2, on_clobber);
    long before = 0x1234567887654321L, after;
    __asm__ volatile("movq %1, %%xmm5\n\tmov %2, %%edi\n\tmov $62, %%eax\n\t"
                     "mov %3, %%esi\n\tsyscall\n\tmovq %%xmm5, %0"
                     : "=r"(after) : "r"(before), "r"(getpid()), "i"(SIGUSR2)
                     : "rax", "rcx", "rdx", "rdi", "rsi", "r11", "xmm5", "memory");
    printf("xmm5 kept: %d handler-saw-zero=%d\n", after == before, (int)got_code);

    /* raise (tgkill: SI_TKILL) and kill (SI_USER) with SA_SIGINFO, sa_mask, SA_NODEFER */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("raise: got=%d signo=%d tkill=%d pid-ok=%d aligned=%d self-blocked=%d usr2-blocked=%d\n",
           (int)got, (int)got_signo, got_code == SI_TKILL, (int)pid_ok, (int)aligned,
           (int)blocked_self, (int)blocked_other);
    kill(getpid(), SIGUSR1);
    printf("kill: got=%d user=%d pid-ok=%d\n", (int)got, got_code == SI_USER, (int)pid_ok);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("nodefer: got=%d self-blocked=%d usr2-blocked=%d\n", (int)got, (int)blocked_self,
           (int)blocked_other);

    /* blocking: the signal waits, shows in sigpending, and arrives on unblock */
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    got = 0;
    raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked: got=%d pending=%d\n", (int)got, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("unblocked: got=%d\n", (int)got);

    /* sigsuspend: wait with SIGUSR1 unblocked, the mask comes back afterwards */
    sigprocmask(SIG_BLOCK, &set, NULL);
    raise(SIGUSR1);
    sigset_t empty;
    sigemptyset(&empty);
    int r = sigsuspend(&empty);
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("sigsuspend: r=%d eintr=%d got=%d still-blocked=%d\n", r, errno == EINTR, (int)got,
           sigismember(&now, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    /* SA_RESETHAND: one delivery, then the default again; SIG_IGN drops the signal */
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    struct sigaction old;
    sigaction(SIGUSR2, NULL, &old);
    printf("resethand: got=%d now-default=%d\n", (int)got, old.sa_handler == SIG_DFL);
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    sigpending(&pend);
    printf("ignored: got=%d pending=%d\n", (int)got, sigismember(&pend, SIGUSR2));

    /* an alternate stack */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("altstack: got=%d on-alt=%d onstack-flag=%d aligned=%d\n", (int)got, (int)on_alt,
           (alt_flags & SS_ONSTACK) != 0, (int)aligned);
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("after: onstack-flag=%d size-ok=%d\n", (cur.ss_flags & SS_ONSTACK) != 0,
           cur.ss_size == sizeof altstack);
    ss.ss_size = 100;
    r = sigaltstack(&ss, NULL);
    printf("too small: %d enomem=%d\n", r, errno == ENOMEM);

    /* an interval timer: SIGALRM while in pause() */
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    got = 0;
    r = pause();
    printf("pause: r=%d eintr=%d got=%d signo=%d\n", r, errno == EINTR, (int)got, (int)got_signo);
    r = sigaction(65, &sa, NULL);
    printf("bad signal: %d einval=%d\n", r, errno == EINVAL);
    r = sigaction(SIGKILL, &sa, NULL);
    printf("sigkill: %d einval=%d\n", r, errno == EINVAL);
    return 0;
}
