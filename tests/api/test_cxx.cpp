/* SPDX-License-Identifier: MIT */
// tests/api/test_cxx.cpp: <hostmalloc/hosting.h> in its C++ form (no CINTERFACE).
//
// A C++ host sees IHostMalloc, IHostMemoryManager and ICLRMemoryNotificationCallback as
// structs of pure virtual methods, while the library (C) builds and calls them as vtables of
// function pointers. These tests check that the two agree slot by slot and argument by argument,
// in both directions (C++ calling objects made in C, C calling objects made in C++; see
// test_cxx_peer.h), and then do what a C++ host does: call the library's own objects as C++
// objects, and register a C++ class as the memory notification callback.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_cxx_peer.h"
// cmocka.h declares its C functions without extern "C"
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}
#include "test_util.h"

#ifdef CINTERFACE
#error "this test is the C++ form; test_cxx_cinterface.cpp is the CINTERFACE one"
#endif

// ---- what the C++ form is, at compile time ---------------------------------------------------
static_assert(std::is_abstract<IHostMalloc>::value && std::is_abstract<IHostMemoryManager>::value &&
                  std::is_abstract<ICLRMemoryNotificationCallback>::value,
              "the interfaces are abstract classes");
static_assert(std::is_base_of<IUnknown, IHostMalloc>::value &&
                  std::is_base_of<IUnknown, IHostMemoryManager>::value &&
                  std::is_base_of<IUnknown, ICLRMemoryNotificationCallback>::value,
              "every interface derives from IUnknown");
static_assert(!std::has_virtual_destructor<IUnknown>::value &&
                  !std::has_virtual_destructor<IHostMalloc>::value &&
                  !std::has_virtual_destructor<IHostMemoryManager>::value &&
                  !std::has_virtual_destructor<ICLRMemoryNotificationCallback>::value,
              "a virtual destructor would take vtable slots the C form does not have");
static_assert(!std::is_destructible<IHostMalloc>::value,
              "the destructor is protected: no delete through an interface pointer");
static_assert(sizeof(IHostMalloc) == sizeof(void *) && sizeof(IUnknown) == sizeof(void *),
              "an interface object is its vtable pointer");
static_assert(std::is_same<decltype(hm_create_host_memory_manager),
                           HRESULT(const hm_config *, IHostMemoryManager **)>::value,
              "the native API speaks the same interface types");

#define U(x) ((uintptr_t)(x))

// QueryInterface, AddRef and Release (slots 0 to 2) of a C++ peer object: each logs the whole
// object and returns base + slot.
#define PEER_CXX_IUNKNOWN(base)                                                                    \
    HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppv) override {                   \
        peer_log_add(0, this, 2, U(&riid), U(ppv));                                                \
        return (base);                                                                             \
    }                                                                                              \
    ULONG STDMETHODCALLTYPE AddRef() override {                                                    \
        peer_log_add(1, this, 0);                                                                  \
        return (base) + 1;                                                                         \
    }                                                                                              \
    ULONG STDMETHODCALLTYPE Release() override {                                                   \
        peer_log_add(2, this, 0);                                                                  \
        return (base) + 2;                                                                         \
    }

// ---- the log of peer calls -------------------------------------------------------------------
struct Expect {
    int slot;
    std::vector<uintptr_t> args;
};

// The calls of peer_call_* (and of the C++ calls below, which pass the same arguments).
static std::vector<Expect> malloc_calls() {
    return {
        {0, {U(&IID_IHostMalloc), U(&peer_out)}},
        {1, {}},
        {2, {}},
        {3, {PEER_SIZE, eAppDomainCritical, U(&peer_out)}},
        {4, {PEER_SIZE, eProcessCritical, U(peer_file), PEER_LINE, U(&peer_out)}},
        {5, {U(peer_file)}},
    };
}

