{
  "targets": [
    {
      "target_name": "coterie_native",
      "sources": ["native/addon.c", "native/preallocate.c", "native/sha256.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
