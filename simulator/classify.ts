// Senders must use IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110, section 5.6.7).
const IMF_FIXDATE = /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** What one attempt got back: an HTTP status, or `null` when the request failed or timed out. */
export type AttemptAnswer = {
  status: number | null;
  retryAfterMs: number | null;
};

/** What to do after an attempt. */
export type AttemptVerdict =
  | { kind: 'delivered' }
  | { kind: 'retry'; retryAfterMs: number | null }
  | { kind: 'dead_letter' };

/** Classifies an attempt: 2xx is delivered; anything else is retried until attempts run out. */
export function classifyAttempt(
  answer: AttemptAnswer,
  attempt: number,
  maxAttempts: number,
): AttemptVerdict {
  if (answer.status !== null && answer.status >= 200 && answer.status < 300) {
    return { kind: 'delivered' };
  }

  if (attempt >= maxAttempts) return { kind: 'dead_letter' };

  return { kind: 'retry', retryAfterMs: answer.retryAfterMs };
}

/**
 * Reads a Retry-After header as milliseconds from `nowMs`: delta-seconds or an HTTP-date
 * (RFC 9110, section 10.2.3). Anything else, or a date in the past, gives `null` or 0.
 */
export function parseRetryAfterMs(value: string | null, nowMs: number): number | null {
  if (value === null) return null;

  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;

  if (!IMF_FIXDATE.test(trimmed)) return null;

  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return null;

  return Math.max(0, dateMs - nowMs);
}
