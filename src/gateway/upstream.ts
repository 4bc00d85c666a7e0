import type { Response } from 'express';
import { FhirError } from '../fhir/errors';
import { get } from './http1-client';
import type { UpstreamResponse } from './http1-client';

/** How much of the PACS's answer may wait for a slow client before the PACS is paused. */
const BUFFER_BYTES = 1024 * 1024;

/** Response headers a client of the gateway needs; hop-by-hop and server-private ones stay behind. */
const PASSED = ['content-type', 'content-length', 'content-encoding', 'content-language', 'etag', 'last-modified', 'warning'];

export interface ForwardRequest {
  url: URL;
  headers: Record<string, string>;
  timeoutMs: number;
  res: Response;
  /** Called once the upstream answered 2xx and its headers are about to be sent: the last moment to refuse. */
  beforeStream(): Promise<void>;
}

export interface ForwardResult {
  /** The status the client was sent (or would have been, for an error sent as an OperationOutcome). */
  status: number;
  bytes: number;
  /** The whole body reached the client. */
  complete: boolean;
  error?: FhirError;
  /** Why a stream ended early (client gone, upstream failed or went silent). */
  reason?: string;
}

export class UpstreamTimeout extends Error {}

function upstreamError(e: unknown, timeoutMs: number): FhirError {
  if (e instanceof UpstreamTimeout) return new FhirError(504, 'timeout', `the custodian's PACS did not answer within ${timeoutMs} ms`, 'SERVICE_UNAVAILABLE');
  const code = (e as { code?: unknown }).code;
  return new FhirError(502, 'transient', `the custodian's PACS could not be reached${typeof code === 'string' ? ` (${code})` : ''}`, 'SERVICE_UNAVAILABLE');
}

function statusError(status: number): FhirError {
  if (status === 404) return new FhirError(404, 'not-found', "the custodian's PACS does not hold this resource", 'NO_RECORD_FOUND');
  if (status === 406) return new FhirError(406, 'not-supported', "the custodian's PACS cannot answer in the media type asked for (Accept)", 'INVALID_PARAMETER');
  return new FhirError(502, 'transient', `the custodian's PACS answered HTTP ${status}`, 'SERVICE_UNAVAILABLE');
}

/**
 * Forwards one GET to the custodian's PACS and streams its answer through chunk by chunk,
 * pausing the upstream socket while the client lags (backpressure), so a study is never held
 * in memory. A client that goes away destroys the
 * upstream request. Silence longer than `timeoutMs` (before or during the body) ends it.
 */
export function forwardStream(f: ForwardRequest): Promise<ForwardResult> {
  return new Promise<ForwardResult>((resolve) => {
    let settled = false;
    const done = (r: ForwardResult): void => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const upstream = get(f.url, f.headers, { borrow: true });
    upstream.setTimeout(f.timeoutMs, () => upstream.destroy(new UpstreamTimeout()));
    let clientGone = false;
    let upstreamFailure: string | undefined;
    const onClientClose = (): void => {
      if (f.res.writableFinished) return;
      clientGone = true;
      upstream.destroy();
    };
    f.res.once('close', onClientClose);
    upstream.on('error', (e) => {
      upstreamFailure = e instanceof UpstreamTimeout ? "the custodian's PACS went silent" : "the custodian's PACS stream failed";
      if (!f.res.headersSent) done({ status: 0, bytes: 0, complete: false, error: upstreamError(e, f.timeoutMs), reason: upstreamFailure });
    });
    upstream.on('response', (up: UpstreamResponse) => {
      const status = up.statusCode ?? 502;
      if (status < 200 || status >= 300) {
        up.resume(); // discard the PACS's error body
        done({ status, bytes: 0, complete: false, error: statusError(status) });
        return;
      }
      let bytes = 0;
      let waitingForClient = false;
      // From here, silence counts only while the client is keeping up: a paused upstream
      // (backpressure from a slow client) is not a stalled one.
      upstream.setTimeout(0);
      const stall = setTimeout(function check() {
        if (waitingForClient) stall.refresh();
        else upstream.destroy(new UpstreamTimeout());
      }, f.timeoutMs);
      up.once('close', () => clearTimeout(stall));
      up.pause();
      f.beforeStream().then(
        () => {
          if (settled) return;
          if (f.res.destroyed) {
            upstream.destroy();
            done({ status, bytes: 0, complete: false, reason: 'the client went away' });
            return;
          }
          f.res.status(status);
          for (const h of PASSED) {
            const v = up.headers[h];
            if (v !== undefined) f.res.setHeader(h, v);
          }
          // A PACS that ends its answer by closing the connection (Orthanc does for multipart
          // studies) is re-framed as chunked for the client: a transfer cut short then shows as
          // incomplete (no last chunk) instead of looking like a whole study (RFC 9112 §6.3, §7.1).
          const fail = (): void => {
            f.res.off('close', onClientClose);
            upstream.destroy();
            f.res.destroy();
            done({ status, bytes, complete: false, reason: clientGone ? 'the client went away' : upstreamFailure ?? 'the stream failed' });
          };
          // Backpressure with a bounded window instead of stream.pipeline's stop-and-go at the
          // socket's 16 KiB mark: the upstream pauses once BUFFER_BYTES wait for the client and
          // resumes when they have drained. Memory per transfer stays under BUFFER_BYTES + a chunk.
          // Chunks are lent by the upstream connection's pool: given back once written (http1-client.ts).
          up.on('data', (chunk: Buffer, release: () => void) => {
            bytes += chunk.length;
            stall.refresh();
            if (!f.res.write(chunk, () => release()) && f.res.writableLength >= BUFFER_BYTES) {
              waitingForClient = true;
              up.pause();
              f.res.once('drain', () => {
                waitingForClient = false;
                up.resume();
              });
            }
          });
          up.once('end', () => {
            f.res.end(() => {
              f.res.off('close', onClientClose);
              done({ status, bytes, complete: true });
            });
          });
          up.once('aborted', () => {
            upstreamFailure ??= "the custodian's PACS stream failed";
            fail();
          });
          up.once('error', (e) => {
            upstreamFailure ??= e instanceof UpstreamTimeout ? "the custodian's PACS went silent" : "the custodian's PACS stream failed";
            fail();
          });
          f.res.once('close', () => {
            if (!f.res.writableFinished) fail();
          });
          up.resume();
        },
        (e: unknown) => {
          upstream.destroy();
          done({ status, bytes: 0, complete: false, error: e instanceof FhirError ? e : new FhirError(503, 'transient', 'the audit trail cannot be written, so the request was refused; retry shortly', 'SERVICE_UNAVAILABLE') });
        },
      );
    });
  });
}
