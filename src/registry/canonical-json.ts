/** JSON with object keys sorted: two resources with the same content give the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value as Record<string, unknown>).sort();
    return `{${keys
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The resource's content without the server-managed meta.versionId / meta.lastUpdated. */
export function contentOf(resource: Record<string, unknown>): string {
  const { meta, ...rest } = resource;
  const m = { ...(meta as Record<string, unknown> | undefined) };
  delete m.versionId;
  delete m.lastUpdated;
  return canonicalJson(Object.keys(m).length > 0 ? { ...rest, meta: m } : rest);
}
