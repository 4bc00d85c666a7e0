import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { FhirError } from './errors';
import { createFastLane } from './fast-lane';
import { acceptable, frontMatter } from './http';
import type { AppDeps, RouteDef } from './pipeline';
import { runRoute, sendError } from './pipeline';
import { fhirRoutes } from './routes';

/** Routes other capabilities add (audit review, consent, $resolve, ...), in front of the generic ones. */
export interface AppExtension {
  routes?: RouteDef[];
  /** Plain express routes outside the FHIR pipeline (pages, DICOMweb gateway); they audit themselves. */
  mount?(app: express.Express, deps: AppDeps): void;
}

export function allRoutes(extensions: AppExtension[]): RouteDef[] {
  return [...extensions.flatMap((e) => e.routes ?? []), ...fhirRoutes];
}

export function createApp(deps: AppDeps, extensions: AppExtension[] = []): express.Express {
  return buildApp(deps, extensions).app;
}

type Layer = { route?: { path: string; methods: Record<string, boolean> } };

function buildApp(deps: AppDeps, extensions: AppExtension[]): { app: express.Express; claims: (method: string, path: string) => boolean } {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.set('etag', false);

  app.use((req: Request, res: Response, next: NextFunction) => {
    frontMatter(req, res, deps.logger, () => (req.route as { path?: string } | undefined)?.path);
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.db.query('select 1');
      res.json({ status: 'ready', database: deps.db.kind });
    } catch {
      res.status(503).json({ status: 'unavailable', database: deps.db.kind });
    }
  });
  app.get('/.well-known/smart-configuration', (_req, res) => {
    res.json({
      issuer: deps.config.trustedIssuers[0]?.issuer,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      grant_types_supported: ['client_credentials'],
      scopes_supported: ['system/ImagingStudy.cruds', 'system/DocumentReference.cruds', 'user/ImagingStudy.rs', 'user/DocumentReference.rs', 'user/AuditEvent.rs', 'system/Organization.cruds', 'system/Endpoint.cruds'],
      capabilities: ['client-confidential-asymmetric', 'permission-v2'],
      token_endpoint: `${deps.config.baseUrl}/token-not-issued-here`,
    });
  });

  const accept = (req: Request, res: Response, next: NextFunction): void => {
    if (!acceptable(req.header('accept'))) {
      sendError(res, new FhirError(406, 'not-supported', 'this registry answers in JSON only: Accept application/fhir+json', 'INVALID_PARAMETER'), res.getHeader('x-request-id') as string);
      return;
    }
    next();
  };
  app.use('/fhir', accept, express.text({ type: () => true, limit: deps.config.maxBodyBytes }));

  for (const e of extensions) e.mount?.(app, deps);
  const claims = mountedFhirRoutes(app);
  for (const route of allRoutes(extensions)) app[route.method](route.path, runRoute(route, deps));

  app.use('/fhir', (req: Request, res: Response) => {
    sendError(res, new FhirError(req.method === 'GET' ? 404 : 405, 'not-supported', `${req.method} ${req.path.slice(0, 100)} is not an interaction this registry serves`, 'INVALID_REQUEST_TYPE'), res.getHeader('x-request-id') as string);
  });

  // Body parser failures: too large (413) or unreadable (400), as OperationOutcomes.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; status?: number };
    const requestId = res.getHeader('x-request-id') as string;
    if (e.type === 'entity.too.large') {
      sendError(res, new FhirError(413, 'too-costly', `the body is larger than ${deps.config.maxBodyBytes} bytes`, 'PAYLOAD_TOO_LARGE'), requestId);
      return;
    }
    if (e.status && e.status >= 400 && e.status < 500) {
      sendError(res, new FhirError(400, 'invalid', 'the request body could not be read', 'MESSAGE_NOT_WELL_FORMED'), requestId);
      return;
    }
    next(err);
  });
  return { app, claims };
}

/**
 * Paths under /fhir that extensions mounted as plain express routes (the streamed AuditEvent
 * export): express must see those requests first. Mounted paths are literal, so an exact
 * comparison is enough.
 */
function mountedFhirRoutes(app: express.Express): (method: string, path: string) => boolean {
  const stack = (app.router as unknown as { stack: Layer[] }).stack;
  const claimed = new Set(stack.flatMap((l) => (l.route && l.route.path.startsWith('/fhir') ? Object.keys(l.route.methods).map((m) => `${m} ${l.route?.path as string}`) : [])));
  return (method, path) => claimed.has(`${method} ${path}`);
}

/**
 * The server's request listener: bodiless FHIR requests take the fast lane (fast-lane.ts), the
 * rest go to express. Both serve the same route table through the same pipeline.
 */
export function createHandler(deps: AppDeps, extensions: AppExtension[] = []): RequestListener {
  const { app, claims } = buildApp(deps, extensions);
  const lane = createFastLane(allRoutes(extensions), deps, claims);
  return (req: IncomingMessage, res: ServerResponse) => {
    if (!lane(req, res)) app(req, res);
  };
}
