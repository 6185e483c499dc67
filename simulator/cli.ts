import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { MAX_ATTEMPTS } from './backoff.ts';
import {
  DEFAULT_ATTEMPT_TIMEOUT_MS as DEFAULT_TIMEOUT_MS,
  type DeliveryResult,
} from './deliver.ts';
import { appendDeadLetter, createDeadLetterRecord, readDeadLetters } from './dlq.ts';
import {
  createDelivery,
  EVENT_TYPES,
  isEventType,
  loadFixture,
  loadFixtureFile,
  type PlatformEvent,
} from './events.ts';
import { createFaultyFetch, shuffle } from './faults.ts';
import { formatAttemptLine, formatSummary, formatTamperLine } from './report.ts';
import { DEFAULT_CONCURRENCY, type RunReport, runBatch } from './run.ts';
import { createSigner } from './sign.ts';
import { SimulatorError, type SimulatorErrorCode } from './simulator-error.ts';
import { sendTampered, type TamperResult } from './tamper.ts';

/** Where the CLI writes and what it reads; tests pass fakes, the entry passes the process. */
export type CliIo = {
  /** Results: the summary, or the `--json` document. One call per line. */
  stdout: (line: string) => void;
  /** Diagnostics: one line per attempt, warnings and errors. One call per line. */
  stderr: (line: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  isTTY?: { stdout?: boolean; stderr?: boolean };
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
};

/** Exit codes: every event delivered, something was not, or the command line was wrong. */
export const EXIT = { ok: 0, undelivered: 1, usage: 2 } as const;

const DEFAULT_DLQ_FILE = 'dlq.jsonl';
const FAULT_DELAY_MS = 200;

const OPTIONS = {
  url: { type: 'string', short: 'u' },
  secret: { type: 'string', short: 's' },
  event: { type: 'string', short: 'e', multiple: true },
  fixture: { type: 'string', short: 'f', multiple: true },
  count: { type: 'string', short: 'n' },
  concurrency: { type: 'string', short: 'c' },
  tamper: { type: 'boolean', short: 't' },
  dlq: { type: 'string', short: 'd' },
  'replay-dlq': { type: 'string', short: 'r' },
  'delay-scale': { type: 'string', short: 'x' },
  'resend-id': { type: 'boolean', short: 'k' },
  'unique-buyer': { type: 'boolean', short: 'b' },
  timeout: { type: 'string' },
  duplicate: { type: 'string' },
  reorder: { type: 'boolean' },
  delay: { type: 'string' },
  drop: { type: 'string' },
  json: { type: 'boolean', short: 'j' },
  help: { type: 'boolean', short: 'h' },
} as const;

const HELP = `Usage: npm run simulate -- [options]

Play the Platform: sign fixture events and POST them to a webhook URL, retrying
each up to ${MAX_ATTEMPTS} attempts with backoff, then appending it to a dead-letter file.

Options:
  -u, --url URL          Webhook URL to POST to
                         (default http://127.0.0.1:3000/webhooks/platform;
                         $PORT, when set, replaces 3000)
  -s, --secret SECRET    Signing secret (default $PLATFORM_SIGNING_SECRET)
  -e, --event TYPE       Type to send, repeatable (default install.created)
  -f, --fixture FILE     Send the event in this JSON file; repeatable
  -n, --count N          Send N copies of each event (default 1)
  -c, --concurrency N    Keep up to N deliveries in flight (default ${DEFAULT_CONCURRENCY})
  -t, --tamper           Also send one wrongly signed copy; it must get a 401
  -d, --dlq FILE         Append undelivered events to FILE (default ${DEFAULT_DLQ_FILE})
  -r, --replay-dlq FILE  Resend FILE's dead letters, same ids; FILE is kept
  -x, --delay-scale X    Multiply retry delays by X, e.g. 0.001 (default 1)
  -k, --resend-id        Keep fixture ids and created_at (to test dedupe)
  -b, --unique-buyer     Tag each install's buyer email with its event id
      --timeout MS       Give up on an attempt after MS ms (default ${DEFAULT_TIMEOUT_MS})
      --duplicate X      Send a share X (0 to 1) of the events twice, same id
      --reorder          Send the events in a random order
      --delay X          Hold back a share X of attempts, up to ${FAULT_DELAY_MS} ms each
      --drop X           Hang up on a share X of attempts once sent, before the answer
  -j, --json             Print one JSON document: the summary and every result
  -h, --help             Show this help

Event types:
  ${EVENT_TYPES.slice(0, 4).join(', ')},
  ${EVENT_TYPES.slice(4).join(', ')}

Exit codes:
  0  every event delivered, and every tampered copy refused with 401
  1  anything else: an event dead-lettered, or a tampered copy accepted
  2  usage or input error: a bad flag, fixture or dead-letter file`;

// Errors in what the user typed or pointed at; anything else happened during the run.
const USAGE_CODES: ReadonlySet<SimulatorErrorCode> = new Set([
  'invalid_option',
  'unknown_event_type',
  'fixture_unreadable',
  'fixture_invalid',
  'dlq_unreadable',
  'dlq_corrupt',
]);

type Flags = ReturnType<typeof resolveFlags>;

/** Runs the simulator CLI and resolves to its exit code; the only place that prints. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const values = parseArgv(argv);
    if (values.help) {
      io.stdout(HELP);
      return EXIT.ok;
    }
    return await simulate(resolveFlags(values, io.env), io);
  } catch (error) {
    if (!(error instanceof SimulatorError)) throw error;

    io.stderr(`simulate: ${error.message}`);
    return USAGE_CODES.has(error.code) ? EXIT.usage : EXIT.undelivered;
  }
}

async function simulate(flags: Flags, io: CliIo): Promise<number> {
  const now = io.now ?? Date.now;
  const colour = {
    stdout: Boolean(io.isTTY?.stdout) && !io.env.NO_COLOR,
    stderr: Boolean(io.isTTY?.stderr) && !io.env.NO_COLOR,
  };

  const random = io.random ?? Math.random;
  const events = withDeliveryOrder(await collectEvents(flags, now), flags, random);
  const faults = { delayShare: flags.delay, maxDelayMs: FAULT_DELAY_MS, dropShare: flags.drop };
  const faulty = flags.delay > 0 || flags.drop > 0;
  const common = {
    url: flags.url,
    sign: createSigner(flags.secret),
    fetch: faulty ? createFaultyFetch(faults, random, io.fetch) : io.fetch,
    now,
    timeoutMs: flags.timeoutMs,
  };

  // A newcomer's two usual mistakes, said once each instead of seven times per event.
  const hinted = new Set<string>();
  const { results, summary } = await runBatch(events, {
    ...common,
    concurrency: flags.concurrency,
    backoff: { scale: flags.delayScale },
    sleep: io.sleep,
    random: io.random,
    onAttempt: (report) => {
      io.stderr(formatAttemptLine(report, { colour: colour.stderr }));
      const hint = hintFor(report.attempt, String(flags.url));
      if (hint && !hinted.has(hint)) {
        hinted.add(hint);
        io.stderr(`simulate: ${hint}`);
      }
    },
    onResult: async (result) => {
      if (result.delivered) return;
      await appendDeadLetter(flags.dlq, createDeadLetterRecord(result, new Date(now())));
    },
  });

  const tampered: TamperResult[] = [];
  const first = events[0];
  if (flags.tamper && first !== undefined) {
    const at = new Date(now()).toISOString();
    const result = await sendTampered(createDelivery(first, { now }), common);
    tampered.push(result);
    io.stderr(formatTamperLine(result, at, { colour: colour.stderr }));
  }

  printOutcome(flags, io, { results, summary, tampered }, colour.stdout);

  const allRefused = tampered.every((t) => t.rejected);
  return summary.dead_lettered === 0 && allRefused ? EXIT.ok : EXIT.undelivered;
}

function printOutcome(
  flags: Flags,
  io: CliIo,
  outcome: RunReport & { tampered: TamperResult[] },
  colour: boolean,
): void {
  const { results, summary, tampered } = outcome;

  if (summary.dead_lettered > 0) {
    io.stderr(
      `simulate: ${summary.dead_lettered} dead-lettered, appended to ${flags.dlq}; ` +
        `resend with --replay-dlq ${flags.dlq}`,
    );
  }
  if (flags.replayDlq !== undefined) {
    const file = flags.replayDlq;
    io.stderr(`simulate: ${file} left unchanged; delete it once its events are in`);
  }

  if (!flags.json) {
    for (const line of formatSummary(summary, tampered, { colour })) io.stdout(line);
    return;
  }

  const document = {
    summary,
    results: results.map(describeResult),
    tampered: tampered.map(({ event, ...rest }) => ({ ...describeEvent(event), ...rest })),
    dead_letter_file: summary.dead_lettered > 0 ? flags.dlq : null,
  };
  io.stdout(JSON.stringify(document, null, 2));
}

async function collectEvents(flags: Flags, now: () => number): Promise<PlatformEvent[]> {
  if (flags.replayDlq !== undefined) {
    // A dead letter is the same event: resend it as it is, id included.
    const records = await readDeadLetters(flags.replayDlq);
    return records.map((record) => record.event);
  }

  const sources = [
    ...(await Promise.all(flags.events.map((type) => loadFixture(type)))),
    ...(await Promise.all(flags.fixtures.map((path) => loadFixtureFile(path)))),
  ];

  const copy = { keepId: flags.resendId, uniqueBuyer: flags.uniqueBuyer, now };
  return sources.flatMap((event) =>
    Array.from({ length: flags.count }, () => createDelivery(event, copy)),
  );
}

/** Duplicates and reordering, as the Platform's at-least-once delivery allows. */
function withDeliveryOrder(events: PlatformEvent[], flags: Flags, random: () => number) {
  const copies = events.flatMap((event) => (random() < flags.duplicate ? [event, event] : [event]));
  return flags.reorder ? shuffle(copies, random) : copies;
}

function describeResult(result: DeliveryResult) {
  const { event, delivered, attempts, duration_ms } = result;
  return { ...describeEvent(event), delivered, duration_ms, attempts };
}

function describeEvent(event: PlatformEvent) {
  return { id: event.id, type: event.type };
}

function parseArgv(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, strict: true }).values;
  } catch (error) {
    // node:util reports unknown and malformed flags as TypeErrors with an ERR_PARSE_ARGS code.
    const message = error instanceof Error ? error.message : String(error);
    const sentence = message.endsWith('.') ? message : `${message}.`;
    throw usage(`${sentence} Run with --help to see the options.`);
  }
}

