/*
 * reduced_probe: escape attempts inside a reduced-mode stockade sandbox,
 * for sandbox-cli/tests/reduced.rs. One action per argument group; each
 * prints one line:
 *
 *     LABEL ok                  the action succeeded
 *     LABEL err ERRNO_NAME      it failed with that errno (e.g. EACCES)
 *
 * Actions:
 *   tcp IP PORT        socket(AF_INET, SOCK_STREAM) + connect
 *   fastopen IP PORT   socket(AF_INET, SOCK_STREAM) + sendto(MSG_FASTOPEN)
 *   listen             socket(AF_INET, SOCK_STREAM) + listen, no bind
 *   bind PORT          socket(AF_INET, SOCK_STREAM) + bind 127.0.0.1:PORT
 *   udp IP PORT        socket(AF_INET, SOCK_DGRAM) + sendto
 *   udp6               socket(AF_INET6, SOCK_DGRAM)
 *   raw                socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
 *   sctp | mptcp       socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP | IPPROTO_MPTCP)
 *   unix PATH          socket(AF_UNIX, SOCK_STREAM) + connect to PATH
 *   socketpair         socketpair(AF_UNIX) (must work)
 *   kill PID           kill(PID, 0): the permission check only
 *   killparent         kill(getppid(), 0): the sandbox's supervisor
 *   read PATH          open(PATH, O_RDONLY) + read 1 byte
 *   write PATH         open(PATH, O_WRONLY|O_CREAT|O_TRUNC) + write "x"
 *   shmget             shmget(IPC_PRIVATE, 4096, 0600)
 *   mqopen             mq_open("/stockade-probe", O_CREAT|O_RDWR)
 *   mount | unshare    mount("none","/tmp","tmpfs") | unshare(CLONE_NEWUSER)
 *   ptrace PID         ptrace(PTRACE_ATTACH, PID)
 *   euid               prints "euid N"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static void report(const char *label, int rc) {
    if (rc >= 0)
        printf("%s ok\n", label);
    else
        printf("%s err %s\n", label, strerrorname_np(errno));
    fflush(stdout);
}

static struct sockaddr_in addr4(const char *ip, const char *port) {
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(port));
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (!strcmp(a, "tcp") && i + 2 < argc) {
            struct sockaddr_in sa = addr4(argv[i + 1], argv[i + 2]);
            int s = socket(AF_INET, SOCK_STREAM, 0);
            rc = s < 0 ? s : connect(s, (struct sockaddr *)&sa, sizeof sa);
            report("tcp", rc);
            i += 2;
        } else if (!strcmp(a, "fastopen") && i + 2 < argc) {
            struct sockaddr_in sa = addr4(argv[i + 1], argv[i + 2]);
            int s = socket(AF_INET, SOCK_STREAM, 0);
            rc = s < 0 ? s : (int)sendto(s, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&sa, sizeof sa);
            report("fastopen", rc);
            i += 2;
        } else if (!strcmp(a, "listen")) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            rc = s < 0 ? s : listen(s, 1);
            report("listen", rc);
        } else if (!strcmp(a, "bind") && i + 1 < argc) {
            struct sockaddr_in sa = addr4("127.0.0.1", argv[i + 1]);
            int s = socket(AF_INET, SOCK_STREAM, 0);
            rc = s < 0 ? s : bind(s, (struct sockaddr *)&sa, sizeof sa);
            report("bind", rc);
            i += 1;
        } else if (!strcmp(a, "udp") && i + 2 < argc) {
            struct sockaddr_in sa = addr4(argv[i + 1], argv[i + 2]);
            int s = socket(AF_INET, SOCK_DGRAM, 0);
            rc = s < 0 ? s : (int)sendto(s, "x", 1, 0, (struct sockaddr *)&sa, sizeof sa);
            report("udp", rc);
            i += 2;
        } else if (!strcmp(a, "udp6")) {
            report("udp6", socket(AF_INET6, SOCK_DGRAM, 0));
        } else if (!strcmp(a, "raw")) {
            report("raw", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
        } else if (!strcmp(a, "sctp")) {
            report("sctp", socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP));
        } else if (!strcmp(a, "mptcp")) {
            report("mptcp", socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP));
        } else if (!strcmp(a, "unix") && i + 1 < argc) {
            struct sockaddr_un sa = {0};
            sa.sun_family = AF_UNIX;
            strncpy(sa.sun_path, argv[i + 1], sizeof sa.sun_path - 1);
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            rc = s < 0 ? s : connect(s, (struct sockaddr *)&sa, sizeof sa);
            report("unix", rc);
            i += 1;
        } else if (!strcmp(a, "socketpair")) {
            int sv[2];
            report("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        } else if (!strcmp(a, "kill") && i + 1 < argc) {
            report("kill", kill(atoi(argv[i + 1]), 0));
            i += 1;
        } else if (!strcmp(a, "killparent")) {
            report("killparent", kill(getppid(), 0));
        } else if (!strcmp(a, "read") && i + 1 < argc) {
            char c;
            int fd = open(argv[i + 1], O_RDONLY);
            rc = fd < 0 ? fd : (int)read(fd, &c, 1);
            report("read", rc);
            i += 1;
        } else if (!strcmp(a, "write") && i + 1 < argc) {
            int fd = open(argv[i + 1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            rc = fd < 0 ? fd : (int)write(fd, "x", 1);
            report("write", rc);
            i += 1;
        } else if (!strcmp(a, "shmget")) {
            report("shmget", shmget(IPC_PRIVATE, 4096, 0600));
        } else if (!strcmp(a, "mqopen")) {
            report("mqopen", (int)mq_open("/stockade-probe", O_CREAT | O_RDWR, 0600, NULL));
        } else if (!strcmp(a, "mount")) {
            report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
        } else if (!strcmp(a, "unshare")) {
            report("unshare", unshare(CLONE_NEWUSER));
        } else if (!strcmp(a, "ptrace") && i + 1 < argc) {
            report("ptrace", (int)ptrace(PTRACE_ATTACH, atoi(argv[i + 1]), 0, 0));
            i += 1;
        } else if (!strcmp(a, "euid")) {
            printf("euid %d\n", (int)geteuid());
        } else {
            printf("%s unknown\n", a);
        }
    }
    return 0;
}
