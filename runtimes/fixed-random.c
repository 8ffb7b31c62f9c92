/* A fixed random source for the component build (runtimes/build-component.sh, via LD_PRELOAD).
 *
 * componentize-py pre-initializes CPython at build time under wasmtime-wasi, whose random source is seeded from
 * the host's getrandom(2). CPython draws its string-hash secret from that source during start-up, and the
 * snapshot keeps it, so without this every build hashes strings differently and a program that prints a set of
 * strings gets another verdict from another build. Every call here returns the same bytes (a splitmix64 stream
 * restarted per call), so the result does not depend on how many threads ask, or in which order. Only the
 * build sees this; graded submissions get wasmtime's ordinary random source at run time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>

static ssize_t fill(void *buf, size_t len) {
    uint64_t state = 0x5eed5eed5eed5eedULL;
    unsigned char *out = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        out[i] = (unsigned char)((z ^ (z >> 31)) >> 56);
    }
    return (ssize_t)len;
}

/* The libc entry point (Rust's getrandom 0.3 and std use it where glibc has it). */
ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
    (void)flags;
    return fill(buf, len);
}

/* The raw system call (getrandom 0.2 calls syscall(SYS_getrandom, ...)); every other call passes through. */
long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_getrandom) return fill((void *)a[0], (size_t)a[1]);
    static long (*real)(long, ...);
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