static std::vector<Expect> manager_calls(ICLRMemoryNotificationCallback *cb) {
    return {
        {0, {U(&IID_IHostMemoryManager), U(&peer_out)}},
        {1, {}},
        {2, {}},
        {3, {MALLOC_EXECUTABLE, U(&peer_malloc_out)}},
        {4,
         {U(peer_file), PEER_SIZE2, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE, eTaskCritical,
          U(&peer_out)}},
        {5, {U(peer_file), PEER_SIZE2, MEM_RELEASE}},
        {6, {U(peer_file), U(&peer_mbi), sizeof(peer_mbi), U(&peer_size_out)}},
        {7, {U(peer_file), PEER_SIZE2, PAGE_READONLY, U(&peer_dword_out)}},
        {8, {U(&peer_dword_out), U(&peer_size_out)}},
        {9, {U(cb)}},
        {10, {U(peer_file), PEER_SIZE}},
        {11, {U(peer_file), PEER_SIZE2}},
        {12, {U(peer_file)}},
    };
}

static std::vector<Expect> callback_calls() {
    return {
        {0, {U(&IID_ICLRMemoryNotificationCallback), U(&peer_out)}},
        {1, {}},
        {2, {}},
        {3, {eMemoryAvailableNeutral}},
    };
}

// The log holds exactly `calls`, each made on `self`; call i returned base + slot, or, for the
// IUnknown slots 0-2, unknown_base + slot (a C++ object shares them between its interfaces).
static void check_log(const char *what, const std::vector<Expect> &calls, const void *self,
                      const int64_t *results, int64_t base, int64_t unknown_base) {
    if (peer_log_len != (int)calls.size())
        fail_msg("%s: %d calls logged, expected %zu", what, peer_log_len, calls.size());
    for (size_t i = 0; i < calls.size(); i++) {
        const peer_call &c = peer_log[i];
        const Expect &e = calls[i];
        if (c.slot != e.slot)
            fail_msg("%s: call %zu ran slot %d, expected slot %d", what, i, c.slot, e.slot);
        if (c.self != self) fail_msg("%s: call %zu (slot %d) got another object", what, i, c.slot);
        if (c.nargs != (int)e.args.size())
            fail_msg("%s: slot %d logged %d arguments, expected %zu", what, c.slot, c.nargs,
                     e.args.size());
        for (size_t a = 0; a < e.args.size(); a++)
            if (c.args[a] != e.args[a])
                fail_msg("%s: slot %d argument %zu is %#lx, expected %#lx", what, c.slot, a,
                         (unsigned long)c.args[a], (unsigned long)e.args[a]);
        int64_t want = (e.slot < 3 ? unknown_base : base) + e.slot;
        if (results[i] != want)
            fail_msg("%s: slot %d returned %#llx, expected %#llx", what, e.slot,
                     (unsigned long long)results[i], (unsigned long long)want);
    }
}

// ---- C++ calling objects made in C -----------------------------------------------------------
// Empties the log, then calls slots 0 to 2 of `o` as C++ methods (results in r[0..2]).
template <class I> static void cxx_unknown_calls(I *o, const IID &iid, int64_t *r) {
    peer_log_reset();
    r[0] = o->QueryInterface(iid, &peer_out);
    r[1] = o->AddRef();
    r[2] = o->Release();
}

static void test_cxx_calls_c_malloc(void **state) {
    (void)state;
    IHostMalloc *o = peer_c_malloc();
    int64_t r[6];
    cxx_unknown_calls(o, IID_IHostMalloc, r);
    r[3] = o->Alloc(PEER_SIZE, eAppDomainCritical, &peer_out);
    r[4] = o->DebugAlloc(PEER_SIZE, eProcessCritical, peer_file, PEER_LINE, &peer_out);
    r[5] = o->Free(peer_file);
    check_log("C++ -> C IHostMalloc", malloc_calls(), o, r, 0x100, 0x100);

    // the call macros in the C++ form are the same calls
    peer_log_reset();
    r[0] = IHostMalloc_QueryInterface(o, IID_IHostMalloc, &peer_out);
    PEER_MALLOC_MACRO_CALLS(o, r);
    check_log("C++ macros -> C IHostMalloc", malloc_calls(), o, r, 0x100, 0x100);
}

