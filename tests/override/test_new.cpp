/* SPDX-License-Identifier: MIT */
// test_new.cpp: the C++ operator new and delete families under the override (this program
// links libhostmalloc-override.so first). Prints "N passed, N failed" and exits non-zero on a
// failure.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <malloc.h>
#include <new>
#include <vector>

static int passed, failed;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                            \
        }                                                                                          \
    } while (0)

struct alignas(256) Wide {
    char bytes[300];
};

static int handler_calls;
static void handler() {
    handler_calls++;
    std::set_new_handler(nullptr); // next failure throws
}

int main() {
    // plain, array, sized delete: the blocks are hostmalloc's (malloc_usable_size knows them)
    int *i = new int(42);
    CHECK(*i == 42 && malloc_usable_size(i) >= sizeof(int));
    delete i;
    char *a = new char[1000];
    std::memset(a, 7, 1000);
    CHECK(malloc_usable_size(a) >= 1000);
    delete[] a;
    std::vector<std::vector<int>> vv;
    for (int k = 0; k < 1000; k++)
        vv.emplace_back(static_cast<size_t>(k % 50), k);
    long sum = 0;
    for (auto &v : vv)
        for (int x : v)
            sum += x;
    CHECK(sum > 0);
    vv.clear();
    vv.shrink_to_fit();

    // aligned new and delete
    Wide *w = new Wide;
    CHECK(reinterpret_cast<uintptr_t>(w) % 256 == 0);
    delete w;
    Wide *wa = new Wide[5];
    CHECK(reinterpret_cast<uintptr_t>(wa) % 256 == 0);
    delete[] wa;
    void *big = ::operator new(100, std::align_val_t(1 << 16));
    CHECK(reinterpret_cast<uintptr_t>(big) % (1 << 16) == 0);
    ::operator delete(big, std::align_val_t(1 << 16));

    // nothrow new gives nullptr; throwing new throws bad_alloc; the new-handler is asked first
    size_t huge = SIZE_MAX / 2;
    char *n = new (std::nothrow) char[huge];
    CHECK(n == nullptr);
    void *na = ::operator new(huge, std::align_val_t(64), std::nothrow);
    CHECK(na == nullptr);
    bool threw = false;
    try {
        char *t = new char[huge];
        t[0] = 1;
        delete[] t;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    std::set_new_handler(handler);
    threw = false;
    try {
        void *t = ::operator new(huge);
        ::operator delete(t);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw && handler_calls == 1);
    threw = false;
    try {
        void *t = ::operator new(huge, std::align_val_t(128));
        ::operator delete(t, std::align_val_t(128));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
