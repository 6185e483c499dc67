/**
 * One run of the retry-scheduler bench, in a process of its own so that its memory figures
 * start clean: `count` retries pending at once with due times spread over
 * [minDelayMs, maxDelayMs], each fire's lateness measured against the due time computed when
 * it was scheduled. Two loads:
 *
 * - `timers`: the timer mechanism alone, `count` sleeps and nothing else;
 * - `deliver`: `count` deliveries through runBatch (concurrency = count) whose first attempt
 *   gets 503 and second 200, from an in-process fake fetch. runBatch takes each event from a
 *   generator as it starts it, so what is held while they wait is the deliveries themselves.
 *
 * Two timer mechanisms: `set-timeout`, one timer per sleep (for `deliver`, a `sleep` option,
 * as a caller that brings its own gets), and `heap`, simulator/retry-scheduler.ts (one timer
 * for the earliest of a min-heap; for `deliver`, its default path, where a waiting delivery
 * is a heap entry and no promise).
 */
import { createHmac } from 'node:crypto';
import { createDelivery, loadFixture, type PlatformEvent } from '../simulator/events.ts';
import { createRetryScheduler, type RetryScheduler } from '../simulator/retry-scheduler.ts';
import { runBatch } from '../simulator/run.ts';
import { SIGNATURE_HEADER, type Signer } from '../simulator/sign.ts';
import { BENCH_SECRET } from './deliveries.ts';

export const LOADS = ['timers', 'deliver'] as const;
export const TIMERS = ['set-timeout', 'heap'] as const;

/** What is scheduled, and over which span of delays. */
export interface ScenarioOptions {
  load: (typeof LOADS)[number];
  timer: (typeof TIMERS)[number];
  count: number;
  minDelayMs: number;
  maxDelayMs: number;
}

/** Memory as process.memoryUsage() reports it, after a full GC when one can be asked for. */
export interface MemorySnapshot {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory outside V8's heap that V8 knows of, array buffers included. */
  externalBytes: number;
  gc: boolean;
}

/** The figures of one run; lateness is fire time minus due time, in ms. */
export interface ScenarioResult extends ScenarioOptions {
  /** Before any retry was scheduled or any event of the deliver load was made. */
  before: MemorySnapshot;
  /** Right after the last retry was scheduled. */
  pending: MemorySnapshot;
  /** Retries pending when `pending` was taken; equals `count` unless some fired already. */
  pendingAtSnapshot: number;
  /** From the first schedule to the last. */
  scheduleSpanMs: number;
  fired: number;
  /** Fires before their due time by this process's performance.now(). */
  early: number;
  latenessMs: { p50: number; p99: number; max: number; min: number };
  /** Peak resident set of the whole run (process.resourceUsage().maxRSS). */
  peakRssBytes: number;
  delivered?: number;
  wallMs: number;
}

type Sleep = (ms: number) => Promise<void>;
type Gc = () => void;

/** Runs one scenario to the end: every retry fired (or delivered) before it resolves. */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const gc = (globalThis as { gc?: Gc }).gc;
  const startedMs = performance.now();
  const fixture = await loadFixture('install.created');
  const before = snapshotMemory(gc);

  const recorder = createLatenessRecorder(options.count, selectTimer(options.timer));
  // The snapshot waits for the turn after the last schedule, so nothing else is half done.
  const snapshot = recorder.allScheduled.then(async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return { memory: snapshotMemory(gc), pending: recorder.pending() };
  });

  let delivered: number | undefined;
  if (options.load === 'timers') {
    const fires = Array.from({ length: options.count }, () =>
      recorder.sleep(spreadDelayMs(options)),
    );
    await Promise.all(fires);
  } else {
    const report = await runBatch(createEvents(fixture, options.count), {
      // Never contacted: the injected fetch answers in process.
      url: 'http://127.0.0.1/webhooks/platform',
      sign: createNodeSigner(BENCH_SECRET),
      fetch: createFailOnceFetch(),
      concurrency: options.count,
      // random() in [min/max, 1) times a 1 s base times max/1000 puts every delay in the span.
      backoff: { baseMs: 1000, scale: options.maxDelayMs / 1000 },
      random: () => {
        const floor = options.minDelayMs / options.maxDelayMs;
        return floor + (1 - floor) * Math.random();
      },
      ...(options.timer === 'heap' ? { scheduler: recorder.scheduler } : { sleep: recorder.sleep }),
    });
    delivered = report.summary.delivered;
  }

  const { memory, pending } = await snapshot;
  const lateness = recorder.lateness();
  return {
    ...options,
    before,
    pending: memory,
    pendingAtSnapshot: pending,
    scheduleSpanMs: recorder.scheduleSpanMs(),
    fired: lateness.length,
    early: lateness.filter((ms) => ms < 0).length,
    latenessMs: summariseLateness(lateness),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    ...(delivered === undefined ? {} : { delivered }),
    wallMs: performance.now() - startedMs,
  };
}