static void test_cxx_calls_c_manager(void **state) {
    (void)state;
    IHostMemoryManager *o = peer_c_manager();
    ICLRMemoryNotificationCallback *cb = peer_c_callback();
    int64_t r[13];
    cxx_unknown_calls(o, IID_IHostMemoryManager, r);
    r[3] = o->CreateMalloc(MALLOC_EXECUTABLE, &peer_malloc_out);
    r[4] = o->VirtualAlloc(peer_file, PEER_SIZE2, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE,
                           eTaskCritical, &peer_out);
    r[5] = o->VirtualFree(peer_file, PEER_SIZE2, MEM_RELEASE);
    r[6] = o->VirtualQuery(peer_file, &peer_mbi, sizeof(peer_mbi), &peer_size_out);
    r[7] = o->VirtualProtect(peer_file, PEER_SIZE2, PAGE_READONLY, &peer_dword_out);
    r[8] = o->GetMemoryLoad(&peer_dword_out, &peer_size_out);
    r[9] = o->RegisterMemoryNotificationCallback(cb);
    r[10] = o->NeedsVirtualAddressSpace(peer_file, PEER_SIZE);
    r[11] = o->AcquiredVirtualAddressSpace(peer_file, PEER_SIZE2);
    r[12] = o->ReleasedVirtualAddressSpace(peer_file);
    check_log("C++ -> C IHostMemoryManager", manager_calls(cb), o, r, 0x200, 0x200);

    peer_log_reset();
    r[0] = IHostMemoryManager_QueryInterface(o, IID_IHostMemoryManager, &peer_out);
    PEER_MANAGER_MACRO_CALLS(o, cb, r);
    check_log("C++ macros -> C IHostMemoryManager", manager_calls(cb), o, r, 0x200, 0x200);
}

static void test_cxx_calls_c_callback(void **state) {
    (void)state;
    ICLRMemoryNotificationCallback *o = peer_c_callback();
    int64_t r[4];
    cxx_unknown_calls(o, IID_ICLRMemoryNotificationCallback, r);
    r[3] = o->OnMemoryNotification(eMemoryAvailableNeutral);
    check_log("C++ -> C ICLRMemoryNotificationCallback", callback_calls(), o, r, 0x300, 0x300);

    peer_log_reset();
    r[0] = ICLRMemoryNotificationCallback_QueryInterface(o, IID_ICLRMemoryNotificationCallback,
                                                         &peer_out);
    PEER_CALLBACK_MACRO_CALLS(o, r);
    check_log("C++ macros -> C ICLRMemoryNotificationCallback", callback_calls(), o, r, 0x300,
              0x300);
}

// ---- C calling objects made in C++ -----------------------------------------------------------
// One class implementing two interfaces, as COM objects often do: IHostMalloc is its primary
// base (at offset 0), ICLRMemoryNotificationCallback a second base further in, reached through
// the compiler's this-adjusting thunks. Every method logs the whole object.
class CxxBoth final : public IHostMalloc, public ICLRMemoryNotificationCallback {
  public:
    PEER_CXX_IUNKNOWN(0x400)
    HRESULT STDMETHODCALLTYPE Alloc(SIZE_T cb, EMemoryCriticalLevel level, void **pp) override {
        peer_log_add(3, this, 3, U(cb), U(level), U(pp));
        return 0x403;
    }
    HRESULT STDMETHODCALLTYPE DebugAlloc(SIZE_T cb, EMemoryCriticalLevel level, char *file,
                                         int line, void **pp) override {
        peer_log_add(4, this, 5, U(cb), U(level), U(file), U(line), U(pp));
        return 0x404;
    }
    HRESULT STDMETHODCALLTYPE Free(void *p) override {
        peer_log_add(5, this, 1, U(p));
        return 0x405;
    }
    HRESULT STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable level) override {
        peer_log_add(3, this, 1, U(level));
        return 0x603;
    }
};

