/* libsnooplib.so: a function in a shared library the test program loads. */
__attribute__((noinline)) long lib_fn(long x) {
    __asm__ volatile("");
    return x * 3;
}
