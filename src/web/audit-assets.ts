import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Express, Request, Response } from 'express';
import { AUDIT_CSS } from './audit-page-view';

/** nhsuk-frontend's compiled stylesheet and icons, served from node_modules under /audit/assets. */
const NHSUK_DIST = join(dirname(require.resolve('nhsuk-frontend/package.json')), 'dist', 'nhsuk');

let nhsukCss: string | undefined;

function stylesheet(): string {
  // The stylesheet points at /assets/images/...; this page serves them under /audit/assets/.
  nhsukCss ??= readFileSync(join(NHSUK_DIST, 'nhsuk-frontend.min.css'), 'utf8').replaceAll('url(/assets/', 'url(/audit/assets/');
  return nhsukCss;
}

function cacheable(res: Response, type: string): void {
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'public, max-age=3600');
}

export function mountAuditAssets(app: Express): void {
  app.get('/audit/assets/nhsuk-frontend.min.css', (_req: Request, res: Response) => {
    cacheable(res, 'text/css; charset=utf-8');
    res.send(stylesheet());
  });
  app.get('/audit/assets/audit.css', (_req: Request, res: Response) => {
    cacheable(res, 'text/css; charset=utf-8');
    res.send(AUDIT_CSS);
  });
  app.get('/audit/assets/images/:name', (req: Request, res: Response) => {
    const name = String(req.params.name);
    if (!/^[a-z0-9-]{1,64}\.svg$/.test(name)) {
      res.status(404).end();
      return;
    }
    let svg: Buffer;
    try {
      svg = readFileSync(join(NHSUK_DIST, 'assets', 'images', name));
    } catch {
      res.status(404).end();
      return;
    }
    cacheable(res, 'image/svg+xml');
    res.send(svg);
  });
}
