/* SPDX-License-Identifier: MIT */
/* hm_lua.c: the Lua 5.4 adapter: a lua_Alloc over an IHostMalloc instance.
 *
 * New blocks go through the instance's Alloc (so its fault injection and statistics see
 * them), growth and shrinking through hm_realloc_level on the instance's heap (a growth that
 * fits the block's usable size stays in place; a shrink is never refused, as Lua requires),
 * frees through the instance's Free. Each request gets the level of the state's policy.
 * A refusal returns NULL to Lua, which collects and tries again once, then raises its own
 * "not enough memory" error: the adapter has nothing to undo.
 *
 * Low. The manager's notifier thread must never call into Lua: the listener only sets a
 * flag. The next allocation of the state (on the Lua thread) sees it and sets a hook, as a
 * signal handler would; the hook runs at the next safe point of the interpreter (a call, a
 * return or the next instruction), puts back whatever hook was there before and runs a full
 * collection. A state that no longer allocates has nothing to collect for.
 *
 * Life. Lua frees the block that holds the state last, at the very end of lua_close; when
 * that block goes, the adapter removes its listener and releases the instance. */
#include "hostmalloc/hm_lua.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

typedef struct hm_lua_ud {
    IHostMalloc *m;
    hm_heap *heap;
    hm_manager *mgr;
    lua_State *L;   /* the main thread, once lua_newstate returned */
    void *first;    /* the block of the state: freed last by lua_close */
    bool creating;  /* inside lua_newstate: hm_lua_newstate cleans up on failure */
    bool closed;    /* the state's block is gone */
    bool listening; /* a listener of mgr */
    bool armed;     /* our hook is set */
    bool warn_on;   /* warnings shown ("@on") */
    bool warn_cont; /* inside a multi-part warning */
    hm_lua_policy policy;
    _Atomic(int) low_pending; /* set by the notifier thread, taken by the Lua thread */
    _Atomic(size_t) low_notes;
    /* the hook that was there when ours was set */
    lua_Hook old_hook;
    int old_mask, old_count;
    hm_lua_stats stats; /* Lua thread only (low_notes apart) */
} hm_lua_ud;

void hm_lua_policy_init(hm_lua_policy *policy) {
    policy->create = eProcessCritical;
    for (int i = 0; i < HM_LUA_TAGS; i++)
        policy->object[i] = eTaskCritical;
    policy->grow = eTaskCritical;
    policy->collect_on_low = true;
}

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

static bool policy_ok(const hm_lua_policy *p) {
    bool ok = (unsigned)p->create <= eProcessCritical && (unsigned)p->grow <= eProcessCritical;
    for (int i = 0; i < HM_LUA_TAGS; i++)
        ok = ok && (unsigned)p->object[i] <= eProcessCritical;
    return ok;
}

static hm_lua_ud *ud_of(lua_State *L) {
    void *ud = NULL;
    if (L == NULL || lua_getallocf(L, &ud) != lua_alloc) return NULL;
    return ud;
}

/* ---- Low: a hook at the next safe point ------------------------------------------------------ */
static void on_notify(void *arg, EMemoryAvailable level) {
    hm_lua_ud *ud = arg; /* notifier thread: flags only */
    if (level != eMemoryAvailableLow) return;
    atomic_fetch_add_explicit(&ud->low_notes, 1, memory_order_relaxed);
    atomic_store_explicit(&ud->low_pending, 1, memory_order_release);
}

static void gc_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    hm_lua_ud *ud = ud_of(L);
    if (ud == NULL) return;
    /* put back what was there (a coroutine made while we were armed inherited our hook: it
     * gets the same) */
    lua_sethook(L, ud->old_hook, ud->old_mask, ud->old_count);
    if (!ud->armed) return;
    ud->armed = false;
    /* -1: Lua's collector cannot run now (a finalizer is running): ask again later */
    if (lua_gc(L, LUA_GCCOLLECT) == 0)
        ud->stats.collections++;
    else
        atomic_store_explicit(&ud->low_pending, 1, memory_order_relaxed);
}

