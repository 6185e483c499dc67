import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryResult } from './deliver.ts';
import { createDelivery, loadFixture, type PlatformEvent } from './events.ts';
import {
  createFaultyFetch,
  createRandom,
  type DeliveryFaults,
  pickSlackFault,
  type SlackFaults,
  shuffle,
} from './faults.ts';
import { type HandlerProcess, type Runtime, startHandler } from './handler-process.ts';
import { listenLocal } from './listen.ts';
import { runBatch } from './run.ts';
import { createSigner } from './sign.ts';
import { SimulatorError } from './simulator-error.ts';
import { createSlackSink, type SinkMessage } from './slack-sink.ts';

/** The handler's Slack timeout during a chaos run, so slow posts are slow enough to time out. */
const CHAOS_SLACK_TIMEOUT_MS = 250;

/**
 * How long before a SIGKILL a Slack post may have been answered and yet not recorded: its
 * answer can still be on its way back when the kill lands.
 */
const HARD_KILL_WINDOW_MS = 100;

/** A SIGKILL, and when the next handler was listening again. */
export type HardKill = { killedAtMs: number; restartedAtMs: number };

export const DEFAULT_CHAOS_OPTIONS = {
  events: 1000,
  restarts: 6,
  concurrency: 16,
  delayScale: 0.05,
  duplicateShare: 0.1,
  delivery: { delayShare: 0.1, maxDelayMs: 50, dropShare: 0.05 } satisfies DeliveryFaults,
  slack: {
    share500: 0.05,
    share429Short: 0.03,
    share429Long: 0.03,
    shareSlow: 0.02,
    slowMs: 2 * CHAOS_SLACK_TIMEOUT_MS,
    longRetryAfterSeconds: 30,
  } satisfies SlackFaults,
};

/** What to run: sizes, faults and the seed their decisions come from. */
export type ChaosOptions = {
  runtime: Runtime;
  seed: number;
  events?: number;
  restarts?: number;
  concurrency?: number;
  delayScale?: number;
  duplicateShare?: number;
  delivery?: DeliveryFaults;
  slack?: SlackFaults;
  /** Hears a line for each restart; the CLI prints them. */
  onProgress?: (line: string) => void;
};

/** An event that broke a promise, or sits in the hard-kill window. */
export type ChaosFinding = {
  id: string;
  kind: 'lost' | 'duplicated' | 'in_doubt';
  messages: number;
  dead_lettered: boolean;
};

/** The reconciliation of one run: every event sent against what Slack and the DLQ hold. */
export type ChaosReport = {
  runtime: Runtime;
  seed: number;
  sent: number;
  copies_sent: number;
  delivered: number;
  dead_lettered: number;
  messages: number;
  lost: number;
  duplicated: number;
  in_doubt: number;
  restarts: { graceful: number; hard: number };
  slack_faults: number;
  duration_ms: number;
  verdict: 'pass' | 'fail';
  findings: ChaosFinding[];
};

/**
 * Sends installs through every fault at once while restarting the handler, then reconciles:
 * each event must have exactly one Slack message or a dead letter.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const settings = { ...DEFAULT_CHAOS_OPTIONS, ...options };
  // Separate streams: the plan (copies, order, restarts) is drawn up front and replays
  // exactly; which attempt meets which fault depends on timing.
  const random = createRandom(settings.seed);
  const sinkRandom = createRandom(settings.seed + 1);
  const fetchRandom = createRandom(settings.seed + 2);
  const secret = `chaos-${settings.seed}`;
  const folder = mkdtempSync(join(tmpdir(), 'chaos-'));
  const sink = createSlackSink({ faults: () => pickSlackFault(settings.slack, sinkRandom) });
  const sinkServer = await listenLocal(sink.fetch, 0);
  const startedMs = Date.now();
  const env = {
    PLATFORM_SIGNING_SECRET: secret,
    SLACK_WEBHOOK_URL: `http://127.0.0.1:${sinkServer.port}/services/chaos`,
    SLACK_TIMEOUT_MS: String(CHAOS_SLACK_TIMEOUT_MS),
    DEDUPE_FILE: join(folder, 'dedupe.jsonl'),
  };

  let handler: HandlerProcess | undefined;
  try {
    handler = await startHandler(settings.runtime, env);
    const port = new URL(handler.origin).port;
    const events = await createEvents(settings.events);
    const copies = shuffle(
      events.flatMap((event) => (random() < settings.duplicateShare ? [event, event] : [event])),
      random,
    );

    const kills: HardKill[] = [];
    const restarts = { graceful: 0, hard: 0 };
    // Restarts at random points of progress, so each run has them however fast it goes.
    const plan = Array.from({ length: settings.restarts }, () => ({
      after: Math.floor((0.05 + 0.9 * random()) * copies.length),
      signal: random() < 0.5 ? ('SIGTERM' as const) : ('SIGKILL' as const),
    })).sort((a, b) => a.after - b.after);
    let finished = 0;
    let restarting: Promise<void> = Promise.resolve();

    const restart = async (signal: 'SIGTERM' | 'SIGKILL') => {
      const killedAtMs = Date.now();
      await handler?.stop(signal);
      restarts[signal === 'SIGKILL' ? 'hard' : 'graceful']++;
      settings.onProgress?.(`chaos: ${signal} after ${finished}/${copies.length}, restarting`);
      handler = await startHandler(settings.runtime, { ...env, PORT: port });
      if (signal === 'SIGKILL') kills.push({ killedAtMs, restartedAtMs: Date.now() });
    };

    const { results } = await runBatch(copies, {
      url: `${handler.origin}/webhooks/platform`,
      sign: createSigner(secret),
      fetch: createFaultyFetch(settings.delivery, fetchRandom),
      backoff: { scale: settings.delayScale },
      concurrency: settings.concurrency,
      timeoutMs: 5_000,
      onResult: () => {
        finished++;
        while (plan.length > 0 && (plan[0]?.after ?? 0) <= finished) {
          const { signal } = plan.shift() ?? { signal: 'SIGTERM' as const };
          restarting = restarting.then(() => restart(signal));
        }
      },
    });
    await restarting;
    // A dropped attempt's work may still be under way: let it finish before counting.
    await handler.stop('SIGTERM');

    return {
      runtime: settings.runtime,
      seed: settings.seed,
      ...reconcile(events, results, sink.messages, kills),
      copies_sent: copies.length,
      restarts,
      slack_faults: sink.rejected.length,
      duration_ms: Date.now() - startedMs,
    };
  } finally {
    await handler?.stop('SIGTERM');
    await sinkServer.close();
    rmSync(folder, { recursive: true, force: true });
  }
}

type Reconciliation = Pick<
  ChaosReport,
  | 'sent'
  | 'delivered'
  | 'dead_lettered'
  | 'messages'
  | 'lost'
  | 'duplicated'
  | 'in_doubt'
  | 'verdict'
  | 'findings'
>;

/**
 * Matches each event to its Slack messages (by the buyer email tagged with its id) and to its
 * delivery results. Pure, so its rules are tested on their own.
 */
