/* SPDX-License-Identifier: MIT */
/* config/options.c: the HM_* environment options (they are read inside malloc, so nothing
 * here may call it).
 *
 * The options are one table: hm_config_init parses them, the unknown-name check knows every
 * name, HM_VERBOSE prints the effective configuration and a setuid or setgid program ignores
 * the unsafe ones, all from the same rows. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "config/config.h"

extern char **environ;

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

/* ---- the option table ----------------------------------------------------------------------
 * One row per HM_* variable: hm_config_init parses from it, the unknown-name check knows every
 * name from it, and HM_VERBOSE prints the effective configuration from it. */
enum { K_SIZE, K_UINT, K_U64, K_BOOL, K_STATS, K_PATH, K_COUNTS, K_PROBS };

/* What a setuid or setgid program (AT_SECURE) does with the variable: its environment belongs
 * to a less privileged user. Options that create or append to files, print addresses, or make
 * requests fail on purpose are ignored; the limit may only go down (the user could lower it
 * with ulimit anyway, but raising it would lift a budget the administrator set). */
enum { SEC_OK, SEC_IGNORE, SEC_LOWER };

typedef struct {
    const char *name;  /* the environment variable */
    const char *field; /* the hm_config field */
    unsigned char kind, secure;
    unsigned max;     /* K_UINT: the largest accepted value */
    const char *unit; /* K_UINT: printed after the value */
    size_t off;       /* offsetof(hm_config, field) */
} hm_option_t;

