/*
 * One datagram to the service manager's notification socket (sd_notify(3)). Node.js has no AF_UNIX
 * datagram sockets, so this is the one system call it cannot make itself; the protocol (what to
 * send, when, and the address rules) lives in src/systemd/.
 *
 *   send(address: string, message: Buffer): number   0, or the errno of the failure
 *
 * `address` is a file-system path ("/run/systemd/notify") or an abstract name with a leading "@"
 * ("@/org/freedesktop/systemd1/notify"), as $NOTIFY_SOCKET holds them. The datagram comes from this
 * process, so the service manager sees the main PID (NotifyAccess=main is enough).
 */
#include <node_api.h>
#include <errno.h>
#include <string.h>

#ifndef _WIN32
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: no SIGPIPE on datagram sockets anyway */
#endif

static int send_datagram(const char *address, size_t address_length, const void *message, size_t length) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  /* The abstract namespace has no terminating NUL: its name is exactly the remaining bytes. */
  int abstract = address_length > 0 && address[0] == '@';
  if (address_length == 0 || address_length >= sizeof(sa.sun_path)) return ENAMETOOLONG;
  memcpy(sa.sun_path, address, address_length);
  if (abstract) sa.sun_path[0] = '\0';
  socklen_t sa_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + address_length + (abstract ? 0 : 1));

  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return errno;
  int result = 0;
  /* Never block the event loop: a full receive queue is reported (EAGAIN), not waited for. */
  if (sendto(fd, message, length, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sa_length) < 0) result = errno;
  close(fd);
  return result;
}
#else
static int send_datagram(const char *address, size_t address_length, const void *message, size_t length) {
  (void)address; (void)address_length; (void)message; (void)length;
  return ENOSYS;
}
#endif

static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    napi_throw_type_error(env, NULL, "send(address, message) takes two arguments");
    return NULL;
  }
  char address[256];
  size_t address_length = 0;
  if (napi_get_value_string_utf8(env, argv[0], address, sizeof(address), &address_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "send: the address must be a string");
    return NULL;
  }
  void *data = NULL;
  size_t length = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "send: the message must be a Buffer");
    return NULL;
  }
  /* A truncated address would send elsewhere: refuse one that filled the buffer. */
  int err = address_length >= sizeof(address) - 1 ? ENAMETOOLONG : send_datagram(address, address_length, data, length);
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, Send, NULL, &fn);
  napi_set_named_property(env, exports, "send", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
