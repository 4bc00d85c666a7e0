import type { AuditRecord } from '../../src/audit/audit-event';
import { auditColumnsOf, balpAuditEvent, buildAuditEvent, renderAuditEvent, storedAuditEvent } from '../../src/audit/audit-event';
import { eventRow } from '../../src/audit/audit-store';
import { timeOrderedUuid } from '../../src/audit/event-id';
import { columnMismatch } from '../../src/audit/verify-columns';
import type { VerifyRow } from '../../src/audit/verify-columns';
import { patient } from '../helpers/fixtures';

const RECORDED = new Date('2026-12-01T10:00:00.000Z');

function aRecord(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    requestId: 'req-1',
    subtype: 'search-type',
    action: 'E',
    outcome: '0',
    principal: {
      subject: 'dr.jones',
      issuer: 'https://idp.rrk.example',
      organization: 'RRK',
      role: 'clinician',
      scopes: [],
      purposeOfUse: 'TREAT',
      clientId: 'pacs-viewer',
      tokenId: 'jti-1',
    },
    clientIp: '10.1.2.3',
    query: `patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${patient(1)}`,
    patients: [patient(1), patient(1)],
    entities: Array.from({ length: 5 }, (_, i) => ({ type: 'ImagingStudy', id: `00000000-0000-4000-8000-00000000000${i}`, version: 1 })),
    ...overrides,
  };
}

function rowOf(text: string, columns = auditColumnsOf(storedAuditEvent(aRecord(), RECORDED, 'ev-1'))): VerifyRow {
  return { seq: 1, id: 'ev-1', chain_pos: 1, hash: new Uint8Array(32), resource: text, recorded: RECORDED, ...columns };
}

describe('stored facts and the BALP rendering', () => {
  it('when a search is recorded, then the stored text is the facts, a fraction of the rendered AuditEvent, and renders to it', () => {
    const row = eventRow(aRecord(), RECORDED, 'ev-1');
    expect(row.resource.startsWith('{"format":1,')).toBe(true);
    const rendered = renderAuditEvent(row.resource);
    expect(JSON.parse(rendered)).toEqual(buildAuditEvent(aRecord(), RECORDED, 'ev-1'));
    expect(row.resource.length * 4).toBeLessThan(rendered.length);
  });

  it('when a patient is named twice, then the facts, the columns and the rendering name them once', () => {
    const stored = storedAuditEvent(aRecord(), RECORDED, 'ev-1');
    expect(stored.patients).toEqual([patient(1)]);
    expect(auditColumnsOf(stored).patients).toEqual([patient(1)]);
    const people = (balpAuditEvent(stored).entity as { what?: { identifier?: { value: string } } }[]).filter((e) => e.what?.identifier?.value === patient(1));
    expect(people).toHaveLength(1);
  });

  it('when the token could not be verified, then the claimed identity is kept apart from a verified one', () => {
    const stored = storedAuditEvent(aRecord({ principal: undefined, claimed: { subject: 'mallory', organization: 'XXX' }, outcome: '4' }), RECORDED, 'ev-2');
    expect(stored.agent).toBeUndefined();
    expect(stored.claimed).toEqual({ subject: 'mallory', organization: 'XXX' });
    expect(auditColumnsOf(stored)).toMatchObject({ agent_user: 'mallory', agent_ods: 'XXX', purpose: null, break_glass: false });
    expect(JSON.stringify(balpAuditEvent(stored))).toContain('unverified-identity');
  });

  it('when break-glass is used, then the facts keep the reason and the rendering carries the BTG label', () => {
    const glass = aRecord();
    glass.principal = { ...glass.principal!, purposeOfUse: 'ETREAT', breakGlassReason: 'Trauma call, unconscious' };
    const stored = storedAuditEvent(glass, RECORDED, 'ev-3');
    expect(auditColumnsOf(stored)).toMatchObject({ break_glass: true, purpose: 'ETREAT' });
    const event = balpAuditEvent(stored) as { meta: { security?: { code: string }[] } };
    expect(event.meta.security?.[0]?.code).toBe('BTG');
    expect(JSON.stringify(event)).toContain('Trauma call, unconscious');
  });

  it('when an operation is recorded, then the subtype column is the operation name', () => {
    const stored = storedAuditEvent(aRecord({ subtype: 'operation', operation: '$resolve' }), RECORDED, 'ev-4');
    expect(auditColumnsOf(stored).subtype).toBe('$resolve');
  });

  it('when a row holds an AuditEvent written before the facts format, then it is served as stored', () => {
    const legacy = JSON.stringify(buildAuditEvent(aRecord(), RECORDED, 'ev-1'));
    expect(renderAuditEvent(legacy)).toBe(legacy);
  });
});

describe('columnMismatch', () => {
  it('when the columns agree with the stored facts, then nothing is reported; when one is edited, then that column is named', () => {
    const text = eventRow(aRecord(), RECORDED, 'ev-1').resource;
    expect(columnMismatch(rowOf(text))).toBeUndefined();
    const columns = auditColumnsOf(storedAuditEvent(aRecord(), RECORDED, 'ev-1'));
    expect(columnMismatch(rowOf(text, { ...columns, agent_user: 'someone-else' }))).toBe('agent_user');
    expect(columnMismatch(rowOf(text, { ...columns, patients: [] }))).toBe('patients');
    expect(columnMismatch(rowOf(text, { ...columns, break_glass: true }))).toBe('break_glass');
    expect(columnMismatch({ ...rowOf(text), id: 'ev-9' })).toBe('id');
  });

  it('when the row holds an earlier-format AuditEvent, then its columns are checked against the BALP agents and entities', () => {
    const legacy = JSON.stringify(buildAuditEvent(aRecord(), RECORDED, 'ev-1'));
    expect(columnMismatch(rowOf(legacy))).toBeUndefined();
    const columns = auditColumnsOf(storedAuditEvent(aRecord(), RECORDED, 'ev-1'));
    expect(columnMismatch(rowOf(legacy, { ...columns, agent_ods: 'RJE' }))).toBe('agent_ods');
  });
});

describe('timeOrderedUuid', () => {
  it('when ids are made a millisecond apart, then they are RFC 9562 version 7 UUIDs that sort in time order', () => {
    const ids = Array.from({ length: 50 }, (_, i) => timeOrderedUuid(1_760_000_000_000 + i));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(Array.from({ length: 1000 }, () => timeOrderedUuid(1_760_000_000_000))).size).toBe(1000);
    expect(ids[0]!.replace(/-/g, '').slice(0, 12)).toBe((1_760_000_000_000).toString(16).padStart(12, '0'));
  });
});
