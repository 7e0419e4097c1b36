/* SPDX-License-Identifier: MIT */
/* hm-lua.c: a small stand-alone Lua 5.4 interpreter over the hostmalloc adapter.
 *
 * It is written against the plain Lua API and calls luaL_newstate: the build compiles it
 * with -DluaL_newstate=hm_luaL_newstate, which is how any unchanged embedding program is
 * moved onto IHostMalloc (docs/RUNTIMES.md). The budget and the rest come from the HM_*
 * environment (the process's shared manager).
 *
 *   hm-lua [-W] [-e code]... [-l module]... [script [args...] | -]
 *
 * Without a script (and without -e) it runs standard input. `arg` is set as the stand-alone
 * interpreter sets it (the script at 0, its arguments from 1). An error that escapes the
 * script is printed with a traceback on stderr and the exit status is 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *progname = "hm-lua";

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) { /* an error object that is not a string */
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s\n", progname, msg != NULL ? msg : "(error without a message)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

static int docall(lua_State *L, int nargs, int nres) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    return status;
}

/* Everything runs inside one protected call: a memory error while setting up is reported
 * like any other. */
static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    luaL_checkversion(L);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    int i = 1, ran = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(opt, "-W") == 0) {
            lua_warning(L, "@on", 0);
        } else if ((strcmp(opt, "-e") == 0 || strcmp(opt, "-l") == 0) && i + 1 < argc) {
            const char *val = argv[++i];
            int st;
            if (opt[1] == 'e') {
                st = luaL_loadbuffer(L, val, strlen(val), "=(command line)");
                if (st == LUA_OK) st = docall(L, 0, 0);
                ran = 1;
            } else {
                lua_getglobal(L, "require");
                lua_pushstring(L, val);
                st = docall(L, 1, 1);
                if (st == LUA_OK) lua_setglobal(L, val);
            }
            if (report(L, st) != LUA_OK) return 0;
        } else {
            fprintf(stderr, "usage: %s [-W] [-e code] [-l module] [script [args] | -]\n", progname);
            return 0;
        }
    }
    /* arg: the script at 0, its arguments from 1, what came before at negative indices */
    int script = i < argc ? i : -1;
    lua_createtable(L, argc, 1);
    for (int k = 0; k < argc; k++) {
        lua_pushstring(L, argv[k]);
        lua_rawseti(L, -2, k - (script >= 0 ? script : argc));
    }
    lua_setglobal(L, "arg");
    if (script < 0 && ran) {
        lua_pushboolean(L, 1);
        return 1;
    }
    const char *fname = script >= 0 ? argv[script] : "-";
    if (strcmp(fname, "-") == 0) fname = NULL; /* standard input */
    int st = luaL_loadfile(L, fname);
    if (st == LUA_OK) {
        int n = 0;
        for (int k = script + 1; script >= 0 && k < argc; k++, n++)
            lua_pushstring(L, argv[k]);
        luaL_checkstack(L, 1, "too many arguments");
        st = docall(L, n, LUA_MULTRET);
    }
    if (report(L, st) != LUA_OK) return 0;
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv) {
    if (argv[0] != NULL && argv[0][0] != '\0') progname = argv[0];
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
        return EXIT_FAILURE;
    }
    lua_gc(L, LUA_GCSTOP); /* pmain restarts it once the libraries are open */
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int ok = lua_toboolean(L, -1);
    report(L, status);
    lua_close(L);
    return (status == LUA_OK && ok) ? EXIT_SUCCESS : EXIT_FAILURE;
}
