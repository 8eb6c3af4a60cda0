/* events test program: the main thread does exactly N read()s of 77 bytes on a pipe; a writer
 * thread waits until that read has *entered the kernel* (/proc/self/task/TID/syscall shows the
 * read syscall), then sleeps DELAY_MS and writes one byte. So each read lasts at least DELAY_MS,
 * and the writer's own reads (of /proc) are of other sizes.
 * usage: reads N DELAY_MS */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fds[2];
static int n, delay_ms;
static pid_t reader;
static int started; /* reads the main thread has begun (atomic) */

static int reader_in_read(void) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)reader);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int in = fgets(buf, sizeof buf, f) && atol(buf) == SYS_read;
    fclose(f);
    return in;
}

static void *writer(void *arg) {
    (void)arg;
    for (int i = 0; i < n; i++) {
        while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < i + 1 || !reader_in_read()) usleep(200);
        usleep(delay_ms * 1000);
        if (write(fds[1], "x", 1) != 1) exit(3);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: reads N DELAY_MS\n"); return 2; }
    n = atoi(argv[1]);
    delay_ms = atoi(argv[2]);
    if (pipe(fds)) return 3;
    reader = (pid_t)syscall(SYS_gettid);
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    char buf[77];
    for (int i = 0; i < n; i++) {
        __atomic_store_n(&started, i + 1, __ATOMIC_RELEASE);
        if (read(fds[0], buf, sizeof buf) != 1) return 4;
    }
    pthread_join(t, NULL);
    return 0;
}
