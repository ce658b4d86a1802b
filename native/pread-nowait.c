/*
 * preadv2(2) with RWF_NOWAIT for a seeder's block reads (src/wire/cached-read.ts):
 *
 *   preadNoWait(fd, view, position) -> number
 *
 * reads into the whole of `view` at `position`, on the calling thread, only
 * what the page cache holds: it never waits for the disk. Returns the bytes
 * read (possibly fewer than asked, 0 at the end of the file), -1 when nothing
 * could be read without waiting (or any other error: the caller then reads
 * on the thread pool as before, which reports real errors), and -2 when this
 * kernel or file system has no RWF_NOWAIT for reads (the caller stops asking).
 *
 * Why: fs.read runs every block on libuv's thread pool: a wake-up of a pool
 * thread, its switch in and out, and the completion's eventfd write and
 * epoll wake-up on the main thread, about six futex calls and two context
 * switches per block. A shared file being served is mostly in the page
 * cache, and copying a cached block costs the same on either thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>
#include "addon.h"

static napi_value number(napi_env env, int64_t n) {
  napi_value v;
  napi_create_int64(env, n, &v);
  return v;
}

napi_value coterie_pread_nowait(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t position;
  bool is_typed = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok || fd < 0 || position < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "preadNoWait(fd, view, position)");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value arraybuffer;
  size_t byte_offset;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, &arraybuffer, &byte_offset) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "preadNoWait: view must be a Uint8Array");
    return NULL;
  }
  if (length == 0) return number(env, 0);
#if defined(__linux__) && defined(RWF_NOWAIT)
  struct iovec iov = {.iov_base = data, .iov_len = length};
  ssize_t n;
  do {
    n = preadv2(fd, &iov, 1, (off_t)position, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return number(env, n);
  if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) return number(env, -2);
  return number(env, -1);
#else
  (void)fd;
  (void)position;
  (void)data;
  return number(env, -2);
#endif
}