// An implementation may have a virtual destructor: its slots come after the interface's.
class CxxManager : public IHostMemoryManager {
  public:
    virtual ~CxxManager() {}
    PEER_CXX_IUNKNOWN(0x500)
    HRESULT STDMETHODCALLTYPE CreateMalloc(DWORD type, IHostMalloc **pp) override {
        peer_log_add(3, this, 2, U(type), U(pp));
        return 0x503;
    }
    HRESULT STDMETHODCALLTYPE VirtualAlloc(void *a, SIZE_T s, DWORD ty, DWORD pr,
                                           EMemoryCriticalLevel l, void **pp) override {
        peer_log_add(4, this, 6, U(a), U(s), U(ty), U(pr), U(l), U(pp));
        return 0x504;
    }
    HRESULT STDMETHODCALLTYPE VirtualFree(LPVOID a, SIZE_T s, DWORD ty) override {
        peer_log_add(5, this, 3, U(a), U(s), U(ty));
        return 0x505;
    }
    HRESULT STDMETHODCALLTYPE VirtualQuery(void *a, void *b, SIZE_T len, SIZE_T *r) override {
        peer_log_add(6, this, 4, U(a), U(b), U(len), U(r));
        return 0x506;
    }
    HRESULT STDMETHODCALLTYPE VirtualProtect(void *a, SIZE_T s, DWORD pr, DWORD *old) override {
        peer_log_add(7, this, 4, U(a), U(s), U(pr), U(old));
        return 0x507;
    }
    HRESULT STDMETHODCALLTYPE GetMemoryLoad(DWORD *l, SIZE_T *av) override {
        peer_log_add(8, this, 2, U(l), U(av));
        return 0x508;
    }
    HRESULT STDMETHODCALLTYPE
    RegisterMemoryNotificationCallback(ICLRMemoryNotificationCallback *cb) override {
        peer_log_add(9, this, 1, U(cb));
        return 0x509;
    }
    HRESULT STDMETHODCALLTYPE NeedsVirtualAddressSpace(LPVOID a, SIZE_T s) override {
        peer_log_add(10, this, 2, U(a), U(s));
        return 0x50A;
    }
    HRESULT STDMETHODCALLTYPE AcquiredVirtualAddressSpace(LPVOID a, SIZE_T s) override {
        peer_log_add(11, this, 2, U(a), U(s));
        return 0x50B;
    }
    HRESULT STDMETHODCALLTYPE ReleasedVirtualAddressSpace(LPVOID a) override {
        peer_log_add(12, this, 1, U(a));
        return 0x50C;
    }
};

static void test_c_calls_cxx_malloc(void **state) {
    (void)state;
    CxxBoth obj;
    int64_t r[6];
    peer_log_reset();
    peer_call_malloc(&obj, r);
    check_log("C -> C++ IHostMalloc", malloc_calls(), &obj, r, 0x400, 0x400);
}

static void test_c_calls_cxx_second_base(void **state) {
    (void)state;
    CxxBoth obj;
    ICLRMemoryNotificationCallback *cb = &obj;
    // the second base is not at the start of the object: C gets the adjusted pointer
    assert_ptr_not_equal((void *)cb, (void *)&obj);
    int64_t r[4];
    peer_log_reset();
    peer_call_callback(cb, r);
    check_log("C -> C++ ICLRMemoryNotificationCallback (second base)", callback_calls(), &obj, r,
              0x600, 0x400);
}

static void test_c_calls_cxx_manager(void **state) {
    (void)state;
    CxxManager obj;
    CxxBoth other;
    int64_t r[13];
    peer_log_reset();
    peer_call_manager(&obj, &other, r);
    check_log("C -> C++ IHostMemoryManager", manager_calls(&other), &obj, r, 0x500, 0x500);
}

