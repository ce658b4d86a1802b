/*
 * SHA-256 of a piece, or of two, on libuv's thread pool, for a download's
 * verification (src/peer/files/download/hasher.ts):
 *
 *   sha256(view) -> Promise<string>                  (64 lowercase hex digits)
 *   sha256Pair(a, b) -> Promise<[string, string]>    (where the CPU has SHA-NI)
 *
 * Why not a worker thread: a worker boots a Node.js environment of its own
 * and every piece costs a message each way through it, together about a
 * quarter of the hashing's CPU (bench/transfer.ts); here a piece costs one
 * queued job, and the digest is OpenSSL's, the very code createHash runs
 * (Node's own libcrypto, whose symbols the node binary exports).
 *
 * A pair is hashed in one pass with the CPU's SHA extensions
 * (sha256-pair.c): half the CPU of two single hashes. Where the CPU has
 * none, addon.c does not export sha256Pair and the caller hashes one piece a
 * job.
 *
 * The views' memory is read on another thread while JavaScript runs: each
 * view is kept alive by a reference until the job completes, and the caller
 * must not change its bytes meanwhile (the download's slots are recycled only
 * after the hash settles).
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include "addon.h"
#include "sha256-pair.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  /* 1, or 2 for a pair. */
  int count;
  napi_ref keep[2];
  const uint8_t *data[2];
  size_t length[2];
  unsigned char digest[2][32];
  int ok;
} Job;

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  if (job->count == 2) {
    sha_ni_pair_digest(job->data[0], job->length[0], job->data[1], job->length[1], job->digest[0],
                       job->digest[1]);
    job->ok = 1;
    return;
  }
  unsigned int n = 0;
  job->ok = EVP_Digest(job->data[0], job->length[0], job->digest[0], &n, EVP_sha256(), NULL) == 1 && n == 32;
}

static napi_value hex_digest(napi_env env, const unsigned char digest[32]) {
  static const char hex[] = "0123456789abcdef";
  char text[64];
  for (int i = 0; i < 32; i++) {
    text[2 * i] = hex[digest[i] >> 4];
    text[2 * i + 1] = hex[digest[i] & 15];
  }
  napi_value s;
  napi_create_string_latin1(env, text, 64, &s);
  return s;
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result;
  if (status == napi_ok && job->ok) {
    if (job->count == 1) {
      result = hex_digest(env, job->digest[0]);
    } else {
      napi_create_array_with_length(env, 2, &result);
      napi_set_element(env, result, 0, hex_digest(env, job->digest[0]));
      napi_set_element(env, result, 1, hex_digest(env, job->digest[1]));
    }
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message;
    napi_create_string_utf8(env, "sha256: digest failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  for (int i = 0; i < job->count; i++) napi_delete_reference(env, job->keep[i]);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* Queues a job for `count` Uint8Array views in argv; the promise, or NULL with an exception thrown. */
static napi_value start(napi_env env, napi_callback_info info, int count, const char *usage) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != (size_t)count) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  Job *job = calloc(1, sizeof(Job));
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "sha256: out of memory");
    return NULL;
  }
  for (int i = 0; i < count; i++) {
    bool is_view = false;
    napi_typedarray_type type;
    size_t length;
    void *bytes;
    if (napi_is_typedarray(env, argv[i], &is_view) != napi_ok || !is_view ||
        napi_get_typedarray_info(env, argv[i], &type, &length, &bytes, NULL, NULL) != napi_ok ||
        type != napi_uint8_array) {
      free(job);
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
      return NULL;
    }
    job->data[i] = bytes;
    job->length[i] = length;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "sha256: cannot start");
    return NULL;
  }
  for (int i = 0; i < count; i++) {
    napi_create_reference(env, argv[i], 1, &job->keep[i]);
    job->count = i + 1;
  }
  napi_create_string_utf8(env, "coterie:sha256", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

napi_value coterie_sha256(napi_env env, napi_callback_info info) {
  return start(env, info, 1, "sha256(view): a Buffer or Uint8Array");
}

napi_value coterie_sha256_pair(napi_env env, napi_callback_info info) {
  return start(env, info, 2, "sha256Pair(a, b): two Buffers or Uint8Arrays");
}

int coterie_sha256_pair_fast(void) { return sha_ni_pair_available(); }
