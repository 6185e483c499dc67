/**
 * `npm run bench:breakdown`: what each stage of the receive path costs, in server CPU per
 * delivery, on Node, Bun and Deno. Beside the baseline and handler.ts as `npm start` runs it,
 * it starts the handler with one stage swapped out (bench/breakdown-server.ts) and drives every
 * server at the same fixed rate, below what any of them can take, so CPU per delivery is
 * compared at equal load. Servers on core 0, load on core 1 where taskset exists; 127.0.0.1 only.
 *
 *   --runtime NAME      node, bun, deno or all (default all)
 *   --rate N            deliveries per second (default 4000)
 *   --duration SECONDS  per measurement (default 4)
 *   --repeats N         per server, in rotating order (default 5)
 *   --json              print one JSON document instead of the Markdown
 *
 * Writes the Markdown to bench/results/breakdown.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RUNTIMES, type Runtime } from '../simulator/handler-process.ts';
import { BENCH_SECRET, createDeliveries } from './deliveries.ts';
import { driveLoad } from './load.ts';
import {
  HAS_TASKSET,
  killAllServers,
  ROOT,
  type ServerProcess,
  startServer,
} from './server-process.ts';
import { round } from './stats.ts';

const SERVER_CORE = 0;
const CLIENT_CORE = 1;
const CONNECTIONS = 10;
const WARMUP_SECONDS = 2;

interface ServerPlan {
  key: 'baseline' | 'handler' | 'full' | 'no-log' | 'no-ledger' | 'two-secrets';
  script: string;
  env: Record<string, string>;
}

const PLANS: ServerPlan[] = [
  { key: 'baseline', script: 'bench/baseline.ts', env: {} },
  { key: 'handler', script: 'handler.ts', env: { PLATFORM_SIGNING_SECRET: BENCH_SECRET } },
  ...(['full', 'no-log', 'no-ledger', 'two-secrets'] as const).map((variant) => ({
    key: variant,
    script: 'bench/breakdown-server.ts',
    env: { BREAKDOWN_VARIANT: variant },
  })),
];

/** The lowest server CPU per delivery over the repeats, in µs, for each server. */
type CpuByServer = Record<ServerPlan['key'], number>;

interface Breakdown {
  runtime: Runtime;
  cpuMicros: CpuByServer;
  /** Resident memory of each server after its last measurement, in MB. */
  rssMegabytes: Record<ServerPlan['key'], number>;
  /** Every answer each server gave, by status code, over the measured repeats. */
  statuses: Record<string, Record<string, number>>;
  stages: { logLine: number; ledger: number; oneHmacCheck: number; rest: number };
  /** Of the baseline's and the handler's CPU per delivery, the µs spent in the kernel. */
  kernelMicros: { baseline: number; handler: number };
  /** Baseline CPU per delivery over the handler's: the req/s ratio a CPU-bound run tends to. */
  cpuRatio: number;
}

const values = readFlags();
const runtimes = values.runtime === 'all' ? [...RUNTIMES] : [values.runtime as Runtime];
if (!runtimes.every((runtime) => (RUNTIMES as readonly string[]).includes(runtime))) {
  fail(`--runtime must be node, bun, deno or all, got "${values.runtime}".`);
}
const rate = readNumber('--rate', values.rate, 4000);
const durationSeconds = readNumber('--duration', values.duration, 4);
const repeats = readNumber('--repeats', values.repeats, 5);

process.once('exit', killAllServers);
process.once('SIGINT', () => process.exit(130));
if (HAS_TASKSET) spawnSync('taskset', ['-a', '-cp', String(CLIENT_CORE), String(process.pid)]);

const logDir = mkdtempSync(join(tmpdir(), 'webhook-breakdown-'));
const nextDelivery = createDeliveries();
const results: Breakdown[] = [];
try {
  for (const runtime of runtimes) results.push(await measure(runtime));
} finally {
  rmSync(logDir, { recursive: true, force: true });
}
const markdown = toMarkdown(results);
const outPath = join(ROOT, 'bench/results/breakdown.md');
mkdirSync(join(outPath, '..'), { recursive: true });
writeFileSync(outPath, markdown);
console.log(
  values.json ? JSON.stringify({ rate, durationSeconds, repeats, results }, null, 2) : markdown,
);

