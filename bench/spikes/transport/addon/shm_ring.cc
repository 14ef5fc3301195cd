// Spike only (issue #26): the few things a shared-memory ring between two Node processes needs
// that JavaScript cannot do by itself.
//   mapFd(fd, bytes)                  mmap(MAP_SHARED) of a descriptor -> ArrayBuffer over it
//   futexWait(buffer, offset, expected, timeoutMs) -> 0 woken, 1 value differed, 2 timed out
//   futexWake(buffer, offset)         wake one waiter on that 32-bit word (shared, not private)
//   watch(buffer, offset, callback)   a thread that futex-waits on the word and, each time it
//                                     changes, wakes the event loop (uv_async) to call callback
//   unwatch(handle)
//   sealedMemfd(bytes) -> fd          an anonymous memfd of that size, sealed against shrinking,
//                                     growing and further seals (a host holding it cannot
//                                     ftruncate it under the node's mapping: no SIGBUS)
// Both processes map the same pages; the futex words live in them (a shared futex keys on the
// page, so a wake in one process reaches a waiter in the other — Atomics.wait cannot).
#include <node_api.h>
#include <uv.h>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <thread>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(call)                                                    \
  do {                                                                 \
    if ((call) != napi_ok) {                                           \
      napi_throw_error(env, nullptr, "shm_ring: N-API call failed: " #call); \
      return nullptr;                                                  \
    }                                                                  \
  } while (0)

static long futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const struct timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, ts, nullptr, 0);
}

static void unmap(napi_env, void* data, void* hint) {
  munmap(data, reinterpret_cast<size_t>(hint));
}

static napi_value MapFd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int32_t fd;
  int64_t bytes;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int64(env, argv[1], &bytes));
  if (bytes <= 0) {
    napi_throw_range_error(env, nullptr, "shm_ring: bad size");
    return nullptr;
  }
  void* mem = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    napi_throw_error(env, nullptr, strerror(errno));
    return nullptr;
  }
  napi_value ab;
  CHECK(napi_create_external_arraybuffer(env, mem, static_cast<size_t>(bytes), unmap,
                                         reinterpret_cast<void*>(static_cast<size_t>(bytes)), &ab));
  return ab;
}

// The 32-bit word at `offset` of the ArrayBuffer, checked to lie inside it and be aligned.
static std::atomic<uint32_t>* word(napi_env env, napi_value buffer, napi_value offsetValue) {
  void* data;
  size_t length;
  uint32_t offset;
  if (napi_get_arraybuffer_info(env, buffer, &data, &length) != napi_ok ||
      napi_get_value_uint32(env, offsetValue, &offset) != napi_ok || offset % 4 != 0 ||
      static_cast<size_t>(offset) + 4 > length) {
    napi_throw_range_error(env, nullptr, "shm_ring: bad buffer or offset");
    return nullptr;
  }
  return reinterpret_cast<std::atomic<uint32_t>*>(static_cast<char*>(data) + offset);
}

static napi_value FutexWait(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  std::atomic<uint32_t>* w = word(env, argv[0], argv[1]);
  if (w == nullptr) return nullptr;
  uint32_t expected;
  double timeoutMs;
  CHECK(napi_get_value_uint32(env, argv[2], &expected));
  CHECK(napi_get_value_double(env, argv[3], &timeoutMs));
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(timeoutMs / 1000);
  ts.tv_nsec = static_cast<long>((timeoutMs - ts.tv_sec * 1000.0) * 1e6);
  long r = futex(w, FUTEX_WAIT, expected, &ts);
  int result = r == 0 ? 0 : errno == EAGAIN ? 1 : errno == ETIMEDOUT ? 2 : 0;
  napi_value out;
  CHECK(napi_create_int32(env, result, &out));
  return out;
}

static napi_value FutexWake(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  std::atomic<uint32_t>* w = word(env, argv[0], argv[1]);
  if (w == nullptr) return nullptr;
  long r = futex(w, FUTEX_WAKE, 1, nullptr);
  napi_value out;
  CHECK(napi_create_int32(env, static_cast<int32_t>(r), &out));
  return out;
}

struct Watch {
  napi_env env;
  napi_ref callback;
  napi_ref buffer;  // keeps the mapping alive while the thread reads it
  napi_async_context context;
  uv_async_t async;
  std::atomic<uint32_t>* bell;
  std::atomic<bool> stop{false};
  std::thread thread;
};

static void onAsync(uv_async_t* handle) {
  Watch* w = static_cast<Watch*>(handle->data);
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, result;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &recv);
  if (napi_make_callback(env, w->context, recv, cb, 0, nullptr, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

static void watchLoop(Watch* w) {
  uint32_t last = w->bell->load();
  while (!w->stop.load()) {
    futex(w->bell, FUTEX_WAIT, last, nullptr);
    uint32_t now = w->bell->load();
    if (now != last) {
      last = now;
      uv_async_send(&w->async);
    }
  }
}

static napi_value WatchStart(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  std::atomic<uint32_t>* bell = word(env, argv[0], argv[1]);
  if (bell == nullptr) return nullptr;
  Watch* w = new Watch();
  w->env = env;
  w->bell = bell;
  CHECK(napi_create_reference(env, argv[2], 1, &w->callback));
  CHECK(napi_create_reference(env, argv[0], 1, &w->buffer));
  napi_value resource, name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "shm_ring.watch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &w->context));
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_async_init(loop, &w->async, onAsync);
  w->async.data = w;
  w->thread = std::thread(watchLoop, w);
  napi_value handle;
  CHECK(napi_create_external(env, w, nullptr, nullptr, &handle));
  return handle;
}

static void onClosed(uv_handle_t* handle) {
  delete static_cast<Watch*>(handle->data);
}

static napi_value WatchStop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  void* data;
  CHECK(napi_get_value_external(env, argv[0], &data));
  Watch* w = static_cast<Watch*>(data);
  if (w->stop.exchange(true)) return nullptr;
  w->bell->fetch_add(1);
  futex(w->bell, FUTEX_WAKE, INT32_MAX, nullptr);
  w->thread.join();
  napi_delete_reference(env, w->callback);
  napi_delete_reference(env, w->buffer);
  napi_async_destroy(env, w->context);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->async), onClosed);
  return nullptr;
}

static napi_value SealedMemfd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int64_t bytes;
  CHECK(napi_get_value_int64(env, argv[0], &bytes));
  int fd = memfd_create("circles-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, bytes) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int error = errno;
    if (fd >= 0) close(fd);
    napi_throw_error(env, nullptr, strerror(error));
    return nullptr;
  }
  napi_value out;
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mapFd", nullptr, MapFd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"futexWait", nullptr, FutexWait, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"futexWake", nullptr, FutexWake, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"watch", nullptr, WatchStart, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unwatch", nullptr, WatchStop, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sealedMemfd", nullptr, SealedMemfd, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
