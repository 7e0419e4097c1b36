/* SPDX-License-Identifier: MIT */
/* mem/mem.h: the mem layer's one header for the layers above it (debug, manager, doors). The
 * layer, bottom up: budget <- segment <- page <- heap <- alloc; each file's header includes the
 * one below it, so this is alloc.h and everything under it. docs/LAYERS.md. */
#ifndef HM_MEM_H
#define HM_MEM_H

#include "mem/alloc.h"

#endif /* HM_MEM_H */
