/* events test program: N times, named_reader() -> read_once() -> read() of 55 bytes from
 * /dev/zero, then a DELAY_MS sleep; built with frame pointers so that a user stack taken at the
 * read names these functions.
 * usage: stacky N DELAY_MS */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static int read_once(int fd) {
    char buf[55];
    int r = (int)read(fd, buf, sizeof buf);
    __asm__ volatile("" ::: "memory");
    return r;
}

__attribute__((noinline)) int named_reader(int fd) {
    int r = read_once(fd);
    __asm__ volatile("" ::: "memory");
    return r;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0) return 3;
    long ms = atol(argv[2]);
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    for (int i = 0, n = atoi(argv[1]); i < n; i++) {
        if (named_reader(fd) != 55) return 4;
        nanosleep(&ts, NULL);
    }
    return 0;
}
