import { MAX_CONSTANT_LISTS, callerScope, constantListsIssued } from '../src/access/policy-directory';
import type { DirectorySnapshot } from '../src/access/policy-directory';
import type { Agreement } from '../src/access/policy-rules';
import type { OrganizationKind } from '../src/registry/organization';

const NOW = new Date('2026-06-01T12:00:00Z');
const SINCE = new Date('2020-01-01T00:00:00Z');
const provider = (i: number, prefix = 'P'): string => `${prefix}${String(i).padStart(3, '0')}`;

/** Network trusts N01..N03; independent providers P000.., each receiving from N01 and from the next provider (so each has lists of its own). */
function snapshot(providers: number, prefix = 'P'): DirectorySnapshot {
  const kinds = new Map<string, OrganizationKind>([['N01', 'network-trust'], ['N02', 'network-trust'], ['N03', 'network-trust']]);
  const agreements: Agreement[] = [];
  for (let i = 0; i < providers; i++) {
    kinds.set(provider(i, prefix), 'independent-provider');
    agreements.push({ provider: 'N01', recipient: provider(i, prefix), categories: [], start: SINCE, end: null });
    agreements.push({ provider: provider((i + 1) % providers, prefix), recipient: provider(i, prefix), categories: [], start: SINCE, end: null });
  }
  return { kinds, agreements, loadedAt: Date.now() };
}

describe('custodian lists as SQL constants', () => {
  it('when callers have the same lists, then they share the constants', () => {
    const d = snapshot(3);
    const a = callerScope(d, 'N02', 'TREAT', NOW);
    expect(a.constants?.related).toBe(`'{"N01","N02","N03"}'::text[]`);
    expect(callerScope(d, 'N03', 'TREAT', NOW).constants).toEqual(a.constants);
    expect(callerScope(d, provider(0), 'TREAT', NOW).constants?.related).toBe(`'{"N01","P001"}'::text[]`);
  });

  it('when more callers have lists of their own than MAX_CONSTANT_LISTS, then the later ones are bound as parameters (each list is a prepared statement per connection)', () => {
    const n = MAX_CONSTANT_LISTS + 20;
    const d = snapshot(n, 'Q');
    callerScope(snapshot(3), 'N02', 'TREAT', NOW);
    const room = MAX_CONSTANT_LISTS - constantListsIssued();
    const scopes = Array.from({ length: n }, (_, i) => callerScope(d, provider(i, 'Q'), 'TREAT', NOW));
    const withConstants = scopes.filter((s) => s.constants !== undefined);
    expect(withConstants.length).toBe(room);
    expect(scopes.slice(room).every((s) => s.constants === undefined && s.literals.related.startsWith('{'))).toBe(true);
    expect(constantListsIssued()).toBe(MAX_CONSTANT_LISTS);
    // Lists already handed out still are (the network trusts' ones); new ones are not,
    // in this snapshot or the next: the prepared statements live as long as the connections.
    expect(callerScope(snapshot(3), 'N02', 'TREAT', NOW).constants?.related).toBe(`'{"N01","N02","N03"}'::text[]`);
    expect(callerScope(snapshot(n, 'Q'), provider(n - 1, 'Q'), 'TREAT', NOW).constants).toBeUndefined();
  });
});