#define OPT(n, f, k, s, max, unit)                                                                 \
    { n, #f, k, s, max, unit, offsetof(hm_config, f) }
static const hm_option_t k_options[] = {
    OPT("HM_LIMIT", limit, K_SIZE, SEC_LOWER, 0, NULL),
    OPT("HM_RESERVE_APPDOMAIN", reserve_appdomain, K_SIZE, SEC_OK, 0, NULL),
    OPT("HM_RESERVE_PROCESS", reserve_process, K_SIZE, SEC_OK, 0, NULL),
    OPT("HM_PROCESS_WAIT", process_wait_ms, K_UINT, SEC_OK, 3600000u, " ms"),
    OPT("HM_LOW_PCT", low_pct, K_UINT, SEC_OK, 100, "%"),
    OPT("HM_NEUTRAL_PCT", neutral_pct, K_UINT, SEC_OK, 100, "%"),
    OPT("HM_HIGH_PCT", high_pct, K_UINT, SEC_OK, 100, "%"),
    OPT("HM_NOTIFY_INTERVAL", notify_interval_ms, K_UINT, SEC_OK, 3600000u, " ms"),
    OPT("HM_FAULT_EVERY", fault_every, K_COUNTS, SEC_IGNORE, 0, NULL),
    OPT("HM_FAULT_PROB", fault_probability, K_PROBS, SEC_IGNORE, 0, NULL),
    OPT("HM_FAULT_SEED", fault_seed, K_U64, SEC_IGNORE, 0, NULL),
    OPT("HM_PURGE_DELAY", purge_delay_ms, K_UINT, SEC_OK, 3600000u, " ms"),
    OPT("HM_SEGMENT_CACHE", segment_cache, K_SIZE, SEC_OK, 0, NULL),
    OPT("HM_STATS", print_stats, K_STATS, SEC_IGNORE, 0, NULL),
    OPT("HM_STATS_FILE", stats_path, K_PATH, SEC_IGNORE, 0, NULL),
    OPT("HM_CHECKED", checked, K_BOOL, SEC_OK, 0, NULL),
    OPT("HM_VERBOSE", verbose, K_BOOL, SEC_IGNORE, 0, NULL),
};
#define N_OPTIONS (sizeof k_options / sizeof k_options[0])

/* One line on stderr (no allocation) for an HM_* value that cannot be used; it is ignored.
 * "hostmalloc: ignoring <what> HM_X=<value><why>" */
static void warn_value(const char *what, const char *name, const char *value, const char *why) {
    char msg[320];
    size_t n =
        _hm_snprintf(msg, sizeof msg, "hostmalloc: ignoring %s%s=%s%s\n", what, name, value, why);
    _hm_write_stderr(msg, n);
}

/* ASCII, case-insensitive (strcasecmp may consult the locale). */
static bool word_is(const char *s, const char *w) {
    for (; *s && *w; s++, w++) {
        char c = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
        if (c != *w) return false;
    }
    return *s == *w;
}

/* 1 true, 0 false, -1 neither. */
static int parse_bool(const char *s) {
    if (word_is(s, "1") || word_is(s, "true") || word_is(s, "on") || word_is(s, "yes")) return 1;
    if (word_is(s, "0") || word_is(s, "false") || word_is(s, "off") || word_is(s, "no")) return 0;
    return -1;
}

/* "0.25" or "1" (no exponent): a probability in [0, 1]. */
static bool parse_fraction(const char *s, const char **end, double *out) {
    double v = 0;
    const char *c = s;
    bool digit = false; /* "." alone is not a number */
    for (; *c >= '0' && *c <= '9'; c++, digit = true)
        v = v * 10 + (*c - '0');
    if (*c == '.') {
        double scale = 0.1;
        for (c++; *c >= '0' && *c <= '9'; c++, scale /= 10, digit = true)
            v += (*c - '0') * scale;
    }
    if (!digit || v > 1) return false;
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

/* "x" for every level, or "task,appdomain,process". */
static bool parse_levels(const char *s, bool (*one)(const char **, double *), double v[3]) {
    int n = 0;
    const char *c = s;
    while (n < 3 && one(&c, &v[n])) {
        n++;
        if (n == 3 || *c != ',') break; /* a comma after the third value is left: malformed */
        c++;
    }
    if (*c != '\0' || (n != 1 && n != 3)) return false;
    if (n == 1) v[1] = v[2] = v[0];
    return true;
}

int hm_version(void) {
    return HOSTMALLOC_VERSION;
}

const char *hm_version_string(void) {
    return HOSTMALLOC_VERSION_STRING;
}

/* Apply one variable's value to `cfg`; false (and a message when `warn`) when unusable. */
static bool apply(const hm_option_t *o, const char *s, hm_config *cfg, bool secure, bool warn) {
    char *field = (char *)cfg + o->off;
    size_t v;
    double lv[3];
    int b;
    switch (o->kind) {
    case K_SIZE:
    case K_UINT:
    case K_U64:
        if (!_hm_parse_size(s, &v)) break;
        if (o->kind == K_UINT && v > o->max) {
            if (warn) {
                char why[48];
                _hm_snprintf(why, sizeof why, " (at most %u)", o->max);
                warn_value("out-of-range ", o->name, s, why);
            }
            return false;
        }
        if (o->secure == SEC_LOWER && secure && v > _hm_os_memory_limit()) {
            if (warn)
                warn_value("", o->name, s,
                           " in a setuid or setgid program: above the default limit");
            return false;
        }
        if (o->kind == K_SIZE) memcpy(field, &v, sizeof(size_t));
        if (o->kind == K_UINT) *(unsigned *)(void *)field = (unsigned)v;
        if (o->kind == K_U64) *(uint64_t *)(void *)field = v;
        return true;
    case K_BOOL:
        if ((b = parse_bool(s)) < 0) break;
        *(bool *)field = b != 0;
        return true;
    case K_STATS:
        b = word_is(s, "json") ? 2 : word_is(s, "text") ? 1 : parse_bool(s);
        if (b < 0) break;
        cfg->print_stats = b != 0;
        cfg->stats_json = b == 2;
        return true;
    case K_PATH:
        cfg->stats_path = *s != '\0' ? s : NULL; /* environ outlives every manager */
        return true;
    case K_COUNTS:
    case K_PROBS:
        if (!parse_levels(s, o->kind == K_COUNTS ? parse_count : parse_probability, lv)) break;
        for (int l = 0; l < 3; l++) {
            if (o->kind == K_COUNTS)
                cfg->fault_every[l] = (unsigned)lv[l];
            else
                cfg->fault_probability[l] = lv[l];
        }
        return true;
    default:
        break;
    }
    if (warn) warn_value("malformed ", o->name, s, "");
    return false;
}

static void config_defaults(hm_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->limit = 0;
    cfg->process_wait_ms = 100;
    cfg->low_pct = 90;
    cfg->neutral_pct = 80;
    cfg->high_pct = 50;
    cfg->notify_interval_ms = 100;
    cfg->fault_seed = 1;
    cfg->purge_delay_ms = 500;
    cfg->segment_cache = (size_t)256 << 20;
}

/* Edit distance of two short names (the rows stop at 40 characters). */
static unsigned distance(const char *a, size_t na, const char *b) {
    unsigned row[41];
    size_t nb = strlen(b);
    if (na > 40 || nb > 40) return 99;
    for (size_t j = 0; j <= nb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= na; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= nb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* Variables that the runtime adapters read (runtimes/, docs/RUNTIMES.md): not options of the
 * engine, and not misspelt ones either. */
static const char *const k_adapter_vars[] = {"HM_SQLITE_LEVEL", "HM_PYTHON_ALLOCATOR"};

static bool adapter_var(const char *e, size_t n) {
    for (size_t i = 0; i < sizeof k_adapter_vars / sizeof k_adapter_vars[0]; i++)
        if (strlen(k_adapter_vars[i]) == n && strncmp(k_adapter_vars[i], e, n) == 0) return true;
    return false;
}

/* One line for every HM_* variable of the environment that is not an option (a misspelt name
 * would otherwise be ignored without a word), with the closest name when one is near. */
static void check_unknown_names(void) {
    if (environ == NULL) return;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "HM_", 3) != 0) continue;
        const char *eq = strchr(*e, '=');
        size_t n = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
        if (adapter_var(*e, n)) continue;
        const char *best = NULL;
        unsigned best_d = 3; /* suggest within two edits */
        bool known = false;
        for (size_t i = 0; i < N_OPTIONS && !known; i++) {
            const char *name = k_options[i].name;
            if (strlen(name) == n && strncmp(name, *e, n) == 0) known = true;
            unsigned d = distance(*e, n, name);
            if (d < best_d) best_d = d, best = name;
        }
        if (known) continue;
        char name[64];
        size_t len = n < sizeof name - 1 ? n : sizeof name - 1;
        memcpy(name, *e, len);
        name[len] = '\0';
        char msg[192];
        size_t m =
            best != NULL
                ? _hm_snprintf(msg, sizeof msg,
                               "hostmalloc: unknown option %s (did you mean %s?)\n", name, best)
                : _hm_snprintf(msg, sizeof msg, "hostmalloc: unknown option %s (ignored)\n", name);
        _hm_write_stderr(msg, m);
    }
}

/* The HM_* environment over `cfg`: returns the mask of options taken from it; `*ignored` gets
 * those set but ignored in a setuid/setgid program. Messages only when `warn`. */
static uint32_t config_env(hm_config *cfg, bool warn, uint32_t *ignored) {
    bool secure = _hm_secure();
    uint32_t taken = 0;
    *ignored = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const hm_option_t *o = &k_options[i];
        const char *s = _hm_getenv(o->name);
        if (s == NULL || (*s == '\0' && o->kind != K_PATH)) continue;
        if (secure && o->secure == SEC_IGNORE) {
            *ignored |= 1u << i;
            if (warn) {
                char msg[160];
                size_t n = _hm_snprintf(msg, sizeof msg,
                                        "hostmalloc: ignoring %s in a setuid or setgid program\n",
                                        o->name);
                _hm_write_stderr(msg, n);
            }
            continue;
        }
        if (apply(o, s, cfg, secure, warn)) taken |= 1u << i;
    }
    if (warn) check_unknown_names();
    return taken;
}

