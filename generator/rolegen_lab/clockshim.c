/* The lab's clock skew (rolegen_lab.clock): preloaded into a process, it adds the seconds written in the file
 * named by ROLEGEN_CLOCK_OFFSET_FILE to every wall-clock read (clock_gettime of CLOCK_REALTIME and its coarse
 * twin, gettimeofday, time), read afresh on each call, so writing the file steps a running process's wall clock.
 * Monotonic clocks, sleeps and timed waits are left alone, as a real skew leaves them. (libfaketime also moves
 * the waits of a process that fakes no monotonic clock: Python's sleeps fail with EINVAL under it.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);

static double offset(void) {
    const char *path = getenv("ROLEGEN_CLOCK_OFFSET_FILE");
    char text[64];
    ssize_t n;
    int fd;
    if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    return strtod(text, NULL);
}

static void shift(struct timespec *ts) {
    double off = offset();
    long long ns = (long long)ts->tv_nsec + (long long)((off - (double)(long long)off) * 1e9);
    ts->tv_sec += (time_t)(long long)off + (time_t)(ns / 1000000000LL);
    ns %= 1000000000LL;
    if (ns < 0) {
        ns += 1000000000LL;
        ts->tv_sec -= 1;
    }
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc;
    if (real_clock_gettime == NULL)
        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    rc = real_clock_gettime(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    if (tv != NULL) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out != NULL)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
