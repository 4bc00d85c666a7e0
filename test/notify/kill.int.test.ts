import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadDevIssuer } from '../../src/access/dev-issuer';
import type { DevIssuer } from '../../src/access/dev-issuer';
import { parseScopes } from '../../src/access/principal';
import { imagingStudyDef } from '../../src/registry/resource-types';
import { writeResources } from '../../src/registry/write-engine';
import type { Database } from '../../src/store/database';
import { openDatabase } from '../../src/store/open';
import { PgDatabase } from '../../src/store/pg-database';
import { aStudy, get, patient, post, registerNetwork } from '../helpers/fixtures';
import type { TestServer } from '../helpers/server';
import { readNotification, waitFor } from './receiver';
import type { Notification } from './receiver';
import { aSubscription } from './support';

/**
 * Issue 7, the hard way: Locus runs as its own process (`locus serve`) and is killed with SIGKILL
 * while a notification POST is in flight and pointers are still being published; nothing is
 * closed, no lease is given back. Pointers are then committed while no Locus runs (straight into
 * the database, as a node that crashed after commit would leave them), and a new process starts
 * over the same database. It must take over the dead node's lease once it expires and redeliver
 * from the last acknowledged event: the receiver ends with every event number 1..N, first
 * deliveries in order (repeats are allowed: at-least-once).
 *
 * On PostgreSQL the children share a fresh schema (search_path set by `options` in DATABASE_URL).
 * On the embedded database the children share a PGlite data directory: a SIGKILLed PGlite
 * directory reopens (PostgreSQL's crash recovery, run in WebAssembly), so the same test runs; the
 * test opens the directory itself only while no child runs (PGlite is single-process).
 */

const AUDIENCE = 'urn:locus:kill-test';
const LEASE_MS = 1500;
const ROOT = join(__dirname, '..', '..');

interface Child {
  proc: ChildProcess;
  url: string;
  output: () => string;
}