void hm_config_init(hm_config *cfg) {
    if (cfg == NULL) return;
    config_defaults(cfg);
    uint32_t ignored;
    config_env(cfg, true, &ignored);
}

/* ---- HM_VERBOSE: the effective configuration ----------------------------------------------- */
static bool same_value(const hm_option_t *o, const hm_config *a, const hm_config *b) {
    const char *x = (const char *)a + o->off, *y = (const char *)b + o->off;
    switch (o->kind) {
    case K_SIZE:
        return memcmp(x, y, sizeof(size_t)) == 0;
    case K_UINT:
        return memcmp(x, y, sizeof(unsigned)) == 0;
    case K_U64:
        return memcmp(x, y, sizeof(uint64_t)) == 0;
    case K_BOOL:
        return *(const bool *)x == *(const bool *)y;
    case K_STATS:
        return a->print_stats == b->print_stats && a->stats_json == b->stats_json;
    case K_PATH:
        return a->stats_path == b->stats_path || (a->stats_path != NULL && b->stats_path != NULL &&
                                                  strcmp(a->stats_path, b->stats_path) == 0);
    case K_COUNTS:
        return memcmp(a->fault_every, b->fault_every, sizeof a->fault_every) == 0;
    default:
        for (int l = 0; l < 3; l++)
            if (a->fault_probability[l] != b->fault_probability[l]) return false;
        return true;
    }
}

