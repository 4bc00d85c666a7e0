/**
 * NHS number checks (NHS Data Dictionary, "NHS Number"): ten digits, the tenth a modulus-11
 * check digit over the first nine weighted 10..2. A remainder giving 11 means check digit 0;
 * one giving 10 means the number is invalid.
 */
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';

export function nhsNumberCheckDigit(firstNine: string): number | undefined {
  if (!/^\d{9}$/.test(firstNine)) return undefined;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(firstNine[i]) * (10 - i);
  const check = 11 - (sum % 11);
  if (check === 11) return 0;
  if (check === 10) return undefined;
  return check;
}

export function isValidNhsNumber(value: string): boolean {
  if (!/^\d{10}$/.test(value)) return false;
  return nhsNumberCheckDigit(value.slice(0, 9)) === Number(value[9]);
}

/** Test numbers from the 999 range with a valid check digit, in order: for fixtures and demo data. */
export function testNhsNumber(n: number): string {
  let i = n;
  for (;;) {
    const first = `999${String(i).padStart(6, '0')}`;
    const check = nhsNumberCheckDigit(first);
    if (check !== undefined) return `${first}${check}`;
    i++;
  }
}

/** The n-th valid test number (skipping prefixes whose check digit would be 10). */
export function* testNhsNumbers(start = 0): Generator<string> {
  for (let i = start; i < 1_000_000; i++) {
    const first = `999${String(i).padStart(6, '0')}`;
    const check = nhsNumberCheckDigit(first);
    if (check !== undefined) yield `${first}${check}`;
  }
}
