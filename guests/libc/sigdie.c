/* sigdie MODE: ways a process ends by a signal, or survives one, compared with the native run.
     segv          output, then an unhandled SIGSEGV (status 139)
     segv-blocked  a SIGSEGV handler exists but SIGSEGV is blocked: the kernel kills anyway
     fpe-ignored   SIGFPE ignored: a division by zero still kills (status 136)
     abort         abort() with SIGABRT blocked and a handler that returns: status 134
     pipe          write to a pipe whose read end is closed: SIGPIPE (status 141)
     pipe-ignored  the same with SIGPIPE ignored: write fails with EPIPE
     term          raise(SIGTERM) with no handler (status 143); kill -> SIGKILL (status 137)
     wait-int      handle SIGINT, say "ready", spin until it comes (sent from outside)
     pause         handle SIGTERM, say "ready", pause() until it comes
     spin          no handler, say "ready", spin forever (killed from outside)
     read          no handler, say "ready", block reading stdin (killed from outside)
     read-alarm    a SIGALRM handler without SA_RESTART interrupts a read: EINTR */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t flag;
static void on_sig(int sig) { flag = sig; }
static void on_abrt(int sig) {
    (void)sig;
    static const char msg[] = "abort handler ran\n";
    write(1, msg, sizeof msg - 1);
}
static int divide(volatile int a, volatile int b) { return a / b; }
static int *volatile bad = (int *)8;

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "segv";
    printf("mode %s\n", mode);
    fflush(stdout);
    if (!strcmp(mode, "segv")) {
        *bad = 1;
    } else if (!strcmp(mode, "segv-blocked")) {
        signal(SIGSEGV, on_sig);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGSEGV);
        sigprocmask(SIG_BLOCK, &set, NULL);
        *bad = 1;
    } else if (!strcmp(mode, "fpe-ignored")) {
        signal(SIGFPE, SIG_IGN);
        printf("%d\n", divide(1, 0));
    } else if (!strcmp(mode, "abort")) {
        signal(SIGABRT, on_abrt);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGABRT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        abort();
    } else if (!strcmp(mode, "pipe") || !strcmp(mode, "pipe-ignored")) {
        int fds[2];
        if (pipe(fds)) return 2;
        close(fds[0]);
        if (mode[4]) signal(SIGPIPE, SIG_IGN);
        ssize_t r = write(fds[1], "x", 1);
        printf("write=%d epipe=%d\n", (int)r, errno == EPIPE);
    } else if (!strcmp(mode, "term")) {
        raise(SIGTERM);
    } else if (!strcmp(mode, "kill")) {
        kill(getpid(), SIGKILL);
    } else if (!strcmp(mode, "wait-int") || !strcmp(mode, "pause")) {
        int sig = mode[0] == 'w' ? SIGINT : SIGTERM;
        signal(sig, on_sig);
        puts("ready");
        fflush(stdout);
        if (sig == SIGTERM) pause();
        else while (!flag) {}
        printf("got signal %d\n", (int)flag);
    } else if (!strcmp(mode, "read") || !strcmp(mode, "read-alarm")) {
        char c;
        if (mode[4]) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_sig;
            sigaction(SIGALRM, &sa, NULL);
            alarm(1);
        } else {
            puts("ready");
            fflush(stdout);
        }
        ssize_t r = read(0, &c, 1);
        printf("read=%d eintr=%d flag=%d\n", (int)r, errno == EINTR, (int)flag);
    } else if (!strcmp(mode, "spin")) {
        puts("ready");
        fflush(stdout);
        for (;;) {}
    }
    printf("still alive\n");
    return 0;
}
