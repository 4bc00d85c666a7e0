import { loadMigrations, migrate } from '../src/store/migrate';
import type { Database } from '../src/store/database';
import { textArrayLiteral } from '../src/store/sql-builder';
import { testDatabase } from './helpers/db';

let db: Database;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, drop } = await testDatabase());
});
afterAll(async () => drop());

describe('migrations', () => {
  it('when migrations run again on a migrated database, then nothing is applied and each is recorded once', async () => {
    expect(await migrate(db)).toEqual([]);
    const recorded = await db.query<{ version: string }>('select version from schema_migrations order by version');
    expect(recorded.rows.map((r) => r.version)).toEqual(loadMigrations().map((m) => m.version));
  });

  it('when the database supports lz4, then audit event texts use it (pglz costs more CPU than the insert)', async () => {
    const r = await db.query<{ c: string }>("select attcompression::text as c from pg_attribute where attrelid = 'audit_event'::regclass and attname = 'resource'");
    expect(r.rows[0]?.c).toBe(db.kind === 'postgres' ? 'l' : '');
  });

  it('when the audit trail is indexed by patient, then without a GIN pending list (whose merge would stall every audited read behind one insert)', async () => {
    const r = await db.query<{ o: string[] | null }>("select reloptions as o from pg_class where oid = 'audit_event_patients'::regclass");
    expect(r.rows[0]?.o).toEqual(['fastupdate=off']);
  });
});

describe('set-based row values', () => {
  it('when text values with quotes, backslashes, braces, commas, unicode, an empty string and a null travel as one array literal, then PostgreSQL reads back exactly them', async () => {
    const common = ['plain', 'with "quotes"', 'back\\slash', 'both \\" mixed', '{braces},commas', '', 'ünïcödé 😀', JSON.stringify({ a: 'x"y\\z\n' }), 'NULL', null];
    // Raw control characters take the slower path (JSON would escape them as array_in does not read them).
    for (const values of [common, [...common, 'line\nbreak\ttab', 'escaped \\n and raw \u0001']]) {
      const r = await db.query<{ v: (string | null)[] }>('select $1::text[] as v', [textArrayLiteral(values)]);
      expect(r.rows[0]?.v).toEqual(values);
    }
  });
});
