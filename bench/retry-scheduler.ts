/**
 * `npm run bench:scheduler`: can the simulator hold 100k pending retries within 200 MB and fire
 * each within 50 ms of its due time (issue #5; reported, not asserted)? Runs each scenario of
 * bench/retry-scenario.ts in a fresh Node process with --expose-gc: the timers alone and whole
 * deliveries (first attempt 503, second 200, no network), each with one setTimeout per sleep
 * and with simulator/retry-scheduler.ts (deliver()'s default). Markdown on stdout, or one JSON
 * document with --json; progress on stderr. Every run is bounded.
 *
 *   --count N          retries pending at once (default 100000)
 *   --min-delay-ms MS  shortest retry delay (default 5000)
 *   --max-delay-ms MS  longest retry delay (default 10000)
 *   --load NAME        timers, deliver or all (default all)
 *   --timer NAME       set-timeout, heap or all (default all)
 *   --json             print the JSON document instead of the Markdown
 */
import { parseArgs } from 'node:util';
import { runNodeScript } from './node-script.ts';
import { waitForQuietMachine } from './quiet-machine.ts';
import {
  LOADS,
  runScenario,
  type ScenarioOptions,
  type ScenarioResult,
  TIMERS,
} from './retry-scenario.ts';
import { round } from './stats.ts';

/** Issue #5's targets. */
const TARGET_RSS_BYTES = 200 * 1024 * 1024;
const TARGET_LATENESS_MS = 50;
/** Beyond the longest delay, what creating, sending and firing 100k deliveries may take. */
const SCENARIO_GRACE_MS = 120_000;

const progress = (message: string) => console.error(`bench:scheduler: ${message}`);
const flags = readFlags();

