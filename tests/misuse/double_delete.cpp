// SPDX-License-Identifier: MIT
// double_delete.cpp: delete of an object twice.
#include "misuse.h"

struct object {
    long a, b, c;
};

int main() {
    object *o = static_cast<object *>(opaque(new object()));
    delete static_cast<object *>(opaque(o));
    delete static_cast<object *>(opaque(o));
    return MISUSE_MISSED;
}
