import { agreementCommands } from '../src/access/agreement-command';
import type { Database } from '../src/store/database';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { aStudy, get, patient, post, registerNetwork } from './helpers/fixtures';

let s: TestServer;
let net: Awaited<ReturnType<typeof registerNetwork>>;
const lines: string[] = [];
const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(`ERR ${l}`) };
const command = (name: string) => {
  // The command closes its database when done; the test server's must stay open.
  const keepOpen = (): Promise<Database> => Promise.resolve({ ...s.db, query: s.db.query.bind(s.db), transaction: s.db.transaction.bind(s.db), exec: s.db.exec.bind(s.db), close: async () => undefined } as Database);
  const found = agreementCommands(keepOpen).find((c) => c.name === name);
  if (!found) throw new Error(name);
  return found;
};

beforeAll(async () => {
  s = await startTestServer();
  net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'XIP01', kind: 'independent-provider' }]);
  await post(s, await s.tokenFor('RRK', 'publisher'), '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId, nhs: patient(300) }));
});
afterAll(async () => s.close());

const visibleToIndependent = async (): Promise<number> => {
  await s.locus.deps.policy.refresh?.();
  const res = await get(s, await s.tokenFor('XIP01', 'clinician'), `/fhir/ImagingStudy?patient.identifier=${patient(300)}`);
  return (res.body.entry ?? []).filter((e: { search: { mode: string } }) => e.search.mode === 'match').length;
};

describe('locus agreement', () => {
  it('when an administrator adds, lists and ends an agreement, then the independent provider gains and loses sight of the pointers', async () => {
    expect(await visibleToIndependent()).toBe(0);
    expect(await command('agreement add').run(['--provider', 'RRK', '--recipient', 'XIP01', '--from', '2020-01-01', '--categories', 'study', '--description', 'referrals'], io)).toBe(0);
    expect(await visibleToIndependent()).toBe(1);
    lines.length = 0;
    expect(await command('agreement list').run([], io)).toBe(0);
    expect(lines[0]).toMatch(/RRK -> XIP01 {2}study/);
    const id = (lines[0] as string).split(' ')[0] as string;
    expect(await command('agreement end').run([id], io)).toBe(0);
    expect(await visibleToIndependent()).toBe(0);
    expect(await command('agreement end').run([id], io)).toBe(1);
  });

  it('when the input is wrong, then nothing is stored and the error says why', async () => {
    const before = (await s.db.query('select id from sharing_agreement')).rowCount;
    lines.length = 0;
    expect(await command('agreement add').run(['--provider', 'RRK', '--recipient', 'NOPE1', '--from', '2020-01-01', '--description', 'x y z'], io)).toBe(2);
    expect(lines.join(' ')).toMatch(/not registered organisations: NOPE1/);
    expect(await command('agreement add').run(['--provider', 'RRK', '--recipient', 'XIP01', '--from', '2021-01-01', '--to', '2020-01-01', '--description', 'backwards'], io)).toBe(2);
    expect(await command('agreement add').run(['--provider', 'rrk!', '--recipient', 'XIP01', '--from', '2021-01-01', '--description', 'bad code'], io)).toBe(2);
    expect((await s.db.query('select id from sharing_agreement')).rowCount).toBe(before);
  });
});
