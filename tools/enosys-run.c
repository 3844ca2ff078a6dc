/*
 * enosys-run: run a command as on CentOS/RHEL 7's kernel (Linux 3.10), where
 * every system call added later does not exist and fails with ENOSYS.
 *
 *     enosys-run [-n LAST] COMMAND [ARG...]
 *
 * LAST is the highest x86_64 system call number that still works (default
 * 313, finit_module, the newest call in 3.10): getrandom, statx, clone3,
 * close_range, rseq, ... get ENOSYS. ENOSYS, not EPERM, because that is what
 * an old kernel answers and what glibc and Rust's std fall back on. x32 calls
 * (numbers with bit 30 set) are above LAST too, and calls of any other
 * architecture (i386 int 0x80) fail the same way: CentOS 7 programs make none.
 *
 * A seccomp filter does it, installed after PR_SET_NO_NEW_PRIVS (no root
 * needed); it survives execve and covers every thread and child of COMMAND.
 * Exit status: COMMAND's, 125 if the filter cannot be installed or the
 * arguments are wrong, 127 if COMMAND cannot be run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if !defined(__x86_64__)
#error "enosys-run knows the x86_64 system call numbers only"
#endif

#define LINUX_3_10_LAST_SYSCALL 313u

static int install_filter(unsigned last)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, last, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
    };
    struct sock_fprog program;

    program.len = (unsigned short)(sizeof filter / sizeof filter[0]);
    program.filter = filter;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        perror("enosys-run: prctl(PR_SET_NO_NEW_PRIVS)");
        return -1;
    }
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) {
        perror("enosys-run: prctl(PR_SET_SECCOMP)");
        return -1;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: enosys-run [-n LAST] COMMAND [ARG...]\n"
                    "  system calls numbered above LAST (default %u, Linux 3.10) fail with ENOSYS\n",
            LINUX_3_10_LAST_SYSCALL);
    return 125;
}

int main(int argc, char **argv)
{
    unsigned last = LINUX_3_10_LAST_SYSCALL;
    int first = 1;

    if (first + 1 < argc && strcmp(argv[first], "-n") == 0) {
        char *end;
        unsigned long value;
        errno = 0;
        value = strtoul(argv[first + 1], &end, 10);
        if (errno != 0 || *end != '\0' || end == argv[first + 1] || value > 4095)
            return usage();
        last = (unsigned)value;
        first += 2;
    }
    if (first >= argc || argv[first][0] == '-')
        return usage();
    if (install_filter(last) != 0)
        return 125;
    execvp(argv[first], &argv[first]);
    fprintf(stderr, "enosys-run: %s: %s\n", argv[first], strerror(errno));
    return 127;
}
