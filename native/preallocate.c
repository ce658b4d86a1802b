/*
 * fallocate(2) for Node, which has no binding for it: a download reserves its
 * part file's blocks before the first piece arrives (src/peer/download/preallocate.ts).
 *
 *   fallocate(fd, offset, length) -> Promise<number>
 *
 * resolves with 0 or with the errno (ENOSPC, EOPNOTSUPP, ...), which the
 * caller names with util.getSystemErrorName; it never rejects for a system
 * error, so that the one place that decides what each errno means is the
 * TypeScript side. It runs on libuv's thread pool: allocating a multi-GB file
 * takes the file system milliseconds to tens of milliseconds, too long to
 * block a daemon's event loop. Where the platform has no fallocate it
 * resolves with ENOSYS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include "addon.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t offset;
  int64_t length;
  int err;
} Job;

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
#ifdef __linux__
  int r;
  do {
    r = fallocate(job->fd, 0, (off_t)job->offset, (off_t)job->length);
  } while (r != 0 && errno == EINTR);
  job->err = r == 0 ? 0 : errno;
#else
  job->err = ENOSYS;
#endif
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result;
  napi_create_int32(env, status == napi_ok ? job->err : ECANCELED, &result);
  napi_resolve_deferred(env, job->deferred, result);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

napi_value coterie_fallocate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) {
    return throw_type_error(env, "fallocate(fd, offset, length): three numbers");
  }
  int32_t fd;
  int64_t offset, length;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok) {
    return throw_type_error(env, "fallocate(fd, offset, length): three numbers");
  }
  if (fd < 0 || offset < 0 || length <= 0) {
    return throw_type_error(env, "fallocate: fd and offset must be >= 0, length > 0");
  }
  Job *job = calloc(1, sizeof(Job));
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "fallocate: out of memory");
    return NULL;
  }
  job->fd = fd;
  job->offset = offset;
  job->length = length;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "coterie:fallocate", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}
