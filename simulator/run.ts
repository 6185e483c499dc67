import { type DeliverOptions, type DeliveryResult, deliver } from './deliver.ts';
import type { PlatformEvent } from './events.ts';
import { SimulatorError } from './simulator-error.ts';

/** Deliveries in flight at once unless told otherwise. */
export const DEFAULT_CONCURRENCY = 4;

/** Options for {@link runBatch}: delivery options plus the worker count and a per-result hook. */
export type RunOptions = DeliverOptions & {
  concurrency?: number;
  onResult?: (result: DeliveryResult) => void | Promise<void>;
};

/** Latency of delivered events, end to end: first send to the 2xx answer, waits included. */
export type LatencySummary = { p50: number; p95: number; max: number };

/** Counts for a batch; `retried` counts events that needed more than one attempt. */
export type RunSummary = {
  sent: number;
  delivered: number;
  retried: number;
  dead_lettered: number;
  latency_ms: LatencySummary | null;
};

/** Every result, in the order of the events given, and their summary. */
export type RunReport = {
  results: DeliveryResult[];
  summary: RunSummary;
};

// LIMITATION: each delivery in flight holds its event, body and attempts (about 8 KB of RSS
// each), so 100,000 retries pending at once take some 850 MB, not 200 (bench:scheduler).
/** Delivers a batch with `concurrency` workers pulling from one queue. */
export async function runBatch(
  events: readonly PlatformEvent[],
  options: RunOptions,
): Promise<RunReport> {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new SimulatorError(
      'invalid_option',
      `Invalid concurrency ${concurrency}: it must be a whole number of 1 or more.`,
    );
  }

  const results: DeliveryResult[] = new Array(events.length);
  let next = 0;

  async function work(): Promise<void> {
    // `next++` runs between awaits, so no two workers take the same event.
    for (let index = next++; index < events.length; index = next++) {
      const event = events[index] as PlatformEvent;
      const result = await deliver(event, options);
      results[index] = result;
      await options.onResult?.(result);
    }
  }

  const workerCount = Math.min(concurrency, events.length);
  await Promise.all(Array.from({ length: workerCount }, work));

  return { results, summary: summariseResults(results) };
}

/** Counts delivered, retried and dead-lettered events and the latency of delivered ones. */
export function summariseResults(results: readonly DeliveryResult[]): RunSummary {
  const latencies = results.filter((r) => r.delivered).map((r) => r.duration_ms);

  return {
    sent: results.length,
    delivered: latencies.length,
    retried: results.filter((r) => r.attempts.length > 1).length,
    dead_lettered: results.length - latencies.length,
    latency_ms:
      latencies.length === 0
        ? null
        : {
            p50: percentile(latencies, 50),
            p95: percentile(latencies, 95),
            max: percentile(latencies, 100),
          },
  };
}

/** The nearest-rank percentile: the smallest value with at least `p`% of values at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0 || !(p > 0 && p <= 100)) {
    throw new SimulatorError(
      'invalid_option',
      `Cannot take percentile ${p} of ${values.length} values: need values and 0 < p <= 100.`,
    );
  }

  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[rank - 1] as number;
}
