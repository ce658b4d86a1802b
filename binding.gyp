{
  "targets": [
    {
      "target_name": "coterie_native",
      "sources": ["native/preallocate.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
