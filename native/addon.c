/* The coterie_native addon: fallocate (preallocate.c), sha256 and sha256Pair (sha256.c), sha256Pieces (sha256-pieces.c),
 * preadNoWait (pread-nowait.c). */
#include "addon.h"

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  export_function(env, exports, "fallocate", coterie_fallocate);
  export_function(env, exports, "sha256", coterie_sha256);
  export_function(env, exports, "sha256Pieces", coterie_sha256_pieces);
  export_function(env, exports, "preadNoWait", coterie_pread_nowait);
  /* Only where it is the faster way: elsewhere a pair would be two single hashes in one job. */
  if (coterie_sha256_pair_fast()) export_function(env, exports, "sha256Pair", coterie_sha256_pair);
  return exports;
}
