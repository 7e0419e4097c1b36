/* SPDX-License-Identifier: MIT */
/* config/config.h: the HM_* options, the one header of the config layer. hm_config_init
 * (public) fills a configuration from the defaults and the environment; the functions below
 * say what is wrong with one and print it. Below: os (the memory limit, for the setuid rule
 * that HM_LIMIT may only go down) and base. */
#ifndef HM_CONFIG_H
#define HM_CONFIG_H

#include "os/os.h"

/* Parse "123", "64K", "512M", "2G" (an optional "iB" or "B" after the unit) into *out. False on
 * a malformed value or one that overflows. */
bool _hm_parse_size(const char *s, size_t *out);
/* HM_VERBOSE: the effective configuration of a manager, one line an option, on stderr. */
void _hm_config_print(const hm_config *cfg, size_t limit, const void *mgr, bool is_default);
/* One `hostmalloc: ` line on stderr for each inconsistent threshold or reserve. */
void _hm_config_check(const hm_config *cfg, size_t limit);

#endif /* HM_CONFIG_H */
