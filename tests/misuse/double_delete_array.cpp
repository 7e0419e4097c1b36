// SPDX-License-Identifier: MIT
// double_delete_array.cpp: delete[] of a 200-byte array twice.
#include "misuse.h"

int main() {
    char *a = static_cast<char *>(opaque(new char[200]));
    delete[] static_cast<char *>(opaque(a));
    delete[] static_cast<char *>(opaque(a));
    return MISUSE_MISSED;
}
