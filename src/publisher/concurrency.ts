/** Runs `fn` over an async iterable with at most `limit` calls in flight (back-pressure on the source). */
export async function forEachConcurrent<T>(items: AsyncIterable<T> | Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: unknown;
  for await (const item of items) {
    const p: Promise<void> = fn(item).catch((err: unknown) => { failure ??= err; }).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
    if (failure !== undefined) break;
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure;
}
