{
  "targets": [
    {
      "target_name": "coterie_native",
      "sources": ["native/addon.c", "native/preallocate.c", "native/sha256.c", "native/sha256-pair.c", "native/sha256-pieces.c", "native/pread-nowait.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
