# The one native piece of the package besides better-sqlite3: native/notify.c, the datagram that
# systemd's readiness protocol needs and Node.js cannot send (src/systemd/notify-socket.ts loads it).
# `npm ci` builds it (python3, make and a C compiler, as for better-sqlite3).
{
  "targets": [
    {
      "target_name": "ufdl_notify",
      "sources": ["native/notify.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
