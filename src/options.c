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

/* One line on stderr (no allocation) for an HM_* value that cannot be read; it is ignored. */
static void warn_malformed(const char *name, const char *value) {
    char msg[160];
    size_t n = _hm_snprintf(msg, sizeof msg, "hostmalloc: ignoring malformed %s=%s\n", name, value);
    _hm_prim_write_stderr(msg, n);
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
    else if (s != NULL)
        warn_malformed(name, s);
}

static void env_unsigned(const char *name, unsigned *field, unsigned max) {
    size_t v = *field;
    env_size(name, &v);
    *field = v > max ? max : (unsigned)v;
}

/* "0.25" or "1" (no exponent): a probability in [0, 1]. */
static bool parse_fraction(const char *s, const char **end, double *out) {
    double v = 0;
    const char *c = s;
    for (; *c >= '0' && *c <= '9'; c++)
        v = v * 10 + (*c - '0');
    if (*c == '.') {
        double scale = 0.1;
        for (c++; *c >= '0' && *c <= '9'; c++, scale /= 10)
            v += (*c - '0') * scale;
    }
    if (c == s || v > 1) return false;
    *end = c;
    *out = v;
    return true;
}

/* One element of a level list: a whole number below 2^32. */
static bool parse_count(const char **c, double *out) {
    const char *start = *c;
    uint64_t x = 0;
    for (; **c >= '0' && **c <= '9'; (*c)++) {
        x = x * 10 + (uint64_t)(**c - '0');
        if (x > 0xFFFFFFFFu) return false; /* stops before anything could wrap */
    }
    *out = (double)x;
    return *c != start;
}

static bool parse_probability(const char **c, double *out) {
    return parse_fraction(*c, c, out);
}

/* "x" for every level, or "task,appdomain,process"; false (and a message) when malformed. */
static bool env_levels(const char *name, bool (*one)(const char **, double *), double v[3]) {
    const char *s = _hm_prim_getenv(name);
    if (s == NULL) return false;
    int n = 0;
    const char *c = s;
    while (n < 3 && one(&c, &v[n])) {
        n++;
        if (*c != ',') break;
        c++;
    }
    if (*c != '\0' || (n != 1 && n != 3)) {
        warn_malformed(name, s);
        return false;
    }
    if (n == 1) v[1] = v[2] = v[0];
    return true;
}

int hm_version(void) {
    return HOSTMALLOC_VERSION;
}

const char *hm_version_string(void) {
    return HOSTMALLOC_VERSION_STRING;
}

void hm_config_init(hm_config *cfg) {
    if (cfg == NULL) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->limit = 0;
    cfg->process_wait_ms = 100;
    cfg->low_pct = 90;
    cfg->neutral_pct = 80;
    cfg->high_pct = 50;
    cfg->notify_interval_ms = 100;
    cfg->fault_seed = 1;
    cfg->purge_delay_ms = 10;
    cfg->segment_cache = (size_t)32 << 20;
    cfg->print_stats = false;
    env_size("HM_LIMIT", &cfg->limit);
    env_size("HM_RESERVE_APPDOMAIN", &cfg->reserve_appdomain);
    env_size("HM_RESERVE_PROCESS", &cfg->reserve_process);
    env_unsigned("HM_PROCESS_WAIT", &cfg->process_wait_ms, 3600000u);
    env_unsigned("HM_LOW_PCT", &cfg->low_pct, 100);
    env_unsigned("HM_NEUTRAL_PCT", &cfg->neutral_pct, 100);
    env_unsigned("HM_HIGH_PCT", &cfg->high_pct, 100);
    env_unsigned("HM_NOTIFY_INTERVAL", &cfg->notify_interval_ms, 3600000u);
    double v[3];
    if (env_levels("HM_FAULT_EVERY", parse_count, v))
        for (int l = 0; l < 3; l++)
            cfg->fault_every[l] = (unsigned)v[l];
    if (env_levels("HM_FAULT_PROB", parse_probability, v)) /* nothing changes if malformed */
        for (int l = 0; l < 3; l++)
            cfg->fault_probability[l] = v[l];
    size_t seed = (size_t)cfg->fault_seed;
    env_size("HM_FAULT_SEED", &seed);
    cfg->fault_seed = seed;
    env_unsigned("HM_PURGE_DELAY", &cfg->purge_delay_ms, 3600000u);
    env_size("HM_SEGMENT_CACHE", &cfg->segment_cache);
    cfg->print_stats = env_bool("HM_STATS", false);
    cfg->checked = env_bool("HM_CHECKED", false);
    cfg->stats_path = _hm_prim_getenv("HM_STATS_FILE"); /* environ outlives every manager */
    if (cfg->stats_path != NULL && *cfg->stats_path == '\0') cfg->stats_path = NULL;
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