if (flags.scenario !== undefined) {
  // A child run: one scenario, one JSON line, nothing else on stdout.
  const result = await runScenario({ ...flags.options, ...flags.scenario });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const quiet = await waitForQuietMachine({
    onWait: (ms) => progress(`bench/run.ts is running; waiting (${Math.round(ms / 1000)} s)`),
  });
  if (!quiet.quiet) progress('bench/run.ts still runs after 10 minutes; measuring anyway');

  const results: ScenarioResult[] = [];
  try {
    for (const load of flags.loads) {
      for (const timer of flags.timers) {
        progress(`${load} on ${timer}: ${flags.options.count} retries`);
        results.push(await runChild({ load, timer }));
      }
    }
  } catch (error) {
    progress(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
  if (results.length > 0) {
    const document = { settings: { ...flags.options, quietMachine: quiet.quiet }, results };
    console.log(flags.json ? JSON.stringify(toJson(document), null, 2) : toMarkdown(document));
  }
}

type Document = {
  settings: Omit<ScenarioOptions, 'load' | 'timer'> & { quietMachine: boolean };
  results: ScenarioResult[];
};

/** Runs one scenario in a fresh process and resolves with its result. */
async function runChild(scenario: Pick<ScenarioOptions, 'load' | 'timer'>) {
  const { count, minDelayMs, maxDelayMs } = flags.options;
  const args = [
    ...['--scenario', `${scenario.load}:${scenario.timer}`, '--count', String(count)],
    ...['--min-delay-ms', String(minDelayMs), '--max-delay-ms', String(maxDelayMs)],
  ];
  const { code, stdout, stderr } = await runNodeScript('bench/retry-scheduler.ts', args, {
    nodeFlags: ['--expose-gc'],
    timeoutMs: maxDelayMs + SCENARIO_GRACE_MS,
  });
  if (code !== 0) {
    const name = `${scenario.load} on ${scenario.timer}`;
    throw new Error(`${name} exited with ${code ?? 'a signal'}: ${stderr.trim()}`);
  }
  return JSON.parse(stdout) as ScenarioResult;
}

function verdict(result: ScenarioResult) {
  return {
    rss: result.pending.rssBytes <= TARGET_RSS_BYTES,
    lateness: result.latenessMs.max <= TARGET_LATENESS_MS,
    allPending: result.pendingAtSnapshot === result.count,
    neverEarly: result.early === 0,
  };
}

function toJson(document: Document) {
  return {
    settings: document.settings,
    targets: { rssBytes: TARGET_RSS_BYTES, latenessMs: TARGET_LATENESS_MS },
    results: document.results.map((result) => ({
      ...result,
      latenessMs: {
        p50: round(result.latenessMs.p50),
        p99: round(result.latenessMs.p99),
        max: round(result.latenessMs.max),
        min: round(result.latenessMs.min),
      },
      scheduleSpanMs: round(result.scheduleSpanMs),
      wallMs: round(result.wallMs),
      meets: verdict(result),
    })),
  };
}

function toMarkdown(document: Document): string {
  const { count, minDelayMs, maxDelayMs } = document.settings;
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
  const ms = (value: number) => value.toFixed(value < 10 ? 2 : 1);
  const mark = (ok: boolean, text: string) => (ok ? text : `**${text}**`);
  const rows = document.results.map((result) => {
    const meets = verdict(result);
    const { p50, p99, max, min } = result.latenessMs;
    return (
      `| ${result.load} | ${result.timer} | ${result.pendingAtSnapshot.toLocaleString('en-US')} ` +
      `| ${mb(result.before.rssBytes)} | ${mark(meets.rss, mb(result.pending.rssBytes))} ` +
      `| ${mb(result.before.heapUsedBytes)} → ${mb(result.pending.heapUsedBytes)} ` +
      `| ${mb(result.peakRssBytes)} ` +
      `| ${ms(p50)} / ${ms(p99)} / ${mark(meets.lateness, ms(max))} | ${ms(min)} ` +
      `| ${result.fired.toLocaleString('en-US')} | ${(result.scheduleSpanMs / 1000).toFixed(2)} |`
    );
  });
  return [
    `# Retry scheduler: ${count.toLocaleString('en-US')} pending retries, due ` +
      `${minDelayMs / 1000}-${maxDelayMs / 1000} s after scheduling, node ${process.versions.node}`,
    '',
    '| load | timer | pending at snapshot | RSS before MB | RSS all pending MB (<= 200) ' +
      '| heap used MB before → pending | peak RSS MB | lateness p50 / p99 / max ms (<= 50) ' +
      '| min ms | fired | scheduling took s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'Memory after a full GC (--expose-gc) once the last retry was scheduled; lateness = fire ' +
      'time - due time by performance.now(), due time = when the delay was computed + delay. ' +
      '"deliver": runBatch, concurrency = count, each event made as its delivery starts and ' +
      'held from then on as its signed bytes; "set-timeout" there is a sleep option.' +
      `${document.settings.quietMachine ? '' : ' Another bench/run.ts was running: disturbed.'}`,
  ].join('\n');
}

function readFlags() {
  let values: ReturnType<typeof parse>;
  const parse = () =>
    parseArgs({
      args: process.argv.slice(2),
      options: {
        count: { type: 'string', default: '100000' },
        'min-delay-ms': { type: 'string', default: '5000' },
        'max-delay-ms': { type: 'string', default: '10000' },
        load: { type: 'string', default: 'all' },
        timer: { type: 'string', default: 'all' },
        scenario: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }).values;
  try {
    values = parse();
  } catch (error) {
    // parseArgs explains an unknown flag or a missing value in its message.
    return fail(error instanceof Error ? error.message : String(error));
  }

  const minDelayMs = readNumber('--min-delay-ms', values['min-delay-ms']);
  const maxDelayMs = readNumber('--max-delay-ms', values['max-delay-ms']);
  if (!(maxDelayMs >= 1 && minDelayMs <= maxDelayMs)) {
    fail('--min-delay-ms must not exceed --max-delay-ms, which must be 1 or more.');
  }
  const count = readNumber('--count', values.count);
  if (!Number.isSafeInteger(count) || count < 1) fail('--count must be a whole number.');

  return {
    options: { count, minDelayMs, maxDelayMs },
    loads: pick('--load', values.load, LOADS),
    timers: pick('--timer', values.timer, TIMERS),
    scenario: values.scenario === undefined ? undefined : readScenario(values.scenario),
    json: values.json,
  };
}

function readScenario(raw: string): Pick<ScenarioOptions, 'load' | 'timer'> {
  const [load, timer] = raw.split(':');
  const [oneLoad] = pick('--scenario', load, LOADS);
  const [oneTimer] = pick('--scenario', timer, TIMERS);
  return { load: oneLoad as ScenarioOptions['load'], timer: oneTimer as ScenarioOptions['timer'] };
}

function pick<T extends string>(flag: string, raw: string | undefined, names: readonly T[]): T[] {
  if (raw === 'all') return [...names];
  if ((names as readonly string[]).includes(raw ?? '')) return [raw as T];
  return fail(`${flag} must be one of ${names.join(', ')} or all, got "${raw}".`);
}

function readNumber(flag: string, raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0) {
    return fail(`${flag} must be a number of 0 or more, got "${raw}".`);
  }
  return value;
}

function fail(message: string): never {
  console.error(
    `bench:scheduler: ${message} See the flags at the top of bench/retry-scheduler.ts.`,
  );
  process.exit(2);
}