/** Schedules `fire` after `delayMs`: the mechanism under test. */
type Timer = (delayMs: number, fire: () => void) => void;

function selectTimer(timer: ScenarioOptions['timer']): Timer {
  if (timer === 'set-timeout') return (delayMs, fire) => void setTimeout(fire, delayMs);
  const scheduler = createRetryScheduler();
  return (delayMs, fire) => scheduler.schedule(performance.now() + delayMs, fire);
}

/**
 * A sleep, and a scheduler for deliver(), that note for each wait the due time (now + ms, as
 * deliver() computed the delay just before) and the time it actually fired.
 */
function createLatenessRecorder(count: number, timer: Timer) {
  const latenessMs = new Float64Array(count);
  let scheduled = 0;
  let fired = 0;
  let firstScheduledMs = 0;
  let lastScheduledMs = 0;
  let onAllScheduled: () => void = () => undefined;
  const allScheduled = new Promise<void>((resolve) => {
    onAllScheduled = resolve;
  });

  const noteScheduled = (nowMs: number) => {
    if (scheduled === 0) firstScheduledMs = nowMs;
    lastScheduledMs = nowMs;
    scheduled++;
    if (scheduled === count) onAllScheduled();
  };
  const noteFired = (ms: number) => {
    if (fired < count) latenessMs[fired] = ms;
    fired++;
  };

  const sleep: Sleep = (ms) =>
    new Promise((resolve) => {
      const nowMs = performance.now();
      const dueMs = nowMs + ms;
      noteScheduled(nowMs);
      timer(ms, () => {
        noteFired(performance.now() - dueMs);
        resolve();
      });
    });

  // The scheduler reports each fire itself, so no callback is wrapped: a waiting delivery
  // costs here what it costs without the bench.
  const heap = createRetryScheduler({ onFire: (dueMs, firedMs) => noteFired(firedMs - dueMs) });
  const scheduler: Pick<RetryScheduler, 'scheduleAfter'> = {
    scheduleAfter<T>(delayMs: number, fire: (item: T) => void, item?: T) {
      noteScheduled(performance.now());
      heap.scheduleAfter(delayMs, fire, item as T);
    },
  };

  return {
    sleep,
    scheduler,
    allScheduled,
    pending: () => scheduled - fired,
    scheduleSpanMs: () => lastScheduledMs - firstScheduledMs,
    lateness: () => latenessMs.subarray(0, Math.min(fired, count)),
  };
}

function spreadDelayMs(options: ScenarioOptions): number {
  return options.minDelayMs + (options.maxDelayMs - options.minDelayMs) * Math.random();
}

function* createEvents(fixture: PlatformEvent, count: number): Generator<PlatformEvent> {
  for (let made = 0; made < count; made++) yield createDelivery(fixture);
}

/**
 * 503 to an event's first attempt, 200 to its second. The signature header tells one event
 * from another: deliver() signs an event once and sends it under the same one every time.
 */
function createFailOnceFetch(): typeof fetch {
  const waitingForRetry = new Set<string>();
  return async (_input, init) => {
    const signature = new Headers(init?.headers).get(SIGNATURE_HEADER) ?? '';
    if (waitingForRetry.delete(signature)) return new Response(null, { status: 200 });
    waitingForRetry.add(signature);
    return new Response(null, { status: 503 });
  };
}

// node:crypto signs synchronously in a few µs; WebCrypto's queue would stretch the burst of
// 100k first attempts, and signing is not what this bench measures.
function createNodeSigner(secret: string): Signer {
  return async (body) => createHmac('sha256', secret).update(body).digest('hex');
}

function snapshotMemory(gc: Gc | undefined): MemorySnapshot {
  gc?.();
  const usage = process.memoryUsage();
  return {
    rssBytes: usage.rss,
    heapUsedBytes: usage.heapUsed,
    heapTotalBytes: usage.heapTotal,
    externalBytes: usage.external,
    gc: gc !== undefined,
  };
}

function summariseLateness(values: Float64Array) {
  const sorted = Float64Array.from(values).sort();
  const at = (fraction: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), max: at(1), min: sorted[0] ?? Number.NaN };
}
