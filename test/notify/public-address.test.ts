import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { postNotification } from '../../src/notify/deliver';
import { isPublicAddress, publicOnly, refusedHost } from '../../src/notify/public-address';
import { parseSubscription } from '../../src/notify/subscription';
import { FhirError } from '../../src/fhir/errors';
import { aSubscription } from './support';

describe('rest-hook endpoints must be public addresses (no server-side request forgery)', () => {
  test.each([
    ['127.0.0.1'], ['10.2.3.4'], ['172.20.0.1'], ['192.168.1.10'], ['169.254.169.254'], ['100.64.0.1'], ['0.0.0.0'], ['224.0.0.1'], ['255.255.255.255'],
    ['::1'], ['::'], ['fe80::1'], ['fd12:3456::1'], ['::ffff:127.0.0.1'], ['::ffff:7f00:1'], ['64:ff9b::a00:1'], ['ff02::1'], ['2001:db8::1'],
  ])('when the address is %s, then it is not public', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  test.each([['8.8.8.8'], ['81.144.200.1'], ['2001:4860:4860::8888'], ['2a00:1450:4009:81f::200e']])('when the address is %s, then it is public', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  test('when a host is a private literal or localhost, then it is refused before any lookup; a name is left to the connection check', () => {
    expect(refusedHost('[::1]')).toMatch(/not a public address/);
    expect(refusedHost('169.254.169.254')).toMatch(/not a public address/);
    expect(refusedHost('LOCALHOST')).toMatch(/this machine/);
    expect(refusedHost('api.localhost')).toMatch(/this machine/);
    expect(refusedHost('scr.example.nhs.uk')).toBeUndefined();
    expect(refusedHost('81.144.200.1')).toBeUndefined();
  });

  test('when a Subscription names a private or local endpoint, then it is refused with 422 pointing at channel.endpoint, unless private addresses are allowed', () => {
    for (const endpoint of ['https://169.254.169.254/latest/meta-data', 'https://10.0.0.5/hook', 'https://[::1]:8443/hook', 'https://localhost/hook']) {
      let error: unknown;
      try {
        parseSubscription(aSubscription({ endpoint, custodian: 'RRK' }), { allowHttp: false, allowPrivate: false });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FhirError);
      expect((error as FhirError).status).toBe(422);
      expect((error as FhirError).message).toMatch(/public address/);
      expect((error as FhirError).issues[0]?.expression).toEqual(['Subscription.channel.endpoint']);
    }
    expect(parseSubscription(aSubscription({ endpoint: 'https://10.0.0.5/hook', custodian: 'RRK' }), { allowHttp: false, allowPrivate: true }).endpoint).toBe('https://10.0.0.5/hook');
    expect(parseSubscription(aSubscription({ endpoint: 'https://scr.example.nhs.uk/hook', custodian: 'RRK' }), { allowHttp: false, allowPrivate: false }).endpoint).toBe('https://scr.example.nhs.uk/hook');
  });

  describe('delivery', () => {
    let hits = 0;
    let answer = 200;
    const server = createServer((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => {
        res.statusCode = answer;
        if (answer === 307) res.setHeader('location', '/elsewhere');
        res.end();
      });
    });
    let port = 0;
    beforeAll(async () => {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });
    beforeEach(() => {
      hits = 0;
      answer = 200;
    });
    const options = { timeoutMs: 2000, allowPrivate: false };

    test('when the endpoint is a private literal or localhost, then nothing is sent and the failure says why', async () => {
      expect(await postNotification(`http://localhost:${port}/hook`, {}, '{}', options)).toMatch(/not at a public address/);
      expect(await postNotification(`http://127.0.0.1:${port}/hook`, {}, '{}', options)).toMatch(/not at a public address/);
      expect(hits).toBe(0);
    });

    test('when a name resolves to a loopback address (or to several, one of them private), then the connection is not made', async () => {
      const resolvesTo = (...addresses: string[]) =>
        publicOnly((_name, _options, callback) => callback(null, addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))));
      const attempt = (lookup: ReturnType<typeof publicOnly>): Promise<string> =>
        new Promise((resolve) => {
          const req = request({ host: 'scr.example.nhs.uk', port, path: '/hook', method: 'POST', lookup, agent: false }, (res) => {
            res.resume();
            resolve(`answered ${res.statusCode}`);
          });
          req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
          req.end('{}');
        });
      expect(await attempt(resolvesTo('127.0.0.1'))).toBe('ENOTPUBLIC');
      expect(await attempt(resolvesTo('81.144.200.1', '10.0.0.7'))).toBe('ENOTPUBLIC');
      expect(hits).toBe(0);
      // The same socket path with an ordinary resolver reaches the server: the refusal above is the check's.
      expect(await attempt((_name, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]))).toBe('answered 200');
      expect(hits).toBe(1);
    });

    test('when private addresses are allowed, then the notification is delivered; a redirect is a failure, not followed', async () => {
      expect(await postNotification(`http://127.0.0.1:${port}/hook`, { 'content-type': 'application/fhir+json' }, '{}', { ...options, allowPrivate: true })).toBeUndefined();
      expect(hits).toBe(1);
      answer = 307;
      expect(await postNotification(`http://127.0.0.1:${port}/hook`, {}, '{}', { ...options, allowPrivate: true })).toBe('the endpoint answered HTTP 307');
      expect(hits).toBe(2);
    });
  });
});
