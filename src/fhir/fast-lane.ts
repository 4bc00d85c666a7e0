import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import { FhirError } from './errors';
import type { HttpRequest } from './http';
import { acceptable, clientIp, frontMatter } from './http';
import type { AppDeps, RouteDef } from './pipeline';
import { runRoute, sendError } from './pipeline';

/**
 * The FHIR routes for requests without a body (GET, HEAD, DELETE), dispatched straight from
 * node:http. They are the hot path (patient searches, reads), and express's per-request work —
 * 50 layers walked, prototypes swapped on req and res, a body parser run for nothing — cost more
 * CPU than the search itself. The route table and `runRoute` are the same ones express serves, so
 * a request answers the same either way; whatever the lane does not take (bodies, pages, the
 * gateway, paths an extension mounted in express) goes on to express.
 */
export type FastLane = (req: IncomingMessage, res: ServerResponse) => boolean;

interface Compiled {
  route: RouteDef;
  /** Literal segments, or null where a `:name` parameter goes. */
  segments: (string | null)[];
  names: string[];
  handler: ReturnType<typeof runRoute>;
}

function compile(route: RouteDef, deps: AppDeps): Compiled {
  const parts = route.path.split('/').slice(1);
  return {
    route,
    segments: parts.map((p) => (p.startsWith(':') ? null : p)),
    names: parts.filter((p) => p.startsWith(':')).map((p) => p.slice(1)),
    handler: runRoute(route, deps),
  };
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

/** Matches `/fhir/ImagingStudy/abc` against compiled routes, as express would (first match in table order). */
function match(table: Compiled[], method: string, path: string): { c: Compiled; params: Record<string, string> } | undefined {
  const parts = path.split('/').slice(1);
  for (const c of table) {
    if (c.route.method !== method || c.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    let n = 0;
    for (let i = 0; i < parts.length && ok; i++) {
      const want = c.segments[i];
      const got = parts[i] as string;
      if (want === null) {
        if (got === '') ok = false;
        else {
          try {
            params[c.names[n++] as string] = decodeURIComponent(got);
          } catch {
            return undefined; // express answers an undecodable parameter itself
          }
        }
      } else if (want !== got) ok = false;
    }
    if (ok) return { c, params };
  }
  return undefined;
}

/**
 * `claimedByExpress(method, path)` names paths that express must see first (an extension mounted
 * a plain route there, such as the streamed AuditEvent export).
 */
export function createFastLane(routes: RouteDef[], deps: AppDeps, claimedByExpress: (method: string, path: string) => boolean): FastLane {
  const table = routes.filter((r) => r.method === 'get' || r.method === 'delete').map((r) => compile(r, deps));
  return (req, res) => {
    const url = req.url ?? '/';
    if (!url.startsWith('/fhir/') || hasBody(req)) return false;
    const method = req.method === 'HEAD' ? 'get' : (req.method ?? '').toLowerCase();
    if (method !== 'get' && method !== 'delete') return false;
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (claimedByExpress(method, path)) return false;
    const found = match(table, method, path);
    if (!found) return false;
    const headerOf = (name: string): string | undefined => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    const request: HttpRequest = {
      method: req.method ?? 'GET',
      path,
      originalUrl: url,
      params: found.params,
      query: q < 0 ? {} : parseQueryString(url.slice(q + 1)),
      headers: req.headers,
      header: headerOf,
      ip: clientIp(req.socket.remoteAddress, headerOf('x-forwarded-for')),
    };
    const requestId = frontMatter(req, res, deps.logger, () => found.c.route.path);
    if (!acceptable(headerOf('accept'))) {
      sendError(res, new FhirError(406, 'not-supported', 'this registry answers in JSON only: Accept application/fhir+json', 'INVALID_PARAMETER'), requestId);
      return true;
    }
    void found.c.handler(request, res);
    return true;
  };
}