/* A probability with up to six decimals ("0.25", "1"). */
static size_t put_probability(char *buf, size_t cap, double p) {
    uint64_t micro = (uint64_t)(p * 1e6 + 0.5);
    char frac[8];
    size_t n = _hm_snprintf(frac, sizeof frac, "%zu", (size_t)(1000000 + micro % 1000000));
    size_t keep = 6;
    while (keep > 0 && frac[keep] == '0') /* frac is "1dddddd": trim trailing zeros */
        keep--;
    (void)n;
    frac[keep + 1] = '\0';
    return keep > 0 ? _hm_snprintf(buf, cap, "%zu.%s", (size_t)(micro / 1000000), frac + 1)
                    : _hm_snprintf(buf, cap, "%zu", (size_t)(micro / 1000000));
}

static size_t format_value(const hm_option_t *o, const hm_config *c, size_t limit, char *buf,
                           size_t cap) {
    const char *f = (const char *)c + o->off;
    size_t v;
    switch (o->kind) {
    case K_SIZE:
        memcpy(&v, f, sizeof v);
        if (o->off == offsetof(hm_config, limit) && v == 0)
            return _hm_snprintf(buf, cap, "%H (%zu bytes)", limit, limit);
        return v < 1024 ? _hm_snprintf(buf, cap, "%zu", v)
                        : _hm_snprintf(buf, cap, "%H (%zu bytes)", v, v);
    case K_UINT:
        return _hm_snprintf(buf, cap, "%u%s", *(const unsigned *)(const void *)f, o->unit);
    case K_U64:
        return _hm_snprintf(buf, cap, "%zu", (size_t)c->fault_seed);
    case K_BOOL:
        return _hm_snprintf(buf, cap, "%s", *(const bool *)f ? "1" : "0");
    case K_STATS:
        return _hm_snprintf(buf, cap, "%s", !c->print_stats ? "0" : c->stats_json ? "json" : "1");
    case K_PATH:
        return _hm_snprintf(buf, cap, "%s", c->stats_path != NULL ? c->stats_path : "(stderr)");
    case K_COUNTS:
        return _hm_snprintf(buf, cap, "%u,%u,%u", c->fault_every[0], c->fault_every[1],
                            c->fault_every[2]);
    default: {
        char p[3][24];
        for (int l = 0; l < 3; l++)
            put_probability(p[l], sizeof p[l], c->fault_probability[l]);
        return _hm_snprintf(buf, cap, "%s,%s,%s", p[0], p[1], p[2]);
    }
    }
}

