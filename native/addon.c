/* The coterie_native addon: fallocate (preallocate.c) and sha256 (sha256.c). */
#include "addon.h"

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  export_function(env, exports, "fallocate", coterie_fallocate);
  export_function(env, exports, "sha256", coterie_sha256);
  return exports;
}