/* On the Lua thread, inside an allocation: set the hook (what a signal handler may do). */
static void arm(hm_lua_ud *ud) {
    if (!atomic_exchange_explicit(&ud->low_pending, 0, memory_order_acquire)) return;
    if (ud->armed || !ud->policy.collect_on_low) return;
    lua_State *L = ud->L;
    if (lua_gethook(L) != gc_hook) {
        ud->old_hook = lua_gethook(L);
        ud->old_mask = lua_gethookmask(L);
        ud->old_count = lua_gethookcount(L);
    }
    ud->armed = true;
    lua_sethook(L, gc_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* ---- the allocation function ------------------------------------------------------------------
 */
static void finish(hm_lua_ud *ud) {
    if (ud->listening) hm_manager_remove_listener(ud->mgr, on_notify, ud);
    ud->listening = false;
    IHostMalloc_Release(ud->m);
    ud->m = NULL;
    free(ud);
}

static void *refused(hm_lua_ud *ud, int level) {
    ud->stats.refusals[level]++;
    return NULL;
}

static void *lua_alloc(void *arg, void *ptr, size_t osize, size_t nsize) {
    hm_lua_ud *ud = arg;
    if (nsize == 0) {
        if (ptr == NULL) return NULL;
        /* the state's blocks are the instance's: anything else is a bug worth stopping on */
        if (FAILED(IHostMalloc_Free(ud->m, ptr))) abort();
        if (ptr == ud->first) {
            ud->closed = true;
            if (!ud->creating) finish(ud);
        }
        return NULL;
    }
    if (__builtin_expect(!!(atomic_load_explicit(&ud->low_pending, memory_order_relaxed)), 0) &&
        ud->L != NULL && !ud->closed)
        arm(ud);
    if (ptr == NULL) {
        /* a new block: osize is the tag of the object (0: not an object) */
        int level = ud->creating ? ud->policy.create
                                 : ud->policy.object[osize < HM_LUA_TAGS ? osize : HM_LUA_TAGS - 1];
        ud->stats.requests[level]++;
        void *p;
        if (FAILED(IHostMalloc_Alloc(ud->m, nsize, (EMemoryCriticalLevel)level, &p)))
            return refused(ud, level);
        if (ud->first == NULL) ud->first = p;
        return p;
    }
    if (nsize <= osize) /* never refused */
        return hm_realloc_level(ud->heap, ptr, nsize, eProcessCritical);
    int level = ud->creating ? ud->policy.create : ud->policy.grow;
    ud->stats.requests[level]++;
    void *p = hm_realloc_level(ud->heap, ptr, nsize, (EMemoryCriticalLevel)level);
    if (p == NULL) return refused(ud, level);
    if (p == ptr) ud->stats.grown_in_place++;
    return p;
}

/* ---- panic and warnings, as luaL_newstate sets them ------------------------------------------ */
static int on_panic(lua_State *L) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    fprintf(stderr, "PANIC: a Lua error outside any protected call (%s)\n",
            msg != NULL ? msg : "error object is not a string");
    fflush(stderr);
    return 0; /* Lua aborts */
}

/* Warnings are off until "@on"; "@on"/"@off" switch them; a message may come in pieces
 * (tocont), shown on one line after "Lua warning: ". */
static void on_warn(void *arg, const char *msg, int tocont) {
    hm_lua_ud *ud = arg;
    if (!ud->warn_cont && !tocont && msg[0] == '@') { /* a control message */
        if (strcmp(msg, "@on") == 0) ud->warn_on = true;
        if (strcmp(msg, "@off") == 0) ud->warn_on = false;
        return;
    }
    if (ud->warn_on) {
        if (!ud->warn_cont) fputs("Lua warning: ", stderr);
        fputs(msg, stderr);
        if (!tocont) fputs("\n", stderr);
        fflush(stderr);
    }
    ud->warn_cont = tocont != 0;
}

/* ---- states ------------------------------------------------------------------------------------
 */
lua_State *hm_lua_newstate(IHostMalloc *m, const hm_lua_policy *policy) {
    hm_heap *heap = hm_malloc_heap(m);
    if (heap == NULL || (policy != NULL && !policy_ok(policy))) return NULL;
    hm_lua_ud *ud = calloc(1, sizeof *ud);
    if (ud == NULL) return NULL;
    ud->m = m;
    IHostMalloc_AddRef(m);
    ud->heap = heap;
    ud->mgr = hm_heap_manager(heap);
    if (policy != NULL)
        ud->policy = *policy;
    else
        hm_lua_policy_init(&ud->policy);
    atomic_init(&ud->low_pending, 0);
    atomic_init(&ud->low_notes, 0);
    ud->creating = true;
    lua_State *L = lua_newstate(lua_alloc, ud);
    ud->creating = false;
    if (L == NULL) { /* lua_newstate freed whatever it had made */
        IHostMalloc_Release(ud->m);
        free(ud);
        return NULL;
    }
    ud->L = L;
    lua_atpanic(L, on_panic);
    lua_setwarnf(L, on_warn, ud);
    /* without a listener the state still works; it only misses Low */
    ud->listening = hm_manager_add_listener(ud->mgr, on_notify, ud);
    return L;
}

lua_State *hm_luaL_newstate(void) {
    IHostMemoryManager *mm;
    if (FAILED(hm_shared_host_memory_manager(NULL, &mm))) return NULL;
    IHostMalloc *m;
    HRESULT hr = IHostMemoryManager_CreateMalloc(mm, 0, &m);
    IHostMemoryManager_Release(mm); /* the instance holds the manager */
    if (FAILED(hr)) return NULL;
    lua_State *L = hm_lua_newstate(m, NULL);
    IHostMalloc_Release(m); /* the state holds the instance */
    return L;
}

bool hm_lua_set_policy(lua_State *L, const hm_lua_policy *policy) {
    hm_lua_ud *ud = ud_of(L);
    if (ud == NULL || policy == NULL || !policy_ok(policy)) return false;
    ud->policy = *policy;
    return true;
}

IHostMalloc *hm_lua_malloc(lua_State *L) {
    hm_lua_ud *ud = ud_of(L);
    return ud != NULL ? ud->m : NULL;
}

bool hm_lua_get_stats(lua_State *L, hm_lua_stats *out) {
    hm_lua_ud *ud = ud_of(L);
    if (ud == NULL || out == NULL) return false;
    *out = ud->stats;
    out->low_notes = atomic_load_explicit(&ud->low_notes, memory_order_relaxed);
    return true;
}
