/** The signals that stop a command: Ctrl-C, `kill`, and the terminal closing. */
const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs `cleanup` (synchronously) when a signal stops the process: Node's default for SIGINT, SIGTERM and SIGHUP ends
 * it at once, running no `finally` and no 'exit' handler. Then, unless another handler is listening (one that ends the
 * process its own way), the signal is raised again with none, so the process ends as the signal would have ended it
 * and its exit status says so. Returns what takes the handlers away.
 */
export function onStopSignal(cleanup: () => void): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    forget();
    cleanup();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const forget = () => {
    for (const signal of stopSignals) process.off(signal, onSignal);
  };
  for (const signal of stopSignals) process.on(signal, onSignal);
  return forget;
}
