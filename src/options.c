/* options.c: HM_* environment options, the fatal-error path and a formatter that never
 * allocates (these run inside malloc, so they may not call it). */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bool _hm_parse_size(const char *s, size_t *out) {
    if (s == NULL || *s == '\0') return false;
    size_t v = 0;
    const char *c = s;
    for (; *c >= '0' && *c <= '9'; c++) {
        size_t d = (size_t)(*c - '0');
        if (v > (SIZE_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (c == s) return false;
    unsigned shift = 0;
    switch (*c) {
    case 'k':
    case 'K':
        shift = 10;
        c++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        c++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        c++;
        break;
    case 't':
    case 'T':
        shift = 40;
        c++;
        break;
    default:
        break;
    }
    if (shift != 0 && (*c == 'i' || *c == 'I')) c++;
    if (shift != 0 && (*c == 'b' || *c == 'B')) c++;
    if (*c != '\0') return false;
    if (shift != 0 && v > (SIZE_MAX >> shift)) return false;
    *out = v << shift;
    return true;
}

static bool env_bool(const char *name, bool dflt) {
    const char *v = _hm_prim_getenv(name);
    if (v == NULL || *v == '\0') return dflt;
    return !(strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0 ||
             strcmp(v, "no") == 0);
}

static void env_size(const char *name, size_t *field) {
    size_t v;
    const char *s = _hm_prim_getenv(name);
    if (s != NULL && _hm_parse_size(s, &v))
        *field = v;
    else if (s != NULL) {
        char msg[160];
        size_t n = _hm_snprintf(msg, sizeof msg, "hostmalloc: ignoring malformed %s=%s\n", name, s);
        _hm_prim_write_stderr(msg, n);
    }
}

void hm_config_init(hm_config *cfg) {
    if (cfg == NULL) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->purge_delay_ms = 10;
    cfg->segment_cache = (size_t)32 << 20;
    cfg->print_stats = false;
    size_t delay = cfg->purge_delay_ms;
    env_size("HM_PURGE_DELAY", &delay);
    cfg->purge_delay_ms = delay > 3600000u ? 3600000u : (unsigned)delay;
    env_size("HM_SEGMENT_CACHE", &cfg->segment_cache);
    cfg->print_stats = env_bool("HM_STATS", false);
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
            n = put_str(buf, cap, n, "0x");
            n = put_uint(buf, cap, n, (uintptr_t)va_arg(ap, void *), 16);
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
    if (cap > 0) buf[n < cap ? n : cap - 1] = '\0';
    return n < cap ? n : cap - 1;
}

void _hm_fatal(const char *msg, const void *ptr) {
    char buf[256];
    size_t n = ptr != NULL ? _hm_snprintf(buf, sizeof buf, "hostmalloc: %s %p\n", msg, ptr)
                           : _hm_snprintf(buf, sizeof buf, "hostmalloc: %s\n", msg);
    _hm_prim_write_stderr(buf, n);
    abort();
}

void _hm_assert_fail(const char *cond, const char *file, int line) {
    char buf[256];
    size_t n = _hm_snprintf(buf, sizeof buf, "hostmalloc: assertion failed: %s (%s:%d)\n", cond,
                            file, line);
    _hm_prim_write_stderr(buf, n);
    abort();
}
