/* The functions of the coterie_native addon, each in its own file; addon.c exports them. */
#ifndef COTERIE_ADDON_H
#define COTERIE_ADDON_H
#include <node_api.h>

napi_value coterie_fallocate(napi_env env, napi_callback_info info);
napi_value coterie_sha256(napi_env env, napi_callback_info info);
napi_value coterie_sha256_pair(napi_env env, napi_callback_info info);
napi_value coterie_sha256_pieces(napi_env env, napi_callback_info info);
napi_value coterie_pread_nowait(napi_env env, napi_callback_info info);
/* 1 where sha256Pair hashes a pair in one pass (the CPU's SHA extensions), else 0. */
int coterie_sha256_pair_fast(void);

#endif
