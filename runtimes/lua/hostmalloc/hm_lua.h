/* SPDX-License-Identifier: MIT */
/* hostmalloc/hm_lua.h: Lua 5.4 states whose memory is an IHostMalloc instance's.
 *
 * A Lua state gets all its memory from one allocation function (lua_Alloc). This adapter
 * makes that function an IHostMalloc client: each state lives in the heap of one instance,
 * inside the budget of the instance's manager, each request made at the criticality level
 * the host's policy gives it; a refusal becomes Lua's own "not enough memory" error (after
 * Lua's emergency collection), and a Low notification of the manager becomes a full
 * collection at the state's next safe point (a hook, run on the Lua thread; the notifier
 * thread never calls Lua). docs/RUNTIMES.md, "Lua 5.4". */
#ifndef HOSTMALLOC_HM_LUA_H
#define HOSTMALLOC_HM_LUA_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include <hostmalloc/hostmalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which requests of a state are task-, AppDomain- or process-critical. Frees and shrinks are
 * never refused and have no level. */
#define HM_LUA_TAGS 16
typedef struct hm_lua_policy {
    /* Every request made while lua_newstate builds the state (the state itself, its
     * registry, its string table): without them there is no state. Default process. */
    EMemoryCriticalLevel create;
    /* A new block, by the tag Lua gives it: LUA_TSTRING, LUA_TTABLE, LUA_TFUNCTION (closures),
     * LUA_TUSERDATA, LUA_TTHREAD (coroutines), Lua's internal tags (upvalues 9, prototypes
     * 10), and 0 for blocks that are not objects (arrays of tables, stacks, buffers). Tags
     * at or above HM_LUA_TAGS use the last entry. Default task for all. */
    EMemoryCriticalLevel object[HM_LUA_TAGS];
    /* A block that grows (a table's array, a stack, a string buffer). Default task. */
    EMemoryCriticalLevel grow;
    /* A Low notification of the manager asks for a full collection at the next safe point
     * (a hook on the state's main thread). Default true. */
    bool collect_on_low;
} hm_lua_policy;

/* The default policy above. */
HM_API void hm_lua_policy_init(hm_lua_policy *policy);

/* A new state whose memory comes from `m` (a hostmalloc IHostMalloc instance; the state
 * holds a reference on it until lua_close), with `policy` (NULL: the defaults), and the
 * panic and warning functions luaL_newstate installs (warnings off until "@on"). NULL when
 * memory cannot be had or `m` is not a hostmalloc instance; nothing is then left behind.
 * The instance must not be used from other threads while the state runs unless it is
 * thread-safe (MALLOC_THREADSAFE). */
HM_API lua_State *hm_lua_newstate(IHostMalloc *m, const hm_lua_policy *policy);

/* The drop-in for luaL_newstate (same signature and behaviour): a state on a new instance of
 * the process's shared manager (hm_shared_host_memory_manager; created from the HM_*
 * environment if nothing made it before), with the default policy. An unchanged program
 * builds over it with -DluaL_newstate=hm_luaL_newstate. */
HM_API lua_State *hm_luaL_newstate(void);

/* Change the policy of a state made by this adapter. Call it on the thread that runs the
 * state. False when L is not such a state. */
HM_API bool hm_lua_set_policy(lua_State *L, const hm_lua_policy *policy);

/* The instance of a state made by this adapter (no reference added), or NULL. */
HM_API IHostMalloc *hm_lua_malloc(lua_State *L);

typedef struct hm_lua_stats {
    size_t requests[3];    /* new blocks and growths, by level */
    size_t refusals[3];    /* of those, refused (budget or fault injection), by level */
    size_t grown_in_place; /* growths that fitted the block's usable size */
    size_t low_notes;      /* Low notifications heard */
    size_t collections;    /* full collections run at a safe point for them */
} hm_lua_stats;

/* The counters of a state made by this adapter. False when L is not such a state. */
HM_API bool hm_lua_get_stats(lua_State *L, hm_lua_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* HOSTMALLOC_HM_LUA_H */
