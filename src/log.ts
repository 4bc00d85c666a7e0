import pino from 'pino';

/**
 * Structured logs. They carry request ids, routes, statuses and timings: never NHS numbers,
 * names, query strings or bodies (those belong to the audit trail only). Paths are logged with
 * their query string removed and ids of pointers kept (ids are not patient identifiers).
 */
export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'locus' },
    redact: { paths: ['req.headers.authorization', '*.authorization', '*.nhsNumber', '*.body'], censor: '[redacted]' },
  });
}
