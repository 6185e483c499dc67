import { parseArgs } from 'node:util';
import { type ChaosReport, DEFAULT_CHAOS_OPTIONS, runChaos } from './chaos.ts';
import { RUNTIMES, type Runtime } from './handler-process.ts';
import { SimulatorError } from './simulator-error.ts';

// Entry point for `npm run chaos`: the only place here that prints or sets the exit code.

const D = DEFAULT_CHAOS_OPTIONS;

const HELP = `Usage: npm run chaos -- [options]

Send installs through every fault at once (duplicates, reordering, delays, dropped
connections, Slack 500s, 429s and slow posts) while restarting the handler with SIGTERM
and SIGKILL, then reconcile Slack's messages and the dead letters against what was sent.

Options:
  -n, --events N        Installs to send (default ${D.events})
  -r, --restarts N      Handler restarts during the run (default ${D.restarts})
      --runtime NAME    node, bun, deno or all (default node)
      --seed N          Seed for the plan: copies, order, restarts (default random)
  -j, --json            Print one JSON document instead of the summary
  -h, --help            Show this help

Faults, each a share from 0 to 1 (0 turns it off):
      --duplicate X     Events sent twice (default ${D.duplicateShare})
      --delay X         Attempts held back up to 50 ms (default ${D.delivery.delayShare})
      --drop X          Attempts hung up on once sent (default ${D.delivery.dropShare})
      --slack-500 X     Slack posts answered 500 (default ${D.slack.share500})
      --slack-429 X     Slack posts answered 429, half with a short and half with a long
                        Retry-After (default ${D.slack.share429Short + D.slack.share429Long})
      --slack-slow X    Slack posts held past the handler's timeout (default ${D.slack.shareSlow})

Exit codes:
  0  nothing lost and nothing duplicated on every runtime run
  1  an event was lost or duplicated
  2  usage error`;

const OPTIONS = {
  duplicate: { type: 'string' },
  delay: { type: 'string' },
  drop: { type: 'string' },
  'slack-500': { type: 'string' },
  'slack-429': { type: 'string' },
  'slack-slow': { type: 'string' },
  events: { type: 'string', short: 'n' },
  restarts: { type: 'string', short: 'r' },
  runtime: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean', short: 'j' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>;
  try {
    values = parse(argv);
  } catch (error) {
    process.stderr.write(`chaos: ${(error as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }

  const seed = values.seed ?? Math.floor(Math.random() * 2 ** 31);
  const runtimes = values.runtime === 'all' ? [...RUNTIMES] : [values.runtime];
  const reports: ChaosReport[] = [];
  for (const runtime of runtimes) {
    process.stderr.write(`chaos: ${runtime}, ${values.events} events, seed ${seed}\n`);
    reports.push(
      await runChaos({
        runtime,
        seed,
        events: values.events,
        restarts: values.restarts,
        duplicateShare: values.duplicateShare,
        delivery: values.delivery,
        slack: values.slack,
        onProgress: (line) => process.stderr.write(`${line}\n`),
      }),
    );
  }

  if (values.json) {
    const document =
      reports.length === 1 ? reports[0] : { runs: reports, verdict: verdictOf(reports) };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    for (const report of reports) process.stdout.write(`${formatReport(report)}\n`);
  }
  return verdictOf(reports) === 'pass' ? 0 : 1;
}

function parse(argv: string[]) {
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  const runtime = values.runtime ?? 'node';
  if (runtime !== 'all' && !RUNTIMES.includes(runtime as Runtime)) {
    throw new SimulatorError('invalid_option', `--runtime must be node, bun, deno or all.`);
  }
  const slack429 = share(values['slack-429'], '--slack-429', D.slack.share429Short * 2);
  return {
    duplicateShare: share(values.duplicate, '--duplicate', D.duplicateShare),
    delivery: {
      ...D.delivery,
      delayShare: share(values.delay, '--delay', D.delivery.delayShare),
      dropShare: share(values.drop, '--drop', D.delivery.dropShare),
    },
    slack: {
      ...D.slack,
      share500: share(values['slack-500'], '--slack-500', D.slack.share500),
      share429Short: slack429 / 2,
      share429Long: slack429 / 2,
      shareSlow: share(values['slack-slow'], '--slack-slow', D.slack.shareSlow),
    },
    events: positive(values.events, '--events', DEFAULT_CHAOS_OPTIONS.events, 1),
    restarts: positive(values.restarts, '--restarts', DEFAULT_CHAOS_OPTIONS.restarts, 0),
    runtime: runtime as Runtime | 'all',
    seed: values.seed === undefined ? undefined : positive(values.seed, '--seed', 0, 0),
    json: values.json ?? false,
    help: values.help ?? false,
  };
}

function positive(raw: string | undefined, flag: string, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min) {
    throw new SimulatorError('invalid_option', `${flag} must be a whole number >= ${min}.`);
  }
  return value;
}

function share(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !(value >= 0 && value <= 1)) {
    throw new SimulatorError(
      'invalid_option',
      `${flag} must be a share from 0 to 1, got "${raw}".`,
    );
  }
  return value;
}

function verdictOf(reports: readonly ChaosReport[]): 'pass' | 'fail' {
  return reports.every((report) => report.verdict === 'pass') ? 'pass' : 'fail';
}

function formatReport(report: ChaosReport): string {
  const lines = [
    `${report.runtime}: ${report.verdict.toUpperCase()} (seed ${report.seed}, ` +
      `${(report.duration_ms / 1000).toFixed(1)} s)`,
    `  sent ${report.sent} events as ${report.copies_sent} copies; ` +
      `${report.delivered} delivered, ${report.dead_lettered} dead-lettered`,
    `  Slack: ${report.messages} messages, ${report.slack_faults} posts failed on purpose`,
    `  restarts: ${report.restarts.graceful} SIGTERM, ${report.restarts.hard} SIGKILL`,
    `  lost ${report.lost}, duplicated ${report.duplicated}, in doubt ${report.in_doubt}`,
  ];
  for (const finding of report.findings) {
    lines.push(
      `  ${finding.kind}: ${finding.id} (${finding.messages} messages` +
        `${finding.dead_lettered ? ', dead-lettered' : ''})`,
    );
  }
  return lines.join('\n');
}

process.exitCode = await main(process.argv.slice(2));
