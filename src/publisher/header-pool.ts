import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { instancePartsOf } from '../dicom/extract';
import { readPart10Header } from '../dicom/part10';
import type { HeaderResult } from './header-worker';

/**
 * Reads DICOM headers for `--from-dir` in batches of paths. Each result is the instance's parts
 * (undefined: DICOM, but not an instance of a study) or why the file could not be read.
 */
export interface HeaderReader {
  readBatch(files: string[]): Promise<HeaderResult[]>;
  close(): Promise<void>;
}

export function readHeaders(files: string[]): HeaderResult[] {
  return files.map((file) => {
    try {
      return { parts: instancePartsOf(readPart10Header(file)) };
    } catch (err) {
      return { error: err instanceof Error ? (err.message.split('\n')[0] ?? 'unreadable') : String(err) };
    }
  });
}

/** On the calling thread, with blocking reads (a header is a few hundred microseconds). */
export function inThreadReader(): HeaderReader {
  return { readBatch: async (files) => readHeaders(files), close: async () => undefined };
}

/**
 * Spreads batches over `size` worker threads, round robin, so that walking the folders, parsing
 * headers and publishing overlap on a multi-core machine. From TypeScript sources (development,
 * tests) a worker registers tsx before loading its file; from dist/ it loads the compiled one.
 */
export function workerPoolReader(size: number): HeaderReader {
  const ts = __filename.endsWith('.ts');
  const script = path.join(__dirname, `header-worker${ts ? '.ts' : '.js'}`);
  if (!existsSync(script)) return inThreadReader();
  const pending = new Map<number, { resolve(r: HeaderResult[]): void; reject(e: Error): void }>();
  const failAll = (err: Error): void => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const workers = Array.from({ length: size }, () => {
    const w = ts ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(script)});`, { eval: true }) : new Worker(script);
    w.on('message', (reply: { id: number; results: HeaderResult[] }) => {
      const p = pending.get(reply.id);
      pending.delete(reply.id);
      p?.resolve(reply.results);
    });
    w.on('error', failAll);
    w.on('exit', (code) => {
      if (code !== 0) failAll(new Error(`a header-reading worker stopped (exit ${code})`));
    });
    return w;
  });
  let next = 0;
  return {
    readBatch(files: string[]): Promise<HeaderResult[]> {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        (workers[id % workers.length] as Worker).postMessage({ id, files });
      });
    },
    async close(): Promise<void> {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