static size_t pad_to(char *buf, size_t cap, size_t n, size_t col) {
    if (n >= col && n + 1 < cap) buf[n++] = ' '; /* a long value: one space still */
    while (n < col && n + 1 < cap)
        buf[n++] = ' ';
    buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

void _hm_config_print(const hm_config *cfg, size_t limit, const void *mgr, bool is_default) {
    hm_config dflt, env;
    config_defaults(&dflt);
    config_defaults(&env);
    uint32_t ignored, taken = config_env(&env, false, &ignored);
    char who[96], line[384];
    _hm_report_who(who, sizeof who);
    size_t n = is_default
                   ? _hm_snprintf(line, sizeof line,
                                  "hostmalloc: configuration of the process manager, %s\n", who)
                   : _hm_snprintf(line, sizeof line,
                                  "hostmalloc: configuration of manager %p, %s\n", mgr, who);
    _hm_write_stderr(line, n);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const hm_option_t *o = &k_options[i];
        char value[224];
        format_value(o, cfg, limit, value, sizeof value);
        const char *from = "config";
        if ((taken & (1u << i)) && same_value(o, cfg, &env))
            from = "env";
        else if (same_value(o, cfg, &dflt))
            from = (ignored & (1u << i)) ? "default (env ignored: setuid/setgid program)"
                   : o->off == offsetof(hm_config, limit)
                       ? "default (cgroup limit, else physical memory)"
                       : "default";
        n = _hm_snprintf(line, sizeof line, "hostmalloc:   %s", o->name);
        n = pad_to(line, sizeof line, n, 36);
        n += _hm_snprintf(line + n, sizeof line - n, "%s", value);
        n = pad_to(line, sizeof line, n, 72);
        n += _hm_snprintf(line + n, sizeof line - n, "%s\n", from);
        _hm_write_stderr(line, n);
    }
}

/* Thresholds and reserves that contradict each other: the manager still works (it orders
 * the thresholds and clamps the ceilings), but not as the configuration reads. */
void _hm_config_check(const hm_config *c, size_t limit) {
    char msg[256];
    size_t n;
    if (c->low_pct == 0 || c->low_pct > 100) {
        n = _hm_snprintf(msg, sizeof msg,
                         "hostmalloc: low_pct (HM_LOW_PCT) %u is not within 1..100; using 90\n",
                         c->low_pct);
        _hm_write_stderr(msg, n);
    } else if (c->neutral_pct >= c->low_pct) {
        n = _hm_snprintf(msg, sizeof msg,
                         "hostmalloc: inconsistent thresholds: neutral_pct (HM_NEUTRAL_PCT) %u is "
                         "not below low_pct (HM_LOW_PCT) %u; using %u\n",
                         c->neutral_pct, c->low_pct, c->low_pct);
        _hm_write_stderr(msg, n);
    }
    if (c->high_pct >= c->neutral_pct && c->neutral_pct != 0) {
        n = _hm_snprintf(msg, sizeof msg,
                         "hostmalloc: inconsistent thresholds: high_pct (HM_HIGH_PCT) %u is not "
                         "below neutral_pct (HM_NEUTRAL_PCT) %u\n",
                         c->high_pct, c->neutral_pct);
        _hm_write_stderr(msg, n);
    }
    size_t reserves = c->reserve_appdomain + c->reserve_process;
    if (reserves < c->reserve_process || reserves >= limit) {
        n = _hm_snprintf(msg, sizeof msg,
                         "hostmalloc: the reserves (reserve_appdomain %zu + reserve_process %zu "
                         "bytes) leave nothing of the limit (%zu bytes) to task-critical "
                         "requests\n",
                         c->reserve_appdomain, c->reserve_process, limit);
        _hm_write_stderr(msg, n);
    }
}
