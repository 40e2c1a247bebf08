/* sys_files.c - files and descriptors: open/read/write/lseek/pread/pwrite/readv/writev,
 * fstat/stat/lstat/newfstatat, getdents64, rename/unlink/mkdir/rmdir, symlink/readlink,
 * dup/dup2/dup3/fcntl, pipe/pipe2, poll/select, sendfile, ioctl, utimensat, chmod, errno values.
 * Usage: sys_files DIR (an empty directory to work in). Prints only what is the same on every
 * run: sizes, modes, contents, errno values - never inode numbers, times of now or addresses. */
#include "sys.h"

#define S_IFMT 0170000
#define SYS_creat 85
#define SYS_link 86
#define SYS_truncate 76
#define SYS_fdatasync 75
#define SYS_statfs 137
#define SYS_fchmodat 268
#define SYS_preadv 295
#define SYS_pwritev 296
#define SYS_renameat2 316
#define SYS_statx 332
#define SYS_faccessat2 439

static void show(const char *label, long v)
{
    put_str(label);
    put_str(": ");
    put_i64(v);
    put_char('\n');
}

static long sys_openat(int dirfd, const char *path, int flags, int mode)
{
    return syscall4(SYS_openat, dirfd, (long)path, flags, mode);
}

static long sys_close(int fd) { return syscall1(SYS_close, fd); }

static long write_str(int fd, const char *s) { return sys_write(fd, s, str_len(s)); }

static void show_read(const char *label, int fd, long n)
{
    char buf[64];
    long r = sys_read(fd, buf, n);
    put_str(label);
    put_i64(r);
    if (r > 0) {
        put_str(" '");
        write_all(1, buf, r);
        put_char('\'');
    }
    put_char('\n');
}

static void show_stat(const char *label, struct kstat *st)
{
    put_str(label);
    put_str(" type=");
    put_hexn((st->st_mode & S_IFMT) >> 12, 2);
    put_str(" perm=");
    put_char('0' + ((st->st_mode >> 6) & 7));
    put_char('0' + ((st->st_mode >> 3) & 7));
    put_char('0' + (st->st_mode & 7));
    put_str(" size=");
    put_i64(st->st_size);
    put_str(" nlink=");
    put_u64(st->st_nlink);
    put_char('\n');
}

