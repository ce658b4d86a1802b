/*
 * SHA-256 of two messages at once with the x86 SHA extensions (SHA-NI), for
 * sha256.c's pair of pieces.
 *
 * Why two: one message is a chain of dependent rounds, so a core's SHA unit
 * waits on each round's result; OpenSSL's own SHA-NI code (what createHash
 * and EVP_Digest run) is bound by that wait, at about 0.6 CPU-s per GiB on
 * the machines we measured. Two independent messages interleaved round by
 * round fill the gaps: about 0.31 CPU-s per GiB for the pair's bytes on an
 * AMD EPYC (Zen 4), half the cost of hashing them one after the other. Three
 * or four at once spill the 16 SSE registers and are slower again.
 *
 * Only where the CPU says it has the extensions (CPUID, checked once), and
 * only on x86-64: elsewhere sha_ni_pair_available() is 0 and the
 * caller hashes each message with EVP_Digest. The rounds follow Intel's
 * published SHA-NI sequence ("Intel SHA Extensions", 2013); the unit test
 * checks the digests against Node's createHash over every length class
 * (empty, a block, one byte either side of the padding's 56, unequal pairs).
 */
#include "sha256-pair.h"
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

/* The state as the instructions want it: ABEF and CDGH, from and to the usual a..h words. */
SHA_TARGET static inline void load_state(const uint32_t st[8], __m128i *abef, __m128i *cdgh) {
  __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[0]), 0xB1);
  __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[4]), 0x1B);
  *abef = _mm_alignr_epi8(t, u, 8);
  *cdgh = _mm_blend_epi16(u, t, 0xF0);
}

SHA_TARGET static inline void store_state(uint32_t st[8], __m128i abef, __m128i cdgh) {
  __m128i t = _mm_shuffle_epi32(abef, 0x1B);
  __m128i u = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128((__m128i *)&st[0], _mm_blend_epi16(t, u, 0xF0));
  _mm_storeu_si128((__m128i *)&st[4], _mm_alignr_epi8(u, t, 8));
}

/*
 * `lanes` (1 or 2) messages, `n` 64-byte blocks each, advanced in step. Written once for both
 * widths; the compiler unrolls the lane loops (lanes is a constant at each call).
 */
#define LANES_MAX 2
SHA_TARGET static inline void compress(int lanes, uint32_t *st[LANES_MAX], const uint8_t *p[LANES_MAX],
                                       size_t n) {
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abef[LANES_MAX], cdgh[LANES_MAX];
  const uint8_t *q[LANES_MAX];
  for (int k = 0; k < lanes; k++) {
    load_state(st[k], &abef[k], &cdgh[k]);
    q[k] = p[k];
  }
  while (n--) {
    __m128i abef0[LANES_MAX], cdgh0[LANES_MAX], w[LANES_MAX][4];
    for (int k = 0; k < lanes; k++) {
      abef0[k] = abef[k];
      cdgh0[k] = cdgh[k];
      for (int j = 0; j < 4; j++) w[k][j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q[k] + 16 * j)), swap);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
      const __m128i kk = _mm_load_si128((const __m128i *)&K[4 * i]);
      __m128i m[LANES_MAX];
      for (int k = 0; k < lanes; k++) {
        m[k] = _mm_add_epi32(w[k][i & 3], kk);
        cdgh[k] = _mm_sha256rnds2_epu32(cdgh[k], abef[k], m[k]);
      }
      for (int k = 0; k < lanes; k++) {
        m[k] = _mm_shuffle_epi32(m[k], 0x0E);
        abef[k] = _mm_sha256rnds2_epu32(abef[k], cdgh[k], m[k]);
      }
      if (i < 12) {
        /* The schedule's next four words, into the slot just used. */
        for (int k = 0; k < lanes; k++) {
          __m128i x = _mm_sha256msg1_epu32(w[k][i & 3], w[k][(i + 1) & 3]);
          x = _mm_add_epi32(x, _mm_alignr_epi8(w[k][(i + 3) & 3], w[k][(i + 2) & 3], 4));
          w[k][i & 3] = _mm_sha256msg2_epu32(x, w[k][(i + 3) & 3]);
        }
      }
    }
    for (int k = 0; k < lanes; k++) {
      abef[k] = _mm_add_epi32(abef[k], abef0[k]);
      cdgh[k] = _mm_add_epi32(cdgh[k], cdgh0[k]);
      q[k] += 64;
    }
  }
  for (int k = 0; k < lanes; k++) store_state(st[k], abef[k], cdgh[k]);
}

