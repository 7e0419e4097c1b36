/* SPDX-License-Identifier: MIT */
/* setuid_probe.c: the program setuid.sh runs as a setuid-root copy under an unprivileged user.
 * Linked to libhostmalloc-override.so, it allocates (so the override's heap and manager exist
 * and HM_STATS would report at exit) and prints its real and effective user ids, which tell
 * the script whether the kernel really ran it with privileges. With --bad-free it frees a
 * pointer hostmalloc never gave out, so that the script can read the message of the abort. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bad-free") == 0) {
        /* a pointer hostmalloc never gave out: the process aborts with one message */
        static char not_a_block[64];
        char *volatile q = not_a_block + 16; /* volatile: the compiler sees no misuse */
        free(q);
        return 2;
    }
    for (int i = 0; i < 100; i++) {
        char *volatile p = malloc(64 + (size_t)i * 100);
        if (p == NULL) return 1;
        memset(p, i, 64);
        free(p);
    }
    printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    return 0;
}
