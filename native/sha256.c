/*
 * SHA-256 of a piece on libuv's thread pool, for a download's verification
 * (src/peer/files/download/hasher.ts):
 *
 *   sha256(view) -> Promise<string>   (64 lowercase hex digits)
 *
 * Why not a worker thread: a worker boots a Node.js environment of its own
 * and every piece costs a message each way through it, together about a
 * quarter of the hashing's CPU (bench/transfer.ts); here a piece costs one
 * queued job, and the digest is OpenSSL's, the very code createHash runs
 * (Node's own libcrypto, whose symbols the node binary exports).
 *
 * The view's memory is read on another thread while JavaScript runs: the
 * view is kept alive by a reference until the job completes, and the caller
 * must not change its bytes meanwhile (the download's slots are recycled only
 * after the hash settles).
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include "addon.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  const uint8_t *data;
  size_t length;
  unsigned char digest[EVP_MAX_MD_SIZE];
  int ok;
} Job;

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  unsigned int n = 0;
  job->ok = EVP_Digest(job->data, job->length, job->digest, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result;
  if (status == napi_ok && job->ok) {
    static const char hex[] = "0123456789abcdef";
    char text[64];
    for (int i = 0; i < 32; i++) {
      text[2 * i] = hex[job->digest[i] >> 4];
      text[2 * i + 1] = hex[job->digest[i] & 15];
    }
    napi_create_string_latin1(env, text, 64, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message;
    napi_create_string_utf8(env, "sha256: digest failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

napi_value coterie_sha256(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_view = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_is_typedarray(env, argv[0], &is_view) != napi_ok || !is_view) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sha256(view): a Buffer or typed array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t count;
  void *bytes;
  if (napi_get_typedarray_info(env, argv[0], &type, &count, &bytes, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sha256(view): a Buffer or Uint8Array");
    return NULL;
  }
  Job *job = calloc(1, sizeof(Job));
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "sha256: out of memory");
    return NULL;
  }
  job->data = bytes;
  job->length = count;
  napi_value promise, name;
  if (napi_create_reference(env, argv[0], 1, &job->keep) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "sha256: cannot start");
    return NULL;
  }
  napi_create_string_utf8(env, "coterie:sha256", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}
