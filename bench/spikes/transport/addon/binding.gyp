{
  "targets": [
    {
      "target_name": "shm_ring",
      "sources": ["shm_ring.cc"],
      "cflags_cc": ["-std=c++17", "-O2"]
    }
  ]
}
