// SPDX-License-Identifier: MIT
// sized_delete_wrong.cpp: a 64-byte operator new block given to sized operator delete with
// 8192 bytes as its size.
#include <new>

#include "misuse.h"

int main() {
    void *p = opaque(::operator new(64));
    ::operator delete(p, opaque_size(8192));
    return MISUSE_MISSED;
}
