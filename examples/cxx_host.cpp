/* SPDX-License-Identifier: MIT */
// cxx_host.cpp: a C++ host of hostmalloc.
//
// In C++, <hostmalloc/hosting.h> declares the interfaces as MIDL output does: classes of pure
// virtual methods deriving from IUnknown, so the library's objects (made in C) are called as
// `heap->Alloc(...)`, and the host's own ICLRMemoryNotificationCallback is an ordinary C++
// class. This host makes a manager with a small budget, registers a callback, lets the
// "runtime" fill the budget through one IHostMalloc until the manager reports Low memory, and
// gives everything back. A small holder releases each interface when it goes out of scope.
//
// Usage: cxx_host      Exit status: 0 when every step did what it should, 1 otherwise.
#include <hostmalloc/hostmalloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <vector>

// Holds one reference to a COM object and releases it at the end of the scope.
template <class T> class Ref {
  public:
    Ref() = default;
    Ref(const Ref &) = delete;
    Ref &operator=(const Ref &) = delete;
    ~Ref() {
        if (p_ != nullptr) p_->Release();
    }
    T *operator->() const {
        return p_;
    }
    T *get() const {
        return p_;
    }
    T **put() { // for out-parameters: CreateMalloc(type, heap.put())
        return &p_;
    }

  private:
    T *p_ = nullptr;
};

// The host's memory notification callback. The manager calls it on its own notifier thread,
// through the C vtable of the interface; to C++ it is a virtual call like any other.
class PressureListener final : public ICLRMemoryNotificationCallback {
  public:
    HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppv) override {
        if (ppv == nullptr) return E_POINTER;
        *ppv = nullptr;
        if (!same(riid, IID_IUnknown) && !same(riid, IID_ICLRMemoryNotificationCallback))
            return E_NOINTERFACE;
        *ppv = static_cast<ICLRMemoryNotificationCallback *>(this);
        AddRef();
        return S_OK;
    }
    // The listener lives on main's stack and outlives the manager: the count is kept only to
    // show that the manager releases what it AddRef'd.
    ULONG STDMETHODCALLTYPE AddRef() override {
        return ++refs_;
    }
    ULONG STDMETHODCALLTYPE Release() override {
        return --refs_;
    }
    HRESULT STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable level) override {
        static const char *const names[] = {"?", "Low", "Neutral", "High"};
        std::printf("  notification: memory available %s\n", names[level <= 3 ? level : 0]);
        std::lock_guard<std::mutex> hold(lock_);
        last_ = level;
        changed_.notify_all();
        return S_OK;
    }

    bool wait_for(EMemoryAvailable level, std::chrono::milliseconds limit) {
        std::unique_lock<std::mutex> hold(lock_);
        return changed_.wait_for(hold, limit, [&] { return last_ == level; });
    }
    ULONG refs() const {
        return refs_;
    }

  private:
    static bool same(const IID &a, const IID &b) {
        return a.Data1 == b.Data1 && a.Data2 == b.Data2 && a.Data3 == b.Data3 &&
               std::equal(a.Data4, a.Data4 + 8, b.Data4);
    }
    std::atomic<ULONG> refs_{1};
    std::mutex lock_;
    std::condition_variable changed_;
    EMemoryAvailable last_ = eMemoryAvailableHigh;
};

static bool check(bool ok, const char *what) {
    std::printf("%s %s\n", ok ? "  ok  " : "  FAIL", what);
    return ok;
}

int main() {
    hm_config cfg;
    hm_config_init(&cfg);  // defaults, then the HM_* environment
    cfg.limit = 64u << 20; // a budget this host can fill: 64 MiB
    bool ok = true;
    PressureListener listener;
    {
        Ref<IHostMemoryManager> mgr;
        if (hm_create_host_memory_manager(&cfg, mgr.put()) != S_OK) return 1;
        ok &= check(mgr->RegisterMemoryNotificationCallback(&listener) == S_OK,
                    "RegisterMemoryNotificationCallback");

        // What the runtime does with the manager: one thread-safe allocator ...
        Ref<IHostMalloc> heap;
        ok &= check(mgr->CreateMalloc(MALLOC_THREADSAFE, heap.put()) == S_OK, "CreateMalloc");
        void *small = nullptr;
        ok &= check(heap->Alloc(16, eTaskCritical, &small) == S_OK, "Alloc(16)");
        char file[] = __FILE__; // DebugAlloc takes a char *, as the interface declares it
        void *tagged = nullptr;
        ok &= check(heap->DebugAlloc(256, eAppDomainCritical, file, __LINE__, &tagged) == S_OK,
                    "DebugAlloc(256)");
        int on_stack = 0;
        ok &= check(heap->Free(&on_stack) == HOST_E_INVALIDOPERATION,
                    "Free of a pointer hostmalloc did not hand out is refused");

        // ... filled in 1 MiB steps until the manager says memory is Low.
        std::vector<void *> blocks;
        DWORD load = 0;
        SIZE_T available = 0;
        while (load < 95 && blocks.size() < 256) {
            void *p = nullptr;
            if (heap->Alloc(1u << 20, eTaskCritical, &p) != S_OK) break;
            blocks.push_back(p);
            mgr->GetMemoryLoad(&load, &available);
        }
        std::printf("  %zu MiB allocated, load %u%%, %zu KiB left for task-critical requests\n",
                    blocks.size(), static_cast<unsigned>(load),
                    static_cast<size_t>(available >> 10));
        ok &= check(listener.wait_for(eMemoryAvailableLow, std::chrono::seconds(5)),
                    "Low notification");

        // The runtime answers Low by collecting: it frees, and the manager says High again.
        for (void *p : blocks)
            heap->Free(p);
        ok &= check(listener.wait_for(eMemoryAvailableHigh, std::chrono::seconds(5)),
                    "High notification after the frees");
        ok &= check(heap->Free(tagged) == S_OK && heap->Free(small) == S_OK, "Free");
    } // heap, then manager released: the manager drops its reference on the listener
    ok &= check(listener.refs() == 1, "the manager released the listener");
    std::printf("cxx_host: %s\n", ok ? "all checks passed" : "FAILED");
    return ok ? 0 : 1;
}
