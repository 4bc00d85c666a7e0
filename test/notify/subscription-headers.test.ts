import { postNotification } from '../../src/notify/deliver';
import { parseSubscription } from '../../src/notify/subscription';
import { FhirError } from '../../src/fhir/errors';
import { aSubscription } from './support';

const options = { allowHttp: false, allowPrivate: false };
const withHeaders = (header: string[]): Record<string, unknown> => {
  const body = aSubscription({ endpoint: 'https://scr.example.nhs.uk/hook', custodian: 'RRK' });
  return { ...body, channel: { ...(body.channel as Record<string, unknown>), header } };
};

function refusal(body: Record<string, unknown>): FhirError | undefined {
  try {
    parseSubscription(body, options);
    return undefined;
  } catch (e) {
    return e as FhirError;
  }
}

describe('the headers a subscriber asks notifications to carry', () => {
  test.each([
    ['Host: intranet.example'],
    ['Content-Length: 5'],
    ['transfer-encoding: chunked'],
    ['Connection: close'],
    ['Content-Type: text/plain'],
    ['X-Key: a\u0001b'],
    ['X-Key: caf\u00e9'],
    ['X-Key: one\r\nX-Other: two'],
    ['No colon'],
  ])('when a header is %j, then the Subscription is refused with 422 at that header', (header) => {
    const e = refusal(withHeaders(['X-Receiver-Key: fine', header]));
    expect(e).toBeInstanceOf(FhirError);
    expect(e?.status).toBe(422);
    expect(e?.issues[0]?.expression).toEqual(['Subscription.channel.header[1]']);
  });

  test('when headers are ordinary names with printable values, then they are kept as given', () => {
    expect(refusal(withHeaders(['Authorization: Bearer abc.def-ghi', 'X-Receiver-Key:\tk e y']))).toBeUndefined();
    expect(parseSubscription(withHeaders(['Authorization: Bearer abc']), options).headers).toEqual(['Authorization: Bearer abc']);
  });

  test('when a stored header cannot be sent, then delivery reports it as a failure instead of throwing', async () => {
    await expect(postNotification('https://scr.example.nhs.uk/hook', { 'x-key': 'a\u0001b' }, '{}', { timeoutMs: 1000, allowPrivate: false })).resolves.toMatch(/could not be formed/);
  });
});