async function measure(runtime: Runtime): Promise<Breakdown> {
  const progress = (message: string) => console.error(`breakdown: ${runtime}: ${message}`);
  const servers: [ServerPlan, ServerProcess][] = [];
  try {
    for (const plan of PLANS) {
      const server = await startServer({
        name: `${plan.key} on ${runtime}`,
        runtime,
        script: plan.script,
        env: plan.env,
        core: SERVER_CORE,
        logDir,
      });
      servers.push([plan, server]);
    }
    const load = { connections: CONNECTIONS, overallRate: rate, nextDelivery };
    for (const [, server] of servers) {
      await driveLoad(server, {
        ...load,
        durationSeconds: Math.min(WARMUP_SECONDS, durationSeconds),
      });
    }
    const cpu = new Map<ServerPlan['key'], { total: number; kernel: number }[]>();
    const statuses: Breakdown['statuses'] = {};
    for (let repeat = 0; repeat < repeats; repeat++) {
      // Rotating the order spreads drift in the machine's speed over every server alike.
      for (let i = 0; i < servers.length; i++) {
        const [plan, server] = servers[(i + repeat) % servers.length] as [
          ServerPlan,
          ServerProcess,
        ];
        const result = await driveLoad(server, { ...load, durationSeconds });
        cpu.set(plan.key, [
          ...(cpu.get(plan.key) ?? []),
          { total: result.serverCpuMicrosPerRequest, kernel: result.serverSystemMicrosPerRequest },
        ]);
        const seen = statuses[plan.key] ?? {};
        statuses[plan.key] = seen;
        for (const [status, count] of Object.entries(result.statuses)) {
          seen[status] = (seen[status] ?? 0) + count;
        }
      }
      progress(`repeat ${repeat + 1}/${repeats} done`);
    }
    // The lowest, not the median: other work on the machine only ever adds CPU time (cache
    // misses, preemption), so the least a server needed is the closest to its own cost.
    const leanest = (key: ServerPlan['key']) => {
      const runs = cpu.get(key) ?? [];
      const none = { total: Number.NaN, kernel: Number.NaN };
      return runs.reduce((best, run) => (run.total < best.total ? run : best), runs[0] ?? none);
    };
    const cpuMicros = Object.fromEntries(
      PLANS.map((plan) => [plan.key, round(leanest(plan.key).total)]),
    ) as CpuByServer;
    const rssMegabytes = Object.fromEntries(
      servers.map(([plan, server]) => [plan.key, round(server.rssBytes() / 1e6)]),
    ) as Breakdown['rssMegabytes'];
    const logLine = cpuMicros.full - cpuMicros['no-log'];
    const ledger = cpuMicros.full - cpuMicros['no-ledger'];
    const oneHmacCheck = cpuMicros['two-secrets'] - cpuMicros.full;
    const rest = cpuMicros.full - cpuMicros.baseline - logLine - ledger - oneHmacCheck;
    return {
      runtime,
      cpuMicros,
      rssMegabytes,
      statuses,
      stages: {
        logLine: round(logLine),
        ledger: round(ledger),
        oneHmacCheck: round(oneHmacCheck),
        rest: round(rest),
      },
      kernelMicros: {
        baseline: round(leanest('baseline').kernel),
        handler: round(leanest('handler').kernel),
      },
      cpuRatio: round(cpuMicros.baseline / cpuMicros.handler),
    };
  } finally {
    await Promise.all(servers.map(([, server]) => server.stop()));
  }
}

function toMarkdown(breakdowns: Breakdown[]): string {
  const rows = (b: Breakdown): string[][] => [
    ['baseline: read, JSON.parse, answer', fmt(b.cpuMicros.baseline)],
    ['handler.ts as `npm start` runs it (dry run)', fmt(b.cpuMicros.handler)],
    ['the same through the breakdown harness', fmt(b.cpuMicros.full)],
    ['of which: the JSON log line', fmt(b.stages.logLine)],
    ['of which: the dedupe ledger (has + add)', fmt(b.stages.ledger)],
    ['of which: one HMAC check (a second secret costs this)', fmt(b.stages.oneHmacCheck)],
    ['of which: the rest (validation, route, in-flight join, answer)', fmt(b.stages.rest)],
    ['baseline / handler CPU', String(b.cpuRatio)],
    ['in the kernel (syscalls, waking the client): baseline', fmt(b.kernelMicros.baseline)],
    ['in the kernel (syscalls, waking the client): handler.ts', fmt(b.kernelMicros.handler)],
    ['RSS after load, MB: baseline', fmt(b.rssMegabytes.baseline)],
    ['RSS after load, MB: handler.ts', fmt(b.rssMegabytes.handler)],
    ['RSS after load, MB: harness without the ledger', fmt(b.rssMegabytes['no-ledger'])],
  ];
  const header = [
    '# Receive-path breakdown',
    '',
    `Written by \`npm run bench:breakdown\`: server CPU µs per delivery, lowest of ${repeats}, ` +
      `at a fixed ${rate} deliveries/s over ${CONNECTIONS} connections, ${durationSeconds} s ` +
      `each. A stage's cost is the difference between the harness with and without it, so ` +
      'expect several microseconds of noise in each, more in short runs; RSS is taken after ' +
      'the last measurement.',
    '',
    `| stage | ${breakdowns.map((b) => b.runtime).join(' | ')} |`,
    `| --- | ${breakdowns.map(() => '---').join(' | ')} |`,
  ];
  const table = breakdowns.map(rows);
  const body = (table[0] ?? []).map(([stage], index) => {
    const cells = table.map((runtimeRows) => runtimeRows[index]?.[1]);
    return `| ${stage} | ${cells.join(' | ')} |`;
  });
  const answers = breakdowns.map(
    (b) =>
      `${b.runtime}: ${Object.entries(b.statuses)
        .map(([key, counts]) => `${key} ${JSON.stringify(counts)}`)
        .join(', ')}`,
  );
  return [
    ...header,
    ...body,
    '',
    'Answers per server:',
    '',
    ...answers.map((a) => `- ${a}`),
    '',
  ].join('\n');
}

function fmt(micros: number): string {
  return Number.isFinite(micros) ? micros.toFixed(1) : '-';
}

function readFlags() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: {
        runtime: { type: 'string', default: 'all' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        repeats: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }).values;
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

function readNumber(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) fail(`${flag} must be a whole number, got "${raw}".`);
  return value;
}

function fail(message: string): never {
  console.error(`breakdown: ${message} See the flags at the top of bench/breakdown.ts.`);
  process.exit(2);
}
