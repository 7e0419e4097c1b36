// SPDX-License-Identifier: MIT
// new_size_max.cpp: operator new of SIZE_MAX bytes must throw std::bad_alloc.
#include <new>

#include "misuse.h"

int main() {
    try {
        void *p = opaque(::operator new(opaque_size(SIZE_MAX)));
        ::operator delete(p);
        return MISUSE_MISSED;
    } catch (const std::bad_alloc &) {
        return MISUSE_REFUSED;
    }
}
