import {
  createDeliverer,
  type DeliverOptions,
  type DeliveryResult,
  type FinishedDelivery,
} from './deliver.ts';
import type { PlatformEvent } from './events.ts';
import { SimulatorError } from './simulator-error.ts';

/** Deliveries in flight at once unless told otherwise. */
export const DEFAULT_CONCURRENCY = 4;

/**
 * Deliveries started in one turn of the event loop at most. Started all in one turn, 100,000
 * first attempts would hold their requests and answers at once and keep every timer waiting.
 */
const STARTS_PER_TURN = 256;

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

// LIMITATION: the report holds every result whole, built once the batch ends: about 1 KB each
// (the event parsed back, every attempt's record), so 100,000 deliveries that waited in under
// 200 MB end in a report of some 100 MB more (npm run bench:scheduler, peak RSS).
/**
 * Delivers a batch with at most `concurrency` deliveries in flight, taking events in order as
 * slots free up; an event is read from `events` only when its delivery starts. The first error
 * (a signer or hook that throws) rejects the batch, and no event is started after it.
 */
export async function runBatch(
  events: Iterable<PlatformEvent>,
  options: RunOptions,
): Promise<RunReport> {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new SimulatorError(
      'invalid_option',
      `Invalid concurrency ${concurrency}: it must be a whole number of 1 or more.`,
    );
  }

  const results = await new Promise<DeliveryResult[]>((resolve, reject) => {
    // Finished deliveries stay as small as they waited; the full results are built once, at
    // the end, so the heap does not grow by a whole result per delivery while retries fire.
    const finished: (FinishedDelivery | undefined)[] = [];
    const waiting = events[Symbol.iterator]();
    let inFlight = 0;
    let exhausted = false;
    let failed = false;
    let refillQueued = false;

    const fail = (error: unknown) => {
      failed = true;
      reject(error);
    };

    const onFinished = (delivery: FinishedDelivery, index: number) => {
      finished[index] = delivery;
      let hooked: void | Promise<void>;
      try {
        hooked = options.onResult?.(deliverer.toResult(delivery));
      } catch (error) {
        // Failed here and now: through the delivery's promises, other slots could free first.
        fail(error);
        return;
      }
      // The slot stays taken until the hook is done, so a slow DLQ append holds back new sends.
      Promise.resolve(hooked).then(() => {
        inFlight--;
        startMore();
      }, fail);
    };
    const deliverer = createDeliverer(options, { onFinished, onError: fail });

    function startMore(): void {
      try {
        for (let startedNow = 0; !failed && !exhausted && inFlight < concurrency; startedNow++) {
          if (startedNow === STARTS_PER_TURN) {
            queueRefill();
            return;
          }
          const next = waiting.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          inFlight++;
          // A slot per event as it starts keeps the array packed whatever order they end in.
          deliverer.start(next.value, finished.push(undefined) - 1);
        }
        if (exhausted && inFlight === 0) {
          resolve(finished.map((delivery) => deliverer.toResult(delivery as FinishedDelivery)));
        }
      } catch (error) {
        fail(error);
      }
    }

    function queueRefill(): void {
      if (refillQueued) return;
      refillQueued = true;
      setImmediate(() => {
        refillQueued = false;
        startMore();
      });
    }

    startMore();
  });

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