export function reconcile(
  events: readonly PlatformEvent[],
  results: readonly DeliveryResult[],
  messages: readonly SinkMessage[],
  kills: readonly HardKill[],
): Reconciliation {
  const delivered = new Set(results.filter((r) => r.delivered).map((r) => r.event.id));
  const idByEmail = new Map(events.map((event) => [buyerEmail(event), event.id]));
  const messagesById = new Map<string, SinkMessage[]>();
  for (const message of messages) {
    // "ada+1a2b3c4d@example.com just installed ...": the email comes first.
    const id = idByEmail.get(message.text.split(' ')[0] ?? '');
    if (id) messagesById.set(id, [...(messagesById.get(id) ?? []), message]);
  }

  const findings: ChaosFinding[] = [];
  for (const event of events) {
    const posted = messagesById.get(event.id) ?? [];
    const dead_lettered = !delivered.has(event.id);
    const finding = { id: event.id, messages: posted.length, dead_lettered };
    if (posted.length === 0 && !dead_lettered) findings.push({ ...finding, kind: 'lost' });
    if (posted.length > 1) {
      const inDoubt = isInHardKillWindow(posted[0] as SinkMessage, kills);
      findings.push({ ...finding, kind: inDoubt ? 'in_doubt' : 'duplicated' });
    }
  }
  const count = (kind: ChaosFinding['kind']) => findings.filter((f) => f.kind === kind).length;

  return {
    sent: events.length,
    delivered: delivered.size,
    dead_lettered: events.length - delivered.size,
    messages: messages.length,
    lost: count('lost'),
    duplicated: count('duplicated'),
    in_doubt: count('in_doubt'),
    verdict: count('lost') + count('duplicated') === 0 ? 'pass' : 'fail',
    findings,
  };
}

/**
 * True when the first post reached the sink while a killed handler may still have had it
 * unrecorded: shortly before the kill, or after it and before the next handler listened. The
 * sink shares this process, so under load it may take a post in well after it was sent; only
 * a handler that was already dead can have sent one taken in after the kill.
 */
function isInHardKillWindow(first: SinkMessage, kills: readonly HardKill[]): boolean {
  const receivedMs = Date.parse(first.received_at);
  return kills.some(
    (kill) =>
      receivedMs >= kill.killedAtMs - HARD_KILL_WINDOW_MS && receivedMs <= kill.restartedAtMs,
  );
}

function buyerEmail(event: PlatformEvent): string {
  const buyer = (event.data as { buyer?: { email?: unknown } }).buyer;
  return typeof buyer?.email === 'string' ? buyer.email : '';
}

async function createEvents(count: number): Promise<PlatformEvent[]> {
  if (!Number.isInteger(count) || count < 1) {
    throw new SimulatorError('invalid_option', `--events must be 1 or more, got ${count}.`);
  }
  const install = await loadFixture('install.created');
  const events: PlatformEvent[] = [];
  const emails = new Set<string>();
  // Each buyer email is tagged with its event id; a rare clash of tags is drawn again.
  while (events.length < count) {
    const event = createDelivery(install, { uniqueBuyer: true });
    if (emails.has(buyerEmail(event))) continue;
    emails.add(buyerEmail(event));
    events.push(event);
  }
  return events;
}
