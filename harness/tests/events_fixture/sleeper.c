/* events test program: waits PRE_MS (while the tracer starts; "-": until a byte arrives on
 * stdin), then sleeps N times DELAY_MS; each sleep ends with a sched_wakeup of this task and a
 * sched_switch to it.
 * usage: sleeper PRE_MS|- N DELAY_MS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts)) {}
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: sleeper PRE_MS N DELAY_MS\n"); return 2; }
    if (strcmp(argv[1], "-") == 0) {
        char c;
        if (read(0, &c, 1) != 1) return 3;
    } else {
        sleep_ms(atol(argv[1]));
    }
    for (int i = 0, n = atoi(argv[2]); i < n; i++) sleep_ms(atol(argv[3]));
    return 0;
}
