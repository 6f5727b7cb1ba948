/* The floor for one socket: the syscalls sockdiag's send_buffer and tcp_info
 * make, in a plain C loop.  Built by the bench with the machine's compiler
 * and called once per round through ctypes, so the call overhead is spread
 * over `iterations` calls.  Each returns the loop's nanoseconds, or -1. */
#define _GNU_SOURCE
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

volatile long sd_sink;

double raw_send_buffer_loop(int fd, long iterations) {
    int queued, unsent;
    unsigned int mem[16];
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
        socklen_t length = sizeof(mem);
        if (ioctl(fd, SIOCOUTQNSD, &unsent) || ioctl(fd, SIOCOUTQ, &queued) ||
            getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &length))
            return -1;
        sd_sink = queued - unsent + mem[3] - mem[5];
    }
    return now_ns() - start;
}

double raw_tcp_info_loop(int fd, long iterations) {
    unsigned char info[512];
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
        socklen_t length = sizeof(info);
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &length))
            return -1;
        sd_sink = info[0];
    }
    return now_ns() - start;
}
