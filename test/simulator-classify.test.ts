import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ATTEMPTS } from '../simulator/backoff.ts';
import { classifyAttempt, parseRetryAfterMs } from '../simulator/classify.ts';

describe('classifyAttempt', () => {
  it.each([200, 201, 202, 204, 299])('counts %i as delivered', (status) => {
    expect(classifyAttempt({ status, retryAfterMs: null }, 1, MAX_ATTEMPTS)).toEqual({
      kind: 'delivered',
    });
  });

  it.each([[301], [400], [401], [404], [413], [429], [500], [502], [503]])(
    'retries %i before the last attempt',
    (status) => {
      expect(classifyAttempt({ status, retryAfterMs: null }, 3, MAX_ATTEMPTS)).toEqual({
        kind: 'retry',
        retryAfterMs: null,
      });
    },
  );

  it('retries a network error', () => {
    expect(classifyAttempt({ status: null, retryAfterMs: null }, 1, MAX_ATTEMPTS).kind).toBe(
      'retry',
    );
  });

  it('carries Retry-After into the verdict', () => {
    expect(classifyAttempt({ status: 503, retryAfterMs: 5000 }, 1, MAX_ATTEMPTS)).toEqual({
      kind: 'retry',
      retryAfterMs: 5000,
    });
  });

  it('dead-letters a failure on the last attempt', () => {
    expect(classifyAttempt({ status: 500, retryAfterMs: null }, 7, MAX_ATTEMPTS).kind).toBe(
      'dead_letter',
    );
  });

  it('still counts a 2xx on the last attempt as delivered', () => {
    expect(classifyAttempt({ status: 200, retryAfterMs: null }, 7, MAX_ATTEMPTS).kind).toBe(
      'delivered',
    );
  });

  it('never dead-letters before the last attempt and never retries after it', () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 100, max: 599 })),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        (status, attempt, maxAttempts) => {
          const { kind } = classifyAttempt({ status, retryAfterMs: null }, attempt, maxAttempts);
          const isSuccess = status !== null && status >= 200 && status < 300;

          if (isSuccess) expect(kind).toBe('delivered');
          else expect(kind).toBe(attempt >= maxAttempts ? 'dead_letter' : 'retry');
        },
      ),
    );
  });
});

describe('parseRetryAfterMs', () => {
  const nowMs = Date.parse('Tue, 01 Dec 2026 12:00:00 GMT');

  it.each([
    ['120', 120_000],
    [' 5 ', 5000],
    ['0', 0],
    ['Tue, 01 Dec 2026 12:00:30 GMT', 30_000],
    ['Tue, 01 Dec 2026 11:00:00 GMT', 0],
  ])('reads %j as %i ms', (value, expected) => {
    expect(parseRetryAfterMs(value, nowMs)).toBe(expected);
  });

  it.each(['soon', '-1', '1.5', '', '2026-12-01T12:00:30Z'])('ignores %j', (value) => {
    expect(parseRetryAfterMs(value, nowMs)).toBeNull();
  });

  it('gives null for a missing header', () => {
    expect(parseRetryAfterMs(null, nowMs)).toBeNull();
  });
});
