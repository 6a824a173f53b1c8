/* size.h - byte counts as people write them: 512, 64K, 1.5M, 2G, 1T. */
#ifndef BOTTLE_SIZE_H
#define BOTTLE_SIZE_H

#include <stdint.h>

/* A whole number, or a decimal one followed by a unit: K, M, G or T (either
 * case; 1024, 1024^2, ...). The result must be below 2^63 and a whole number of
 * bytes once multiplied ("1.5K" is 1536, "0.3" is refused). Returns 0, or -1
 * for anything else. */
int size_parse(const char *s, uint64_t *out);

#endif
