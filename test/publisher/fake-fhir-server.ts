/**
 * A small fake Locus FHIR server on 127.0.0.1 (real sockets) for publisher tests: it checks the
 * transaction Bundles it receives, answers with the transaction-response format the registry
 * uses (Spine RESOURCE_CREATED / RESOURCE_UPDATED / RESOURCE_UNCHANGED outcomes), and can fail
 * on demand (429 with Retry-After, 503, 422 for a chosen study).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFailure { status: number; retryAfter?: string }
export interface ReceivedTransaction { bundle: { type: string; entry: Array<{ request: { method: string; url: string }; resource: Record<string, unknown> }> }; authorization?: string }

const SPINE = 'https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode';
const outcome = (code: string): object => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'information', code: 'informational', details: { coding: [{ system: SPINE, code }] } }],
});

export class FakeFhirServer {
  readonly transactions: ReceivedTransaction[] = [];
  readonly searches: string[] = [];
  readonly stored = new Map<string, string>();
  failures: FakeFailure[] = [];
  /** Transactions containing this study UID are rejected with 422 (a profile failure). */
  rejectStudyUid?: string;
  expectedToken = 'test-token';
  tokenRequests = 0;
  endpointAddress = 'http://pacs.rrk.test/dicom-web';
  private server?: http.Server;
  baseUrl = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  get fhirBase(): string {
    return `${this.baseUrl}/fhir`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/fhir+json', ...headers });
    res.end(JSON.stringify(body));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.baseUrl);
    if (req.method === 'POST' && url.pathname === '/token') {
      this.tokenRequests++;
      const ok = req.headers.authorization === `Basic ${Buffer.from('client-1:secret-1').toString('base64')}` && body === 'grant_type=client_credentials';
      return ok ? this.send(res, 200, { access_token: this.expectedToken, token_type: 'Bearer', expires_in: 300 }) : this.send(res, 401, { error: 'invalid_client' });
    }
    if (req.headers.authorization !== `Bearer ${this.expectedToken}`) return this.send(res, 401, outcome('ACCESS_DENIED'));
    if (req.method === 'GET' && url.pathname === '/fhir/Endpoint') {
      this.searches.push(url.search);
      return this.send(res, 200, { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Endpoint', id: 'ep-rrk', status: 'active', address: this.endpointAddress } }] });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/fhir/Endpoint/')) {
      return this.send(res, 200, { resourceType: 'Endpoint', id: url.pathname.split('/').pop(), address: this.endpointAddress });
    }
    // fhir-kit-client posts transactions to the base with a trailing slash.
    if (req.method === 'POST' && (url.pathname === '/fhir' || url.pathname === '/fhir/')) return this.transaction(JSON.parse(body), req, res);
    return this.send(res, 404, outcome('NO_RECORD_FOUND'));
  }

  private transaction(bundle: ReceivedTransaction['bundle'], req: http.IncomingMessage, res: http.ServerResponse): void {
    this.transactions.push({ bundle, authorization: req.headers.authorization });
    const failure = this.failures.shift();
    if (failure) return this.send(res, failure.status, outcome('INTERNAL_SERVER_ERROR'), failure.retryAfter ? { 'retry-after': failure.retryAfter } : {});
    if (this.rejectStudyUid && JSON.stringify(bundle).includes(this.rejectStudyUid)) {
      return this.send(res, 422, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing', diagnostics: 'subject 9990000018 bad', details: { coding: [{ system: SPINE, code: 'INVALID_RESOURCE' }] }, expression: ['ImagingStudy.series'] }] });
    }
    if (bundle.type !== 'transaction') return this.send(res, 400, outcome('MESSAGE_NOT_WELL_FORMED'));
    const entry = bundle.entry.map((e) => {
      const text = JSON.stringify(e.resource);
      const before = this.stored.get(e.request.url);
      this.stored.set(e.request.url, text);
      const code = before === undefined ? 'RESOURCE_CREATED' : before === text ? 'RESOURCE_UNCHANGED' : 'RESOURCE_UPDATED';
      return { response: { status: before === undefined ? '201 Created' : '200 OK', outcome: outcome(code) } };
    });
    this.send(res, 200, { resourceType: 'Bundle', type: 'transaction-response', entry });
  }
}

/** Captures what runPublish writes. */
export function captureIo(isTTY = false): { io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean }; isTTY: boolean }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s) => { out += s; return true; } }, stderr: { write: (s) => { err += s; return true; } }, isTTY },
    out: () => out,
    err: () => err,
  };
}