SHA_TARGET static void compress1(uint32_t *st, const uint8_t *p, size_t n) {
  uint32_t *s[LANES_MAX] = {st, st};
  const uint8_t *b[LANES_MAX] = {p, p};
  compress(1, s, b, n);
}

SHA_TARGET static void compress2(uint32_t *sa, uint32_t *sb, const uint8_t *pa, const uint8_t *pb, size_t n) {
  uint32_t *s[LANES_MAX] = {sa, sb};
  const uint8_t *b[LANES_MAX] = {pa, pb};
  compress(2, s, b, n);
}

/* A message as blocks: its whole blocks where they are, then its last bytes and the padding. */
typedef struct {
  const uint8_t *data;
  size_t whole;       /* blocks read from data */
  size_t total;       /* whole + 1 or 2 padded blocks */
  uint8_t tail[128];  /* the last (len % 64) bytes, 0x80, zeros, the bit length */
  uint32_t st[8];
} Message;

static void message_init(Message *m, const uint8_t *data, size_t len) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  size_t rest = len % 64;
  size_t padded = rest + 9 <= 64 ? 1 : 2;
  memcpy(m->st, iv, sizeof iv);
  m->data = data;
  m->whole = len / 64;
  m->total = m->whole + padded;
  memset(m->tail, 0, sizeof m->tail);
  if (rest > 0) memcpy(m->tail, data + 64 * m->whole, rest);
  m->tail[rest] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) m->tail[padded * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
}

static const uint8_t *message_block(const Message *m, size_t i) {
  return i < m->whole ? m->data + 64 * i : m->tail + 64 * (i - m->whole);
}

static void message_digest(const Message *m, uint8_t out[32]) {
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(m->st[i] >> 24);
    out[4 * i + 1] = (uint8_t)(m->st[i] >> 16);
    out[4 * i + 2] = (uint8_t)(m->st[i] >> 8);
    out[4 * i + 3] = (uint8_t)m->st[i];
  }
}

int sha_ni_pair_available(void) {
  static int known = -1;
  if (known < 0) {
    unsigned a, b, c, d;
    int sse = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) && (c & bit_SSE4_1);
    int sha = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
    known = sse && sha;
  }
  return known;
}

void sha_ni_pair_digest(const uint8_t *a, size_t la, const uint8_t *b, size_t lb, uint8_t da[32],
                         uint8_t db[32]) {
  Message ma, mb;
  message_init(&ma, a, la);
  message_init(&mb, b, lb);
  /* The whole blocks both have, in one run; then block by block while both have some. */
  size_t i = ma.whole < mb.whole ? ma.whole : mb.whole;
  compress2(ma.st, mb.st, a, b, i);
  for (; i < ma.total && i < mb.total; i++) compress2(ma.st, mb.st, message_block(&ma, i), message_block(&mb, i), 1);
  /* The longer one's rest alone: its whole blocks in one run, then its padded tail. */
  Message *m = i < ma.total ? &ma : &mb;
  if (i < m->whole) {
    compress1(m->st, m->data + 64 * i, m->whole - i);
    i = m->whole;
  }
  for (; i < m->total; i++) compress1(m->st, message_block(m, i), 1);
  message_digest(&ma, da);
  message_digest(&mb, db);
}

#else

int sha_ni_pair_available(void) { return 0; }

void sha_ni_pair_digest(const uint8_t *a, size_t la, const uint8_t *b, size_t lb, uint8_t da[32],
                         uint8_t db[32]) {
  (void)a, (void)la, (void)b, (void)lb, (void)da, (void)db;
}

#endif
