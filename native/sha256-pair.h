/* SHA-256 of two messages at once with the SHA extensions (sha256-pair.c). */
#ifndef COTERIE_SHA256_PAIR_H
#define COTERIE_SHA256_PAIR_H
#include <stddef.h>
#include <stdint.h>

/* 1 where this CPU has the SHA extensions (x86-64 only), else 0: then do not call the next. */
int sha_ni_pair_available(void);
void sha_ni_pair_digest(const uint8_t *a, size_t la, const uint8_t *b, size_t lb, uint8_t da[32],
                         uint8_t db[32]);

#endif
