import { SimulatorError } from './simulator-error.ts';

/** Attempts per event in all, the first send included: 1 send and 6 retries. */
export const MAX_ATTEMPTS = 7;

/** Ceiling of the first retry's delay, before jitter and scale. */
export const DEFAULT_BASE_DELAY_MS = 1000;

/** No delay, Retry-After included, is longer than this before scale. */
export const DEFAULT_MAX_DELAY_MS = 60_000;

/**
 * Backoff settings. With the defaults the ceilings after attempts 1 to 6 are 1, 2, 4, 8, 16 and
 * 32 s, so an event that always fails waits at most 63 s in all before it is dead-lettered; the
 * 60 s cap bites only on a long Retry-After. `scale` multiplies every delay (0.001 runs the
 * whole schedule in well under a second).
 */
export type BackoffOptions = {
  baseMs?: number;
  capMs?: number;
  scale?: number;
};

/**
 * The delay after failed attempt `attempt` (1-based), with full jitter:
 * `random() * min(capMs, baseMs * 2^(attempt - 1)) * scale`.
 */
export function computeBackoffDelayMs(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { scale } = resolveBackoffOptions(options);
  return unscaledJitterMs(attempt, options, random) * scale;
}

/**
 * The delay after failed attempt `attempt`, when the answer may carry a Retry-After: the jittered
 * backoff, raised to at least `retryAfterMs`, capped at `capMs`, then scaled.
 */
export function computeRetryDelayMs(
  attempt: number,
  retryAfterMs: number | null,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { capMs, scale } = resolveBackoffOptions(options);
  const jitterMs = unscaledJitterMs(attempt, options, random);
  const floorMs = retryAfterMs ?? 0;

  return Math.min(capMs, Math.max(jitterMs, floorMs)) * scale;
}

function unscaledJitterMs(attempt: number, options: BackoffOptions, random: () => number): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new SimulatorError(
      'invalid_option',
      `Cannot compute a backoff for attempt ${attempt}: attempts are counted from 1.`,
    );
  }

  const { baseMs, capMs } = resolveBackoffOptions(options);
  // 2 ** n overflows to Infinity for huge n, which min() turns into the cap.
  const ceilingMs = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  return random() * ceilingMs;
}

function resolveBackoffOptions(options: BackoffOptions): Required<BackoffOptions> {
  const resolved = {
    baseMs: options.baseMs ?? DEFAULT_BASE_DELAY_MS,
    capMs: options.capMs ?? DEFAULT_MAX_DELAY_MS,
    scale: options.scale ?? 1,
  };

  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isFinite(value) || value < 0) {
      throw new SimulatorError(
        'invalid_option',
        `Invalid backoff ${name} ${value}: it must be a finite number of 0 or more.`,
      );
    }
  }

  return resolved;
}
