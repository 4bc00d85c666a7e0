import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Notification {
  subscription: string;
  type: string;
  eventsSinceStart: number;
  events: { number: number; focus: string }[];
  bundle: Record<string, unknown>;
}

type Param = { name: string; valueString?: string; valueCode?: string; valueReference?: { reference: string }; part?: Param[] };

export function readNotification(bundle: Record<string, unknown>): Notification {
  const entries = bundle.entry as { resource: { resourceType: string; parameter: Param[] } }[];
  const params = entries[0]?.resource.parameter ?? [];
  const get = (n: string): Param | undefined => params.find((p) => p.name === n);
  return {
    subscription: get('subscription')?.valueReference?.reference ?? '',
    type: get('type')?.valueCode ?? '',
    eventsSinceStart: Number(get('events-since-subscription-start')?.valueString),
    events: params
      .filter((p) => p.name === 'notification-event')
      .map((p) => ({
        number: Number(p.part?.find((x) => x.name === 'event-number')?.valueString),
        focus: p.part?.find((x) => x.name === 'focus')?.valueReference?.reference ?? '',
      })),
    bundle,
  };
}

/** A real rest-hook endpoint on loopback: records every notification, can fail, stall, die and come back on its port. */
export class Receiver {
  notifications: Notification[] = [];
  mode: 'ok' | 'fail' = 'ok';
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.mode === 'fail') {
          res.statusCode = 500;
          res.end();
          return;
        }
        this.notifications.push(readNotification(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>));
        res.statusCode = 200;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/notify`;
  }

  eventNumbers(subscriptionId: string): number[] {
    return this.notifications.filter((n) => n.subscription.endsWith(`/Subscription/${subscriptionId}`)).flatMap((n) => n.events.map((e) => e.number));
  }

  of(subscriptionId: string, type?: string): Notification[] {
    return this.notifications.filter((n) => n.subscription.endsWith(`/Subscription/${subscriptionId}`) && (!type || n.type === type));
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
