/* SPDX-License-Identifier: MIT */
/* hm_sqlite_preload.c: the preloadable shim of the SQLite adapter.
 *
 *   LD_PRELOAD=libhostmalloc-sqlite-preload.so sqlite3 my.db
 *
 * Its constructor runs before the program's main, so before the program can initialize
 * SQLite, and installs the adapter on a thread-safe instance of the process's shared manager
 * (the HM_* environment: HM_LIMIT and the rest; HM_SQLITE_LEVEL for the level). A program
 * that configured SQLite's allocator itself gets an error from its own sqlite3_config call,
 * and this shim says on stderr when it could not install. */
#include <stdio.h>

#include <sqlite3.h>

#include "hostmalloc/hm_sqlite.h"

__attribute__((constructor)) static void hm_sqlite_preload(void) {
    int rc = hm_sqlite_install_default();
    if (rc != SQLITE_OK)
        fprintf(stderr,
                "hostmalloc-sqlite: not installed: %s (HM_SQLITE_LEVEL must be task, "
                "appdomain or process)\n",
                sqlite3_errstr(rc));
}