/** A rest-hook endpoint on loopback that can hold its answers: the sender then has a POST in flight. */
class HoldingReceiver {
  notifications: (Notification & { at: number })[] = [];
  /** Once this many event numbers have arrived, requests are recorded but not answered. */
  holdAfter = Number.POSITIVE_INFINITY;
  held: ServerResponse[] = [];
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const n = readNotification(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
        const before = this.notifications.flatMap((x) => x.events).length;
        this.notifications.push({ ...n, at: Date.now() });
        if (n.events.length > 0 && before >= this.holdAfter) {
          this.held.push(res); // received (and kept), never acknowledged
          return;
        }
        res.statusCode = 200;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  release(): void {
    this.holdAfter = Number.POSITIVE_INFINITY;
    for (const r of this.held.splice(0)) if (!r.destroyed) r.destroy();
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    this.release();
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/notify`;
  }

  of(id: string): (Notification & { at: number })[] {
    return this.notifications.filter((n) => n.subscription.endsWith(`/Subscription/${id}`));
  }

  eventNumbers(id: string): number[] {
    return this.of(id).flatMap((n) => n.events.map((e) => e.number));
  }

  foci(id: string): Set<string> {
    return new Set(this.of(id).flatMap((n) => n.events.map((e) => /\/ImagingStudy\/([^/]+)\/_history\//.exec(e.focus)?.[1] ?? e.focus)));
  }
}

describe('notification delivery survives a SIGKILL of the Locus process', () => {
  const children = new Set<ChildProcess>();
  const dataDir = mkdtempSync(join(tmpdir(), 'locus-kill-'));
  const databaseUrl = process.env.DATABASE_URL;
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const receiver = new HoldingReceiver();
  /** Direct connection of the test: held throughout on PostgreSQL; opened between children on PGlite. */
  let direct: Database | undefined;
  let issuer: DevIssuer;

  const childDatabaseUrl = (): string | undefined => {
    if (!databaseUrl) return undefined;
    const options = encodeURIComponent(`-c search_path=${schema}`);
    return `${databaseUrl}${databaseUrl.includes('?') ? '&' : '?'}options=${options}`;
  };

  const openDirect = async (): Promise<Database> =>
    databaseUrl ? openDatabase({ databaseUrl, searchPath: schema, poolSize: 2 }) : openDatabase({ dataDir });

  /** `locus serve --no-demo` in its own process, on a free port, over the shared database. */
  const startChild = async (): Promise<Child> => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOCUS_DATA_DIR: dataDir,
      LOCUS_LOG_LEVEL: 'warn',
      LOCUS_AUDIENCE: AUDIENCE,
      // The dev issuer keeps its key in memory with DATABASE_URL: trust the test's issuer explicitly.
      LOCUS_DEV_ISSUER: 'false',
      LOCUS_TRUSTED_ISSUERS: JSON.stringify([issuer.trusted]),
      LOCUS_NOTIFY_ALLOW_HTTP: 'true',
      LOCUS_NOTIFY_ALLOW_PRIVATE: 'true',
      LOCUS_NOTIFY_POLL_MS: '20',
      LOCUS_NOTIFY_BACKOFF_MS: '40',
      LOCUS_NOTIFY_BACKOFF_MAX_MS: '200',
      LOCUS_NOTIFY_MAX_FAILURES: '1000',
      LOCUS_NOTIFY_LEASE_MS: String(LEASE_MS),
      LOCUS_NOTIFY_TIMEOUT_MS: '5000',
      LOCUS_NOTIFY_BATCH: '5',
    };
    const url = childDatabaseUrl();
    if (url) env.DATABASE_URL = url;
    else delete env.DATABASE_URL;
    const proc = spawn(process.execPath, ['bin/locus.js', 'serve', '--no-demo'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const listening = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`locus did not start within 20 s:\n${out}`)), 20000);
      const onData = (): void => {
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      };
      proc.stdout?.on('data', onData);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`locus exited (${code ?? signal}) before listening:\n${out}`));
      });
    });
    return { proc, url: listening, output: () => out };
  };

  const sigkill = async (c: Child): Promise<void> => {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) throw new Error(`locus had already exited:\n${c.output()}`);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => c.proc.once('exit', (_code, signal) => resolve(signal)));
    c.proc.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
  };

  const serverOf = (c: Child): TestServer =>
    ({ baseUrl: c.url, tokenFor: (org: string, role: 'admin' | 'publisher' | 'system', extra?: Record<string, string>) => issuer.mint({ org, role, audience: AUDIENCE, ...extra }) }) as unknown as TestServer;

  beforeAll(async () => {
    issuer = await loadDevIssuer();
    if (databaseUrl) {
      const admin = new PgDatabase(databaseUrl, { max: 1 });
      await admin.exec(`create schema ${schema}`);
      await admin.close();
    }
    // Migrated, with RRK's agreement to share with the shared care record, before any Locus runs
    // (the children load it with the organisations the test registers through the API).
    direct = await openDirect();
    await direct.query(
      `insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description)
       values ('rrk-scr', 'RRK', 'SCR01', '{}', now() - interval '1 day', null, 'RRK shares with the shared care record')`,
    );
    if (!databaseUrl) {
      await direct.close();
      direct = undefined;
    }
    await receiver.start();
  });

  afterAll(async () => {
    for (const p of children) p.kill('SIGKILL');
    await Promise.all([...children].map((p) => new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve(undefined) : p.once('exit', resolve)))));
    await receiver.stop();
    await direct?.close();
    if (databaseUrl) {
      const a = new PgDatabase(databaseUrl, { max: 1 });
      await a.exec(`drop schema if exists ${schema} cascade`);
      await a.close();
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('when Locus is SIGKILLed mid-delivery and a new process starts over the same database, then the receiver has every event, in order', async () => {
    let current = await startChild();
    const net = await registerNetwork(serverOf(current), [{ ods: 'RRK' }, { ods: 'SCR01', kind: 'shared-care-record' }]);
    const nhs = patient(37);
    const scr = await issuer.mint({ org: 'SCR01', role: 'system', audience: AUDIENCE, scope: 'system/Subscription.cruds' });
    const rrk = await issuer.mint({ org: 'RRK', role: 'publisher', audience: AUDIENCE });
    const created = await post(serverOf(current), scr, '/fhir/Subscription', aSubscription({ endpoint: receiver.url, patient: nhs }));
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await waitFor('handshake', () => receiver.of(id).find((n) => n.type === 'handshake'));

    // Pointers acknowledged 201 (their events must arrive), and requests cut off by a kill (they
    // may or may not have committed, so they may or may not have made an event).
    const acknowledged: string[] = [];
    let uncertain = 0;
    let publishing = false;
    const publisher = async (): Promise<void> => {
      const c = current;
      while (publishing) {
        try {
          const r = await post(serverOf(c), rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId }));
          if (r.status !== 201) throw new Error(`publish answered ${r.status}: ${r.text}`);
          acknowledged.push(r.body.id as string);
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (!code) throw e;
          // The process died under the request.
          if (code !== 'ECONNREFUSED') uncertain++;
          return;
        }
      }
    };
    const publishUntil = async (what: string, done: () => boolean): Promise<void> => {
      publishing = true;
      const p = publisher();
      try {
        await waitFor(what, () => done(), 20000);
      } finally {
        publishing = false;
        await p;
      }
    };
    const eventsSeen = (): number => new Set(receiver.eventNumbers(id)).size;

    // 1. A stream of pointers. Once 12 events have arrived the receiver stops answering, so the
    //    next notification POST is in flight; publishing carries on. SIGKILL while both are under way.
    receiver.holdAfter = 12;
    publishing = true;
    let running = publisher();
    await waitFor('a notification in flight', () => receiver.held.length > 0 && acknowledged.length >= 20, 20000);
    await sigkill(current);
    publishing = false;
    await running;
    const heldEvents = receiver.held.length;
    expect(heldEvents).toBeGreaterThan(0);

    // 2. Committed while no Locus runs: the outbox holds them. (On PGlite the test reopens the
    //    SIGKILLed data directory here: crash recovery.) The dead process's lease is still set.
    const db = direct ?? (await openDirect());
    const asRrk = { subject: 'pacs', issuer: 'test', organization: 'RRK', role: 'publisher' as const, scopes: parseScopes('system/ImagingStudy.cruds'), purposeOfUse: 'TREAT' };
    const written = await db.transaction((tx) =>
      writeResources(tx, asRrk, Array.from({ length: 10 }, () => ({ method: 'POST' as const, def: imagingStudyDef, resource: aStudy({ nhs, endpointId: net.RRK!.endpointId }), at: 'ImagingStudy' }))),
    );
    acknowledged.push(...written.map((w) => w.id));
    const row = await db.query<{ lease_until: Date | string | null; last_delivered: number }>('select lease_until, last_delivered from subscription where id = $1', [id]);
    const deadLease = row.rows[0]?.lease_until;
    expect(deadLease).not.toBeNull();
    const unacknowledged = Number(row.rows[0]?.last_delivered) + 1;
    if (!direct) await db.close();

    // 3. A new process over the same database, the receiver answering again. It takes the dead
    //    lease over once it expires and redelivers from the last acknowledged event. Meanwhile the
    //    receiver drops dead and comes back on its port, and publishing goes on.
    receiver.release();
    current = await startChild();
    publishing = true;
    running = publisher();
    await waitFor('the unacknowledged event again', () => receiver.eventNumbers(id).filter((n) => n === unacknowledged).length >= 2, 20000);
    await receiver.stop();
    const whileDown = acknowledged.length;
    await waitFor('publishing while the receiver is down', () => acknowledged.length >= whileDown + 5, 20000);
    await receiver.start();

    // 4. SIGKILL again, this time wherever the process happens to be (publishing, dispatching,
    //    delivering), once the receiver has taken some of the new events; a third process finishes.
    const seen = eventsSeen();
    await waitFor('delivery after the receiver came back', () => eventsSeen() >= seen + 3 && acknowledged.length >= whileDown + 10, 20000);
    await sigkill(current);
    publishing = false;
    await running;
    current = await startChild();
    await publishUntil('5 more pointers', () => acknowledged.length >= whileDown + 15);

    // Every event by number, first deliveries in order, every acknowledged pointer among them.
    const status = async (): Promise<number> => {
      const r = await get(serverOf(current), scr, `/fhir/Subscription/${id}/$status`);
      expect(r.status).toBe(200);
      const p = (r.body.entry[0].resource.parameter as { name: string; valueString?: string }[]).find((x) => x.name === 'events-since-subscription-start');
      return Number(p?.valueString);
    };
    const minimum = acknowledged.length;
    await waitFor(`${minimum} events delivered`, () => eventsSeen() >= minimum, 20000);
    const total = await status();
    expect(total).toBeGreaterThanOrEqual(minimum);
    expect(total).toBeLessThanOrEqual(minimum + uncertain);
    await waitFor(`${total} events delivered`, () => eventsSeen() >= total, 10000);
    const numbers = receiver.eventNumbers(id);
    const unique = [...new Set(numbers)];
    expect(unique).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const foci = receiver.foci(id);
    expect(acknowledged.filter((a) => !foci.has(a))).toEqual([]);
    // The batch in flight at the first kill was never acknowledged: it came again (at-least-once),
    // and not before the dead process's lease ran out.
    const redelivered = receiver.of(id).filter((n) => n.events.some((e) => e.number === unacknowledged));
    expect(redelivered.length).toBeGreaterThanOrEqual(2);
    expect(redelivered[1]!.at).toBeGreaterThanOrEqual(new Date(deadLease as Date | string).getTime() - 5);
    expect(receiver.of(id).every((n) => ['handshake', 'event-notification'].includes(n.type))).toBe(true);
    await sigkill(current);
  }, 60000);
});
