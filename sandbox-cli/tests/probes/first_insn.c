/*
 * first_insn: proof that there is no unfiltered window between the sandbox's
 * setup and the command. A static program without libc, dynamic loader or
 * startup code: the instruction at _start is the first one that runs in the
 * new image, and its first syscall is
 *
 *     unshare(0)
 *
 * which the kernel alone always grants (0: "unshare nothing"), while the
 * stockade filter refuses it with EPERM. Then it copies /proc/self/status to
 * stdout (Seccomp, Seccomp_filters, NoNewPrivs as this very process sees
 * them) and exits 0.
 *
 * Output: `first_unshare 272 RET ERRNO` then the status file.
 *
 * Built by the test:
 *   gcc -static -nostdlib -ffreestanding -fno-stack-protector -fno-pie -no-pie \
 *       -O1 -o first_insn first_insn.c
 */

#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_close 3
#define NR_unshare 272
#define NR_exit_group 231

static long sys3(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return r;
}

static void put(const char *s, long n) { sys3(NR_write, 1, (long)s, n); }

static void put_long(long v) {
    char buf[24];
    int i = sizeof buf;
    int neg = v < 0;
    unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg) buf[--i] = '-';
    put(buf + i, sizeof buf - i);
}

__attribute__((noreturn, used)) void first_main(void) {
    /* The very first syscall of the program. */
    long r = sys3(NR_unshare, 0, 0, 0);
    put("first_unshare 272 ", 18);
    put_long(r < 0 ? -1 : r);
    put(" ", 1);
    put_long(r < 0 ? -r : 0);
    put("\n", 1);

    long fd = sys3(NR_open, (long)"/proc/self/status", 0, 0);
    if (fd >= 0) {
        char buf[512];
        long n;
        while ((n = sys3(NR_read, fd, (long)buf, sizeof buf)) > 0) put(buf, n);
        sys3(NR_close, fd, 0, 0);
    }
    sys3(NR_exit_group, fd >= 0 ? 0 : 3, 0, 0);
    for (;;) {
    }
}

/* The entry point: align the stack and call first_main. */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "    xor %rbp, %rbp\n"
        "    and $-16, %rsp\n"
        "    call first_main\n"
        "    hlt\n");