// ---- the library's objects, called as C++ objects --------------------------------------------
static void test_library_objects(void **state) {
    (void)state;
    IHostMemoryManager *mgr = nullptr;
    assert_hr(hm_create_host_memory_manager(nullptr, &mgr), S_OK);
    assert_non_null(mgr);

    IHostMalloc *heap = nullptr;
    assert_hr(mgr->CreateMalloc(MALLOC_THREADSAFE, &heap), S_OK);
    assert_non_null(heap);
    IHostMalloc *bad = heap;
    assert_hr(mgr->CreateMalloc(0x80, &bad), E_INVALIDARG);
    assert_null(bad);

    void *p = nullptr;
    assert_hr(heap->Alloc(16, eTaskCritical, &p), S_OK);
    assert_non_null(p);
    assert_true(tu_is_aligned(p, 16));
    assert_true(hm_usable_size(p) >= 16);
    tu_fill(p, 16, 1);
    char file[] = __FILE__;
    void *d = nullptr;
    assert_hr(heap->DebugAlloc(100, eAppDomainCritical, file, __LINE__, &d), S_OK);
    assert_non_null(d);
    tu_fill(d, 100, 2);
    assert_int_equal(tu_check(p, 16, 1), 16);
    assert_int_equal(tu_check(d, 100, 2), 100);

    // errors come back as HRESULTs through the C++ calls as well
    void *q = p;
    assert_hr(heap->Alloc(16, (EMemoryCriticalLevel)3, &q), E_INVALIDARG);
    assert_null(q);
    assert_hr(heap->Alloc(16, eTaskCritical, nullptr), E_POINTER);
    int local = 0;
    assert_hr(heap->Free(&local), HOST_E_INVALIDOPERATION);
    assert_hr(heap->Free(static_cast<char *>(p) + 1), HOST_E_INVALIDOPERATION);
    assert_hr(heap->Free(nullptr), S_OK);

    // reference counting and QueryInterface; REFIID is a reference in C++
    void *pv = nullptr;
    assert_hr(heap->QueryInterface(IID_IHostMalloc, &pv), S_OK);
    assert_ptr_equal(pv, heap);
    assert_int_equal(heap->AddRef(), 3);
    assert_int_equal(heap->Release(), 2);
    assert_int_equal(static_cast<IUnknown *>(pv)->Release(), 1);
    pv = heap;
    assert_hr(heap->QueryInterface(IID_IHostMemoryManager, &pv), E_NOINTERFACE);
    assert_null(pv);
    assert_hr(mgr->QueryInterface(IID_IUnknown, &pv), S_OK);
    assert_ptr_equal(pv, mgr);
    IHostMemoryManager_Release(mgr);

    // the call macros too
    void *m = nullptr;
    assert_hr(IHostMalloc_Alloc(heap, 200, eProcessCritical, &m), S_OK);
    assert_non_null(m);
    assert_hr(IHostMalloc_Free(heap, m), S_OK);

    assert_hr(heap->Free(d), S_OK);
    assert_hr(heap->Free(p), S_OK);

    // the VirtualAlloc family
    const SIZE_T size = 64 * 1024;
    void *v = nullptr;
    assert_hr(mgr->VirtualAlloc(nullptr, size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE,
                                eTaskCritical, &v),
              S_OK);
    assert_non_null(v);
    tu_fill(v, size, 3);
    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T got = 0;
    assert_hr(mgr->VirtualQuery(v, &mbi, sizeof(mbi), &got), S_OK);
    assert_int_equal(got, sizeof(mbi));
    assert_ptr_equal(mbi.BaseAddress, v);
    assert_int_equal(mbi.State, MEM_COMMIT);
    assert_int_equal(mbi.Protect, PAGE_READWRITE);
    DWORD old = 0;
    assert_hr(mgr->VirtualProtect(v, size, PAGE_READONLY, &old), S_OK);
    assert_int_equal(old, PAGE_READWRITE);
    assert_int_equal(tu_check(v, size, 3), size);
    assert_hr(mgr->VirtualFree(v, 0, MEM_RELEASE), S_OK);
    assert_hr(mgr->VirtualFree(&local, 0, MEM_RELEASE), HOST_E_INVALIDOPERATION);

    DWORD load = 101;
    SIZE_T avail = 0;
    assert_hr(mgr->GetMemoryLoad(&load, &avail), S_OK);
    assert_true(load <= 100);
    assert_true(avail > 0);
    assert_hr(mgr->AcquiredVirtualAddressSpace(&local, 4096), S_OK);
    assert_hr(mgr->ReleasedVirtualAddressSpace(&local), S_OK);

    // the instance holds a reference on its manager: the manager goes with the last of them
    assert_int_equal(heap->Release(), 0);
    assert_int_equal(mgr->Release(), 0);
}

