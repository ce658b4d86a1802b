/*
 * SHA-256 of consecutive pieces of one buffer, on the calling thread, for a
 * folder share's hashing workers (src/core/piece-hash.ts):
 *
 *   sha256Pieces(data, lengths, count, out, outOffset) -> undefined
 *
 * Piece i is the lengths[i] bytes after piece i-1's (the first at data's
 * start); its 32-byte digest goes to out[outOffset + 32 i]. Where the CPU has
 * the SHA extensions, pieces go two at a time through sha256-pair.c (half the
 * CPU of one after the other); elsewhere each is one EVP_Digest, OpenSSL's
 * code as createHash runs it.
 *
 * Why synchronous, and many pieces a call: the caller is a worker thread that
 * reads a folder's small files into one buffer and has nothing else to do
 * while they are hashed. One call for a buffer of a few hundred files spares
 * the createHash object, update and digest of each (and their garbage), and
 * lets the pieces of neighbouring files make pairs; a queued job per pair
 * would cost more than the hashing of a 4 KiB file.
 *
 * Every argument is checked (the lengths must fit in data, the digests in
 * out) before anything is read: a TypeError or RangeError, never a read or
 * write outside the views.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include "addon.h"
#include "sha256-pair.h"

static int view_of(napi_env env, napi_value v, napi_typedarray_type want, void **bytes, size_t *length) {
  bool is_view = false;
  napi_typedarray_type type;
  return napi_is_typedarray(env, v, &is_view) == napi_ok && is_view &&
         napi_get_typedarray_info(env, v, &type, length, bytes, NULL, NULL) == napi_ok && type == want;
}

static int index_of(napi_env env, napi_value v, size_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 9007199254740991.0 || d != (double)(int64_t)d)
    return 0;
  *out = (size_t)d;
  return 1;
}

napi_value coterie_sha256_pieces(napi_env env, napi_callback_info info) {
  static const char usage[] =
      "sha256Pieces(data: Uint8Array, lengths: Uint32Array, count: number, out: Uint8Array, outOffset: number)";
  size_t argc = 5;
  napi_value argv[5];
  void *data, *lens, *out;
  size_t data_len, lens_len, out_len, count, at;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      !view_of(env, argv[0], napi_uint8_array, &data, &data_len) ||
      !view_of(env, argv[1], napi_uint32_array, &lens, &lens_len) || !index_of(env, argv[2], &count) ||
      !view_of(env, argv[3], napi_uint8_array, &out, &out_len) || !index_of(env, argv[4], &at)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  const uint32_t *length = lens;
  size_t total = 0;
  for (size_t i = 0; i < count && i < lens_len; i++) total += length[i];
  if (count > lens_len || total > data_len || at > out_len || count > (out_len - at) / 32) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sha256Pieces: the pieces or their digests do not fit");
    return NULL;
  }
  const uint8_t *p = data;
  uint8_t *d = (uint8_t *)out + at;
  size_t i = 0;
  if (sha_ni_pair_available()) {
    for (; i + 1 < count; i += 2) {
      sha_ni_pair_digest(p, length[i], p + length[i], length[i + 1], d + 32 * i, d + 32 * (i + 1));
      p += (size_t)length[i] + length[i + 1];
    }
  }
  for (; i < count; i++) {
    unsigned int n = 0;
    if (EVP_Digest(p, length[i], d + 32 * i, &n, EVP_sha256(), NULL) != 1 || n != 32) {
      napi_throw_error(env, NULL, "sha256Pieces: digest failed");
      return NULL;
    }
    p += length[i];
  }
  return NULL;
}