/* Names from getdents64 on fd, sorted (directory order depends on the file system). */
static void show_dir(int fd)
{
    char buf[1024];
    char names[16][32];
    int types[16];
    int count = 0;
    for (;;) {
        long n = syscall3(SYS_getdents64, fd, (long)buf, sizeof buf);
        if (n <= 0) {
            show("getdents64 end", n);
            break;
        }
        for (long off = 0; off < n;) {
            u16 reclen = *(u16 *)(buf + off + 16);
            u8 type = *(u8 *)(buf + off + 18);
            const char *name = buf + off + 19;
            if (count < 16 && str_len(name) < 32) {
                memcpy(names[count], name, str_len(name) + 1);
                types[count++] = type;
            }
            off += reclen;
        }
    }
    for (int i = 0; i < count; i++)
        for (int j = i + 1; j < count; j++) {
            int a = 0;
            while (names[i][a] && names[i][a] == names[j][a])
                a++;
            if ((u8)names[i][a] > (u8)names[j][a]) {
                char t[32];
                memcpy(t, names[i], 32);
                memcpy(names[i], names[j], 32);
                memcpy(names[j], t, 32);
                int tt = types[i];
                types[i] = types[j];
                types[j] = tt;
            }
        }
    for (int i = 0; i < count; i++) {
        put_str("  entry ");
        put_str(names[i]);
        put_str(" type ");
        put_u64(types[i]);
        put_char('\n');
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fput_str(2, "usage: sys_files DIR\n");
        return 2;
    }
    struct kstat st;
    char buf[256];

    show("chdir", syscall1(SYS_chdir, (long)argv[1]));
    long n = syscall2(SYS_getcwd, (long)buf, sizeof buf);
    show("getcwd length ok", n == (long)str_len(buf) + 1);
    show("getcwd is DIR", str_eq(buf, argv[1]));
    show("getcwd small buffer", syscall2(SYS_getcwd, (long)buf, 2));
    show("umask", syscall1(SYS_umask, 022));
    show("umask again", syscall1(SYS_umask, 022));

    show("mkdir d", syscall2(SYS_mkdir, (long)"d", 0755));
    show("mkdir d again", syscall2(SYS_mkdir, (long)"d", 0755));
    int fd = sys_openat(AT_FDCWD, "d/f", O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    show("openat d/f", fd);
    show("F_GETFD", syscall2(SYS_fcntl, fd, F_GETFD));
    show("F_SETFD 0", syscall3(SYS_fcntl, fd, F_SETFD, 0));
    show("F_GETFD", syscall2(SYS_fcntl, fd, F_GETFD));
    show("F_GETFL accmode", syscall2(SYS_fcntl, fd, F_GETFL) & 3);
    show("fcntl bad cmd", syscall2(SYS_fcntl, fd, 9999));
    show("write", write_str(fd, "hello world\n"));
    struct kiovec iov[2] = {{"vec", 3}, {"tor\n", 4}};
    show("writev", syscall3(SYS_writev, fd, (long)iov, 2));
    show("lseek cur", syscall3(SYS_lseek, fd, 0, 1));
    show("pwrite64", syscall4(SYS_pwrite64, fd, (long)"HELLO", 5, 0));
    show("lseek after pwrite", syscall3(SYS_lseek, fd, 0, 1));
    show("lseek bad whence", syscall3(SYS_lseek, fd, 0, 7));
    show("read on write-only fd", sys_read(fd, buf, 4));
    show("fstat", syscall2(SYS_fstat, fd, (long)&st));
    show_stat("  fstat", &st);
    show("close", sys_close(fd));
    show("close again", sys_close(fd));
    show("read closed fd", sys_read(fd, buf, 1));
    show("write fd 1000", sys_write(1000, "x", 1));

    fd = sys_openat(AT_FDCWD, "d/f", O_RDONLY, 0);
    show("open for reading", fd);
    show_read("read 5: ", fd, 5);
    char a[4], b[8];
    struct kiovec riov[2] = {{a, 4}, {b, 8}};
    n = syscall3(SYS_readv, fd, (long)riov, 2);
    show("readv", n);
    write_all(1, a, 4);
    write_all(1, b, 8);
    put_char('\n');
    n = syscall4(SYS_pread64, fd, (long)buf, 6, 6);
    show("pread64", n);
    write_all(1, buf, n);
    show("lseek end", syscall3(SYS_lseek, fd, 0, 2));
    show_read("read at end: ", fd, 5);
    show("lseek set 12", syscall3(SYS_lseek, fd, 12, 0));
    show_read("read 20: ", fd, 20);
    show("ioctl TCGETS on a file", syscall3(SYS_ioctl, fd, 0x5401, (long)buf));
    syscall3(SYS_lseek, fd, 0, 0);
    show("read into bad pointer", sys_read(fd, (void *)8, 4));
    show("write from bad pointer", sys_write(1, (void *)8, 4));

    int d = syscall1(SYS_dup, fd);
    show("dup", d);
    show("dup2 to 10", syscall2(SYS_dup2, fd, 10));
    show("dup2 same", syscall2(SYS_dup2, 10, 10));
    show("dup2 bad old", syscall2(SYS_dup2, 99, 11));
    show("dup3 same", syscall3(SYS_dup3, fd, fd, 0));
    show("dup3 cloexec to 11", syscall3(SYS_dup3, fd, 11, O_CLOEXEC));
    show("  F_GETFD 11", syscall2(SYS_fcntl, 11, F_GETFD));
    show("F_DUPFD 20", syscall3(SYS_fcntl, fd, F_DUPFD, 20));
    show("F_DUPFD_CLOEXEC 20", syscall3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 20));
    show("  F_GETFD 21", syscall2(SYS_fcntl, 21, F_GETFD));
    show("lseek dup shares offset", syscall3(SYS_lseek, 10, 0, 1));
    show("close 10", sys_close(10));
    show("close 11", sys_close(11));
    show("close 20", sys_close(20));
    show("close 21", sys_close(21));
    show("close dup", sys_close(d));
    show("close", sys_close(fd));

    show("fstat closed", syscall2(SYS_fstat, fd, (long)&st));
    show("stat d", syscall2(SYS_stat, (long)"d", (long)&st));
    show_stat("  stat d", &st);
    show("stat missing", syscall2(SYS_stat, (long)"missing", (long)&st));
    show("stat bad pointer", syscall2(SYS_stat, (long)"d", 8));
    show("symlink", syscall2(SYS_symlink, (long)"f", (long)"d/link"));
    show("lstat link", syscall2(SYS_lstat, (long)"d/link", (long)&st));
    show_stat("  lstat link", &st);
    show("stat link", syscall2(SYS_stat, (long)"d/link", (long)&st));
    show_stat("  stat link", &st);
    memset(buf, 0, sizeof buf);
    show("readlink", syscall3(SYS_readlink, (long)"d/link", (long)buf, sizeof buf));
    put_str(buf);
    put_char('\n');
    show("readlink not a link", syscall3(SYS_readlink, (long)"d/f", (long)buf, sizeof buf));
    int dfd = sys_openat(AT_FDCWD, "d", O_RDONLY | O_DIRECTORY, 0);
    show("open d", dfd);
    show("newfstatat dfd f", syscall4(SYS_newfstatat, dfd, (long)"f", (long)&st, 0));
    show_stat("  newfstatat", &st);
    show("newfstatat link nofollow", syscall4(SYS_newfstatat, dfd, (long)"link", (long)&st,
                                              AT_SYMLINK_NOFOLLOW));
    show_stat("  newfstatat", &st);
    show("newfstatat empty path", syscall4(SYS_newfstatat, dfd, (long)"", (long)&st,
                                           AT_EMPTY_PATH));
    show_stat("  newfstatat", &st);
    show("readlinkat", syscall4(SYS_readlinkat, dfd, (long)"link", (long)buf, 3));
    show("mkdirat sub", syscall3(SYS_mkdirat, dfd, (long)"sub", 0700));
    show("renameat f->g", syscall4(SYS_renameat, dfd, (long)"f", dfd, (long)"g"));
    show("access g", syscall2(SYS_access, (long)"d/g", 4));
    show("access f", syscall2(SYS_access, (long)"d/f", 4));
    show("faccessat g", syscall4(SYS_faccessat, dfd, (long)"g", 4, 0));
    show("openat dfd g", fd = sys_openat(dfd, "g", O_RDWR, 0));
    show("ftruncate 3", syscall2(SYS_ftruncate, fd, 3));
    show("fchmod 600", syscall2(SYS_fchmod, fd, 0600));
    syscall2(SYS_fstat, fd, (long)&st);
    show_stat("  after ftruncate+fchmod", &st);
    struct ktimespec times[2] = {{1000000000, 5}, {1234567890, 0}};
    show("utimensat", syscall4(SYS_utimensat, dfd, (long)"g", (long)times, 0));
    syscall2(SYS_fstat, fd, (long)&st);
    show("  mtime", st.st_mtime_sec);
    show("  atime", st.st_atime_sec);
    show("fsync", syscall1(SYS_fsync, fd));
    show("chmod 640", syscall2(SYS_chmod, (long)"d/g", 0640));
    syscall2(SYS_stat, (long)"d/g", (long)&st);
    show_stat("  after chmod", &st);
    show("close g", sys_close(fd));
    show("lseek d to 0", syscall3(SYS_lseek, dfd, 0, 0));
    show_dir(dfd);
    show("fchdir d", syscall1(SYS_fchdir, dfd));
    n = syscall2(SYS_getcwd, (long)buf, sizeof buf);
    show("getcwd ends in /d", n > 3 && buf[n - 3] == '/' && buf[n - 2] == 'd');
    show("chdir ..", syscall1(SYS_chdir, (long)".."));

    show("open missing", sys_openat(AT_FDCWD, "d/missing", O_RDONLY, 0));
    show("open O_EXCL existing", sys_openat(AT_FDCWD, "d/g", O_CREAT | O_EXCL | O_WRONLY, 0644));
    show("open dir for writing", sys_openat(AT_FDCWD, "d", O_WRONLY, 0));
    show("open bad pointer", sys_openat(AT_FDCWD, (const char *)8, O_RDONLY, 0));
    show("openat bad dirfd relative", sys_openat(77, "d/g", O_RDONLY, 0));
    fd = sys_openat(77, argv[1], O_RDONLY | O_DIRECTORY, 0);
    show("openat bad dirfd absolute", fd);
    sys_close(fd);

    int p[2];
    show("pipe", syscall1(SYS_pipe, (long)p));
    show("  fds", p[0] * 100 + p[1]);
    show("write pipe", write_str(p[1], "abc"));
    struct kpollfd pf[3] = {{p[0], 1, 0}, {55, 1, 0}, {-1, 1, 0}};
    show("poll", syscall3(SYS_poll, (long)pf, 3, 1000));
    show("  revents", pf[0].revents * 10000 + pf[1].revents * 100 + pf[2].revents);
    u64 rset = 1ul << p[0];
    struct ktimespec tv = {1, 0};
    show("select", syscall5(SYS_select, p[0] + 1, (long)&rset, 0, 0, (long)&tv));
    show("  rset has read end", (rset >> p[0]) & 1);
    show_read("read pipe: ", p[0], 10);
    pf[0].revents = 0;
    show("poll empty pipe", syscall3(SYS_poll, (long)pf, 1, 0));
    show("ioctl TCGETS on a pipe", syscall3(SYS_ioctl, p[0], 0x5401, (long)buf));
    show("close write end", sys_close(p[1]));
    show_read("read at EOF: ", p[0], 10);
    show("close read end", sys_close(p[0]));
    show("pipe2 cloexec", syscall2(SYS_pipe2, (long)p, O_CLOEXEC | O_NONBLOCK));
    show("  F_GETFD", syscall2(SYS_fcntl, p[0], F_GETFD));
    show("  nonblocking", (syscall2(SYS_fcntl, p[0], F_GETFL) & O_NONBLOCK) != 0);
    show("  read empty nonblocking", sys_read(p[0], buf, 1));
    show("pipe2 bad flags", syscall2(SYS_pipe2, (long)p, 1));
    fd = sys_openat(AT_FDCWD, "d/g", O_RDONLY, 0);
    long off = 1;
    show("sendfile", syscall4(SYS_sendfile, p[1], fd, (long)&off, 10));
    show("  offset", off);
    show_read("  pipe has: ", p[0], 10);
    sys_close(fd);
    sys_close(p[0]);
    sys_close(p[1]);

    /* the less common relatives */
    fd = syscall2(SYS_creat, (long)"d/c", 0600);
    show("creat", fd);
    struct kiovec wv[2] = {{"abc", 3}, {"defg", 4}};
    show("pwritev at 2", syscall4(SYS_pwritev, fd, (long)wv, 2, 2));
    show("fdatasync", syscall1(SYS_fdatasync, fd));
    sys_close(fd);
    fd = sys_openat(AT_FDCWD, "d/c", O_RDONLY, 0);
    char x[3], y[6];
    struct kiovec rv[2] = {{x, 3}, {y, 6}};
    show("preadv at 2", syscall4(SYS_preadv, fd, (long)rv, 2, 2));
    write_all(1, x, 3);
    write_all(1, y, 4);
    put_char('\n');
    show("readv count too big", syscall3(SYS_readv, fd, (long)rv, 5000));
    sys_close(fd);
    show("truncate 4", syscall2(SYS_truncate, (long)"d/c", 4));
    show("link", syscall2(SYS_link, (long)"d/c", (long)"d/c2"));
    show("renameat2", syscall5(SYS_renameat2, AT_FDCWD, (long)"d/c2", AT_FDCWD, (long)"d/c3", 0));
    show("fchmodat", syscall3(SYS_fchmodat, dfd, (long)"c3", 0604));
    u8 sx[256];
    show("statx", syscall5(SYS_statx, AT_FDCWD, (long)"d/c", 0, 0x7ff, (long)sx));
    show("  stx_nlink", *(u32 *)(sx + 16));
    show("  stx_mode", *(u16 *)(sx + 28) & 0777);
    show("  stx_size", *(i64 *)(sx + 40));
    show("faccessat2", syscall4(SYS_faccessat2, AT_FDCWD, (long)"d/c", 4, 0));
    u8 sfs[120];
    show("statfs", syscall2(SYS_statfs, (long)"d", (long)sfs));
    struct kpollfd pp = {0, 0, 0};
    struct ktimespec zero = {0, 0};
    show("ppoll nothing", syscall5(SYS_ppoll, (long)&pp, 0, (long)&zero, 0, 8));
    u64 none = 0;
    show("pselect6 nothing", syscall6(SYS_pselect6, 0, (long)&none, 0, 0, (long)&zero, 0));
    show("select closed fd", syscall5(SYS_select, 64, (long)&(u64){1ul << 60}, 0, 0, (long)&tv));
    show("unlink c", syscall1(SYS_unlink, (long)"d/c"));
    show("unlink c3", syscall1(SYS_unlink, (long)"d/c3"));

    show("rmdir non-empty", syscall1(SYS_rmdir, (long)"d"));
    show("unlink link", syscall1(SYS_unlink, (long)"d/link"));
    show("unlink g", syscall1(SYS_unlink, (long)"d/g"));
    show("unlink g again", syscall1(SYS_unlink, (long)"d/g"));
    show("unlinkat sub as file", syscall3(SYS_unlinkat, dfd, (long)"sub", 0));
    show("unlinkat sub AT_REMOVEDIR", syscall3(SYS_unlinkat, dfd, (long)"sub", AT_REMOVEDIR));
    show("rename d e", syscall2(SYS_rename, (long)"d", (long)"e"));
    show("rmdir e", syscall1(SYS_rmdir, (long)"e"));
    show("close dfd", sys_close(dfd));
    return 0;
}