// ---- a C++ ICLRMemoryNotificationCallback, called by the library -----------------------------
class PressureLog final : public ICLRMemoryNotificationCallback {
  public:
    HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppv) override {
        if (ppv == nullptr) return E_POINTER;
        if (same_iid(riid, IID_IUnknown) || same_iid(riid, IID_ICLRMemoryNotificationCallback)) {
            AddRef();
            *ppv = static_cast<ICLRMemoryNotificationCallback *>(this);
            return S_OK;
        }
        *ppv = nullptr;
        return E_NOINTERFACE;
    }
    // The object lives on the test's stack: the count only tells the test what the library
    // holds.
    ULONG STDMETHODCALLTYPE AddRef() override {
        return ++refs;
    }
    ULONG STDMETHODCALLTYPE Release() override {
        return --refs;
    }
    HRESULT STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable level) override {
        std::lock_guard<std::mutex> hold(lock);
        levels.push_back(level);
        threads.push_back(std::this_thread::get_id());
        changed.notify_all();
        return S_OK;
    }

    // Wait (at most `ms`) for a notification of `level`; its index, or -1.
    int wait_for(EMemoryAvailable level, int ms) {
        std::unique_lock<std::mutex> hold(lock);
        int found = -1;
        changed.wait_for(hold, std::chrono::milliseconds(ms), [&] {
            for (size_t i = 0; i < levels.size(); i++)
                if (levels[i] == level) found = (int)i;
            return found >= 0;
        });
        return found;
    }
    std::thread::id thread_of(int i) {
        std::lock_guard<std::mutex> hold(lock);
        return threads[(size_t)i];
    }

    std::atomic<ULONG> refs{1};

  private:
    static bool same_iid(const IID &a, const IID &b) {
        return memcmp(&a, &b, sizeof(IID)) == 0;
    }
    std::mutex lock;
    std::condition_variable changed;
    std::vector<EMemoryAvailable> levels;
    std::vector<std::thread::id> threads;
};

static void test_cxx_callback_registered(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(32 * TU_MIB);
    IHostMemoryManager *mgr = nullptr;
    assert_hr(hm_create_host_memory_manager(&cfg, &mgr), S_OK);
    PressureLog log;
    assert_hr(mgr->RegisterMemoryNotificationCallback(&log), S_OK);
    assert_int_equal(log.refs.load(), 2); // the library AddRef'd it through its C vtable

    // fill the budget past low_pct: the manager's notifier thread says Low
    IHostMalloc *heap = nullptr;
    assert_hr(mgr->CreateMalloc(0, &heap), S_OK);
    std::vector<void *> blocks;
    DWORD load = 0;
    SIZE_T avail = 0;
    while (load < 91 && blocks.size() < 64) {
        void *p = nullptr;
        assert_hr(heap->Alloc(TU_MIB, eTaskCritical, &p), S_OK);
        blocks.push_back(p);
        assert_hr(mgr->GetMemoryLoad(&load, &avail), S_OK);
    }
    assert_true(load >= 91);
    int low = log.wait_for(eMemoryAvailableLow, 5000);
    if (low < 0) fail_msg("no Low notification at %u%% load within 5 s", (unsigned)load);
    assert_true(log.thread_of(low) != std::this_thread::get_id());

    for (void *p : blocks)
        assert_hr(heap->Free(p), S_OK);
    assert_int_equal(heap->Release(), 0);
    // the manager's last Release releases the callback (through its C vtable)
    assert_int_equal(mgr->Release(), 0);
    assert_int_equal(log.refs.load(), 1);
}

static void test_cxx_callback_unregistered(void **state) {
    (void)state;
    IHostMemoryManager *mgr = nullptr;
    assert_hr(hm_create_host_memory_manager(nullptr, &mgr), S_OK);
    PressureLog a, b;
    assert_hr(mgr->RegisterMemoryNotificationCallback(&a), S_OK);
    assert_hr(mgr->RegisterMemoryNotificationCallback(&b), S_OK); // replaces a
    assert_int_equal(a.refs.load(), 1);
    assert_int_equal(b.refs.load(), 2);
    assert_hr(mgr->RegisterMemoryNotificationCallback(nullptr), S_OK);
    assert_int_equal(b.refs.load(), 1);
    assert_int_equal(mgr->Release(), 0);
    assert_int_equal(a.refs.load(), 1);
    assert_int_equal(b.refs.load(), 1);
}

TU_TEST_MAIN(test_cxx_calls_c_malloc, test_cxx_calls_c_manager, test_cxx_calls_c_callback,
             test_c_calls_cxx_malloc, test_c_calls_cxx_second_base, test_c_calls_cxx_manager,
             test_library_objects, test_cxx_callback_registered, test_cxx_callback_unregistered)