function resolveFlags(values: ReturnType<typeof parseArgv>, env: CliIo['env']) {
  const secret = values.secret ?? env.PLATFORM_SIGNING_SECRET;
  if (!secret) {
    throw usage('no signing secret. Set PLATFORM_SIGNING_SECRET or pass --secret.');
  }

  const replayDlq = values['replay-dlq'];
  const fresh = ['event', 'fixture', 'count', 'resend-id', 'unique-buyer'] as const;
  const clash = fresh.find((name) => values[name] !== undefined);
  if (replayDlq !== undefined && clash !== undefined) {
    throw usage(
      `--replay-dlq resends the file's events as they are, so --${clash} does not apply.`,
    );
  }

  const defaultEvents = values.fixture === undefined ? ['install.created'] : [];
  const events = values.event ?? defaultEvents;
  const unknown = events.find((type) => !isEventType(type));
  if (unknown !== undefined) {
    throw new SimulatorError(
      'unknown_event_type',
      `unknown event type "${unknown}". Use one of: ${EVENT_TYPES.join(', ')}.`,
    );
  }

  return {
    url: parseUrl(values.url ?? `http://127.0.0.1:${env.PORT || 3000}/webhooks/platform`),
    secret,
    events,
    fixtures: values.fixture ?? [],
    count: parsePositiveInteger('--count', values.count ?? '1'),
    concurrency: parsePositiveInteger('--concurrency', values.concurrency ?? '4'),
    tamper: values.tamper ?? false,
    dlq: values.dlq ?? DEFAULT_DLQ_FILE,
    replayDlq,
    delayScale: parseScale(values['delay-scale'] ?? '1'),
    resendId: values['resend-id'] ?? false,
    uniqueBuyer: values['unique-buyer'] ?? false,
    timeoutMs: parsePositiveInteger('--timeout', values.timeout ?? `${DEFAULT_TIMEOUT_MS}`),
    duplicate: parseShare('--duplicate', values.duplicate ?? '0'),
    reorder: values.reorder ?? false,
    delay: parseShare('--delay', values.delay ?? '0'),
    drop: parseShare('--drop', values.drop ?? '0'),
    json: values.json ?? false,
  };
}

