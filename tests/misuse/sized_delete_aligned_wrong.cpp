// SPDX-License-Identifier: MIT
// sized_delete_aligned_wrong.cpp: a 64-byte block of 64-byte alignment given to the sized,
// aligned operator delete with 8192 bytes as its size.
#include <new>

#include "misuse.h"

int main() {
    void *p = opaque(::operator new(64, std::align_val_t(64)));
    ::operator delete(p, opaque_size(8192), std::align_val_t(64));
    return MISUSE_MISSED;
}
