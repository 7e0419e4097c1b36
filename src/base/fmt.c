/* SPDX-License-Identifier: MIT */
/* base/fmt.c: text without allocation: the formatter, stderr, the fatal path, the error sink,
 * and the few facts about the process that reports name (its pid and name, whether it runs
 * setuid, its environment). All of it runs inside malloc, so none of it may call malloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "base/base.h"

extern char **environ;

bool _hm_secure(void) {
    return getauxval(AT_SECURE) != 0;
}

const char *_hm_getenv(const char *name) {
    /* getenv() itself does not allocate, but walking environ keeps us independent of libc
     * state during early start-up. */
    size_t n = strlen(name);
    if (environ == NULL) return NULL;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    }
    return NULL;
}

void _hm_write_stderr(const char *msg, size_t len) {
    int saved = errno;
    while (len > 0) {
        ssize_t w = write(2, msg, len);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            break;
        }
        msg += w;
        len -= (size_t)w;
    }
    errno = saved;
}

void _hm_program_name(char *buf, size_t cap) {
    const char *name = program_invocation_short_name;
    if (name != NULL && *name != '\0') {
        _hm_snprintf(buf, cap, "%s", name);
        return;
    }
    /* before libc has set it (the first malloc of the process can come that early) */
    int saved = errno;
    int fd = cap > 1 ? open("/proc/self/comm", O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, buf, cap - 1) : -1;
    if (fd >= 0) close(fd);
    errno = saved;
    if (n > 0) {
        buf[n] = '\0';
        char *nl = strchr(buf, '\n');
        if (nl != NULL) *nl = '\0';
        return;
    }
    _hm_snprintf(buf, cap, "%s", "?");
}

void _hm_report(const hm_config *cfg, int kind, const void *ptr, const char *message) {
    if (cfg != NULL && cfg->on_error != NULL) {
        cfg->on_error(kind, ptr, message, cfg->on_error_arg);
        return;
    }
    _hm_write_stderr(message, strlen(message));
}

/* ---- formatting without allocation ------------------------------------------------------ */
static size_t put_str(char *buf, size_t cap, size_t n, const char *s) {
    for (; s != NULL && *s; s++, n++)
        if (n + 1 < cap) buf[n] = *s;
    return n;
}

static size_t put_uint(char *buf, size_t cap, size_t n, uint64_t v, unsigned base) {
    char tmp[24];
    int i = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v != 0);
    while (i > 0) {
        if (n + 1 < cap) buf[n] = tmp[i - 1];
        n++;
        i--;
    }
    return n;
}

/* 1536 -> "1.5 KiB": one decimal, the unit that keeps the figure below 1024; below 1 KiB the
 * exact count in B. */
static size_t put_human(char *buf, size_t cap, size_t n, uint64_t v) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (v < 1024) {
        n = put_uint(buf, cap, n, v, 10);
        return put_str(buf, cap, n, " B");
    }
    unsigned u = 1;
    while (u < 6 && (v >> (10 * (u + 1))) != 0)
        u++;
    unsigned __int128 tenths =
        ((unsigned __int128)v * 10 + ((uint64_t)1 << (10 * u)) / 2) >> (10 * u);
    if (tenths >= 10240 && u < 6) { /* 1023.96 KiB rounds to 1.0 MiB, not to 1024.0 KiB */
        u++;
        tenths = ((unsigned __int128)v * 10 + ((uint64_t)1 << (10 * u)) / 2) >> (10 * u);
    }
    n = put_uint(buf, cap, n, (uint64_t)(tenths / 10), 10);
    n = put_str(buf, cap, n, ".");
    n = put_uint(buf, cap, n, (uint64_t)(tenths % 10), 10);
    n = put_str(buf, cap, n, " ");
    return put_str(buf, cap, n, units[u]);
}

size_t _hm_snprintf(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (n + 1 < cap) buf[n] = *f;
            n++;
            continue;
        }
        f++;
        if (*f == 'z' && f[1] == 'u') {
            f++;
            n = put_uint(buf, cap, n, va_arg(ap, size_t), 10);
        } else if (*f == 'H') {
            n = put_human(buf, cap, n, va_arg(ap, size_t));
        } else if (*f == 'u') {
            n = put_uint(buf, cap, n, va_arg(ap, unsigned), 10);
        } else if (*f == 'd') {
            int v = va_arg(ap, int);
            if (v < 0) {
                if (n + 1 < cap) buf[n] = '-';
                n++;
                n = put_uint(buf, cap, n, (uint64_t)(-(int64_t)v), 10);
            } else {
                n = put_uint(buf, cap, n, (uint64_t)v, 10);
            }
        } else if (*f == 'p') {
            /* a setuid or setgid program's stderr belongs to the less privileged user who
             * started it: its address layout is not theirs to read */
            uintptr_t v = (uintptr_t)va_arg(ap, void *);
            if (_hm_secure()) {
                n = put_str(buf, cap, n, "(address hidden)");
            } else {
                n = put_str(buf, cap, n, "0x");
                n = put_uint(buf, cap, n, v, 16);
            }
        } else if (*f == 's') {
            n = put_str(buf, cap, n, va_arg(ap, const char *));
        } else if (*f == '%') {
            if (n + 1 < cap) buf[n] = '%';
            n++;
        } else if (*f == '\0') {
            break;
        }
    }
    va_end(ap);
    if (cap == 0) return 0; /* no room, not even for the terminator: nothing written */
    buf[n < cap ? n : cap - 1] = '\0';
    return n < cap ? n : cap - 1;
}

size_t _hm_report_who(char *buf, size_t cap) {
    char name[64];
    _hm_program_name(name, sizeof name);
    return _hm_snprintf(buf, cap, "pid %d (%s)", (int)getpid(), name);
}

void _hm_fatal(const char *msg, const void *ptr) {
    char buf[256];
    size_t n = ptr != NULL ? _hm_snprintf(buf, sizeof buf, "hostmalloc: %s %p\n", msg, ptr)
                           : _hm_snprintf(buf, sizeof buf, "hostmalloc: %s\n", msg);
    _hm_write_stderr(buf, n);
    abort();
}

void _hm_assert_fail(const char *cond, const char *file, int line) {
    char buf[256];
    size_t n = _hm_snprintf(buf, sizeof buf, "hostmalloc: assertion failed: %s (%s:%d)\n", cond,
                            file, line);
    _hm_write_stderr(buf, n);
    abort();
}
