import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Express, Request, Response } from 'express';
import { VIEWER_CSS } from './viewer-view';

/** nhsuk-frontend's compiled stylesheet and icons, served from node_modules under /viewer/assets. */
const NHSUK_DIST = join(dirname(require.resolve('nhsuk-frontend/package.json')), 'dist', 'nhsuk');

let nhsukCss: string | undefined;

function stylesheet(): string {
  // The stylesheet points at /assets/images/...; this page serves them under /viewer/assets/.
  nhsukCss ??= readFileSync(join(NHSUK_DIST, 'nhsuk-frontend.min.css'), 'utf8').replaceAll('url(/assets/', 'url(/viewer/assets/');
  return nhsukCss;
}

function cacheable(res: Response, type: string): void {
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'public, max-age=3600');
}

export function mountViewerAssets(app: Express): void {
  app.get('/viewer/assets/nhsuk-frontend.min.css', (_req: Request, res: Response) => {
    cacheable(res, 'text/css; charset=utf-8');
    res.send(stylesheet());
  });
  app.get('/viewer/assets/viewer.css', (_req: Request, res: Response) => {
    cacheable(res, 'text/css; charset=utf-8');
    res.send(VIEWER_CSS);
  });
  app.get('/viewer/assets/images/:name', (req: Request, res: Response) => {
    const name = String(req.params.name);
    let svg: Buffer | undefined;
    if (/^[a-z0-9-]{1,64}\.svg$/.test(name)) {
      try {
        svg = readFileSync(join(NHSUK_DIST, 'assets', 'images', name));
      } catch {
        svg = undefined;
      }
    }
    if (!svg) {
      res.status(404).end();
      return;
    }
    cacheable(res, 'image/svg+xml');
    res.send(svg);
  });
}
