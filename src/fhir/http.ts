import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log';

/**
 * What the FHIR pipeline reads of an HTTP request. express's Request has all of it; the fast lane
 * (fast-lane.ts) builds a plain object with just these fields for requests that skip express.
 */
export interface HttpRequest {
  readonly method: string;
  /** The path as sent, without the query string. */
  readonly path: string;
  /** The path and query string as sent. */
  readonly originalUrl: string;
  /** Route parameters, percent-decoded. */
  readonly params: Record<string, string | string[]>;
  /** Query parameters as node's querystring parses them (a repeated name gives an array). */
  readonly query: Record<string, unknown>;
  readonly headers: IncomingHttpHeaders;
  header(name: string): string | undefined;
  /** The body text (POST and PUT); undefined when the request has none. */
  readonly body?: unknown;
  /** The client's address, through a proxy on this host (trust proxy: loopback). */
  readonly ip?: string;
}

const REQUEST_ID = /^[A-Za-z0-9\-._:]{1,128}$/;

export function requestIdOf(req: { header(name: string): string | undefined }): string {
  const given = req.header('x-request-id');
  return given && REQUEST_ID.test(given) ? given : randomUUID();
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * The client address as express computes it with `trust proxy` = loopback: the socket's peer,
 * or, when that is a proxy on this host, the nearest X-Forwarded-For hop that is not loopback.
 */
export function clientIp(socketAddress: string | undefined, forwardedFor: string | undefined): string | undefined {
  if (socketAddress === undefined || !forwardedFor || !isLoopback(socketAddress)) return socketAddress;
  const hops = forwardedFor.split(',').map((h) => h.trim()).filter((h) => h !== '');
  let ip = socketAddress;
  for (let i = hops.length - 1; i >= 0 && isLoopback(ip); i--) ip = hops[i] as string;
  return ip;
}

/**
 * Headers every response carries and the one log line per request, for both express and the fast
 * lane. The log names the route pattern, never the URL: query strings carry NHS numbers.
 */
export function frontMatter(req: IncomingMessage, res: ServerResponse, logger: Logger, route: () => string | undefined): string {
  const header = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const requestId = requestIdOf({ header });
  res.setHeader('x-request-id', requestId);
  const correlation = header('x-correlation-id');
  if (correlation && REQUEST_ID.test(correlation)) res.setHeader('x-correlation-id', correlation);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('cache-control', 'no-store');
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    logger.info({ requestId, method: req.method, route: route() ?? 'unmatched', status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
  });
  return requestId;
}

const ACCEPTED = /(\*\/\*|application\/(fhir\+)?json|application\/\*|text\/csv|application\/x-ndjson|application\/fhir\+ndjson)/i;

/** Whether the Accept header allows an answer this registry can give (JSON, or CSV/NDJSON exports). */
export function acceptable(accept: string | undefined): boolean {
  return !accept || ACCEPTED.test(accept);
}
