/**
 * Retries with exponential backoff and full jitter ("Exponential Backoff And Jitter", AWS
 * Architecture Blog, 2015) for 429, 5xx and network failures. A Retry-After header (RFC 9110
 * §10.2.3: delay-seconds or an HTTP-date) overrides the computed delay. Conditional-update
 * transactions are idempotent, so resending after a lost response is safe.
 */
export interface RetryPolicy {
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  /** Called before each wait: for log lines (never with request bodies). */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

export const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function defaultRetryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return { maxRetries: 5, baseDelayMs: 500, maxDelayMs: 30_000, sleep: defaultSleep, random: Math.random, ...overrides };
}

/** What a failed request tells the retry loop. */
export interface FailureInfo { retryable: boolean; retryAfterMs?: number; reason: string }

export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

export async function withRetry<T>(fn: () => Promise<T>, classify: (err: unknown) => FailureInfo, policy: RetryPolicy): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const info = classify(err);
      if (!info.retryable || attempt > policy.maxRetries) throw err;
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delayMs = info.retryAfterMs !== undefined ? Math.min(info.retryAfterMs, policy.maxDelayMs) : Math.round(policy.random() * backoff);
      policy.onRetry?.({ attempt, delayMs, reason: info.reason });
      await policy.sleep(delayMs);
    }
  }
}
