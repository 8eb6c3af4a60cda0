/* The snoop tests' program: functions with known behaviour, each called an exact number of
 * times (see harness/tests/snoop.rs). Built by the tests with cc. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long lib_fn(long x); /* in libsnooplib.so */

/* Leaf at -O2: starts with lea/mov (the kernel single-steps it). */
__attribute__((noinline)) long add3(long a, long b, long c) {
    __asm__ volatile("");
    return a + b + c;
}

/* Not a leaf, with a frame pointer: starts with push %rbp (emulated). */
__attribute__((noinline, optimize("no-omit-frame-pointer"))) long push_fn(long x) {
    __asm__ volatile("" ::: "memory");
    return add3(x, x, x) + 1;
}

/* Really recursive: the asm keeps gcc from turning the recursion into a loop. */
__attribute__((noinline)) long recurse(long n) {
    if (n <= 0) return 0;
    long r = recurse(n - 1);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

__attribute__((noinline)) void sleeper(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}

__attribute__((noinline)) long worker_fn(long x) {
    __asm__ volatile("");
    return x * 2;
}

__attribute__((noinline)) long child_fn(long x) {
    __asm__ volatile("");
    return x + 1;
}

/* A symbol with no code of its own (size 0). */
__asm__(".globl zero_size\n.type zero_size,@function\nzero_size:\n");

static void *thread_main(void *p) {
    long s = 0;
    for (int i = 0; i < 50; i++) s += worker_fn(i);
    return (void *)s;
}

int main(int argc, char **argv) {
    if (argc > 2 && (strcmp(argv[1], "many") == 0 || strcmp(argv[1], "manypush") == 0)) {
        /* Many calls in a burst (the loss test; the cost measurement in the README). */
        long s = 0, n = atol(argv[2]);
        int push = strcmp(argv[1], "manypush") == 0;
        for (long i = 0; i < n; i++) s += push ? push_fn(i) : add3(i, 2, 3);
        printf("%ld\n", s);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        /* Attach mode: give the tracer time to attach, then do the work. */
        sleeper(atol(argv[2]));
    }
    long s = 0;
    for (int i = 0; i < 100; i++) s += add3(i, 2, 3);
    for (int i = 0; i < 13; i++) s += push_fn(i);
    s += recurse(5);
    sleeper(20);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, thread_main, 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    for (int i = 0; i < 7; i++) s += lib_fn(i);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 3; i++) s += child_fn(i);
        _exit(0);
    }
    waitpid(pid, 0, 0);
    printf("%ld\n", s);
    return 0;
}
