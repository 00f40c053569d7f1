/* Syscall loop for the seccomp overhead benchmark: N raw calls of one kind,
 * prints nanoseconds per call.
 *   syscall_loop getppid N   -- allowed without argument checks (cached by the kernel)
 *   syscall_loop ioctl N     -- ioctl(-1, FIONREAD): goes through an argument check
 *   syscall_loop mount N     -- mount(0, ...): refused by the filter (EPERM) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s getppid|ioctl|mount N\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    int ioctl_mode = strcmp(argv[1], "ioctl") == 0;
    int mount_mode = strcmp(argv[1], "mount") == 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        if (ioctl_mode)
            syscall(SYS_ioctl, -1, FIONREAD, 0);
        else if (mount_mode)
            syscall(SYS_mount, 0, 0, 0, 0, 0);
        else
            syscall(SYS_getppid);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.2f\n", ns / n);
    return 0;
}
