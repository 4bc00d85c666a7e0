import pino from 'pino';

/**
 * Structured logs. They carry request ids, routes, statuses and timings: never NHS numbers,
 * names, query strings or bodies (those belong to the audit trail only). Paths are logged with
 * their query string removed and ids of pointers kept (ids are not patient identifiers).
 */
export type Logger = pino.Logger;

/** Bytes of log lines gathered before one write to stdout. */
const LOG_BUFFER_BYTES = 4096;
/** The longest a line waits in that buffer when traffic is light. */
const LOG_FLUSH_MS = 1000;

/**
 * Lines go to stdout through a buffer: one write per 4 KiB rather than one per request (each
 * request logs a line, and a write to a pipe wakes whatever reads it). A timer flushes the buffer
 * every second, so a quiet server's lines still appear promptly, and pino flushes it synchronously
 * when the process exits, on an uncaught exception too; only a SIGKILL loses the last second.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  const timer = setInterval(() => {
    try {
      destination.flush();
    } catch {
      // A closed stdout: nothing to flush to.
    }
  }, LOG_FLUSH_MS);
  timer.unref();
  return pino(
    {
      level,
      base: { service: 'locus' },
      redact: { paths: ['req.headers.authorization', '*.authorization', '*.nhsNumber', '*.body'], censor: '[redacted]' },
    },
    destination,
  );
}
