/**
 * A short command that would leave something behind if a signal killed it (a download's partial
 * file) runs its work under an abort signal instead: the first SIGINT (Ctrl-C) or SIGTERM aborts the
 * work, which cleans up and fails with kind `aborted` ("interrupted", connect.ts); a second signal
 * kills the process as before, for a person who does not want to wait.
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