function parseUrl(value: string): URL {
  const url = URL.canParse(value) ? new URL(value) : null;
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    const example = 'http://127.0.0.1:3000/webhooks/platform';
    throw usage(`--url "${value}" is not an http(s) URL, e.g. ${example}.`);
  }
  return url;
}

function parsePositiveInteger(flag: string, value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw usage(`${flag} "${value}" is not a whole number of 1 or more.`);
  }
  return number;
}

function parseShare(flag: string, value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !(number >= 0 && number <= 1)) {
    throw usage(`${flag} "${value}" is not a share from 0 to 1, e.g. 0.1.`);
  }
  return number;
}

function parseScale(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number < 0) {
    throw usage(`--delay-scale "${value}" is not a number of 0 or more, e.g. 0.001.`);
  }
  return number;
}

function hintFor(attempt: { status: number | null; error: string | null }, url: string) {
  if (attempt.error?.includes('ECONNREFUSED')) {
    return `nothing listens at ${url}: is the handler running (npm start)?`;
  }
  if (attempt.status === 401) {
    return 'the handler refused the signature: --secret must equal its PLATFORM_SIGNING_SECRET.';
  }
  return null;
}

function usage(message: string): SimulatorError {
  return new SimulatorError('invalid_option', message);
}

// True when this file was started (`tsx simulator/cli.ts`), false when imported by a test.
function isEntry(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntry()) {
  // The same .env the handler reads, so both sides share one secret and port; variables
  // already set win, as in the handler.
  if (existsSync('.env')) process.loadEnvFile('.env');
  // A reader that goes away (`| head`) must not stop the run before its dead letters are
  // written: lines it would have printed are dropped instead.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const io: CliIo = {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    isTTY: { stdout: process.stdout.isTTY, stderr: process.stderr.isTTY },
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
