/**
 * `npm run bench`: handler.ts against a minimal Hono baseline on Node, Bun and Deno, on
 * 127.0.0.1 only. Prints a Markdown report (or, with --json, one JSON document) on stdout and
 * writes it to bench/results.md; progress goes to stderr.
 *
 *   --json              print the JSON document instead of the Markdown
 *   --duration SECONDS  length of each measurement (default 5)
 *   --repeats N         measurements per server and run, alternating (default 3)
 *   --runtime NAME      node, bun, deno or all (default all)
 *   --quick             a smoke for CI: 1 s per measurement, 1 repeat
 *   --handler FILE      bench another copy of handler.ts, such as a candidate change
 *
 * Only a full run of handler.ts on every runtime writes bench/results.md; any other run
 * writes bench/results/last.md, so a smoke never replaces the recorded figures.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RUNTIMES, type Runtime, runtimeCommand } from '../simulator/handler-process.ts';
import { createDeliveries, measureDeliveryMicros } from './deliveries.ts';
import { type MachineInfo, toJson, toMarkdown } from './report.ts';
import { HAS_TASKSET, killAllServers, ROOT } from './server-process.ts';
import { type BenchSettings, benchRuntime, type RuntimeResult } from './suite.ts';

const CLIENT_CORE = 1;
const DEFAULT_HANDLER = 'handler.ts';

const values = readFlags();
const runtimes = selectRuntimes(values.runtime);
const settings = readSettings();
const logDir = settings.logDir;

const stopOnSignal = (signal: NodeJS.Signals) => {
  killAllServers();
  rmSync(logDir, { recursive: true, force: true });
  console.error(`bench: ${signal}, servers stopped`);
  process.exit(130);
};
process.once('SIGINT', stopOnSignal);
process.once('SIGTERM', stopOnSignal);
process.once('exit', killAllServers);

// The load generator keeps to its own core; servers are pinned to the other one.
if (HAS_TASKSET) spawnSync('taskset', ['-a', '-cp', String(CLIENT_CORE), String(process.pid)]);

const loadAverageBefore = loadavg().map((value) => Number(value.toFixed(2)));
const startedAt = performance.now();
const nextDelivery = createDeliveries();
const clientMicrosPerDelivery = measureDeliveryMicros(nextDelivery);
const results: RuntimeResult[] = [];
try {
  for (const runtime of runtimes) {
    const progress = (message: string) => console.error(`bench: ${message}`);
    results.push(await benchRuntime(runtime, settings, nextDelivery, progress));
  }
} catch (error) {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  rmSync(logDir, { recursive: true, force: true });
}

if (results.length === runtimes.length) {
  const machine = { ...describeMachine(loadAverageBefore), clientMicrosPerDelivery };
  const markdown = toMarkdown(results, machine, settings);
  const isRecordRun =
    !settings.quick && settings.handlerScript === DEFAULT_HANDLER && runtimes.length === 3;
  const outPath = isRecordRun
    ? join(ROOT, 'bench/results.md')
    : join(ROOT, 'bench/results/last.md');
  mkdirSync(join(outPath, '..'), { recursive: true });
  writeFileSync(outPath, markdown);
  console.log(values.json ? toJson(results, machine, settings) : markdown);
  const seconds = Math.round((performance.now() - startedAt) / 1000);
  console.error(`bench: done in ${seconds} s; wrote ${outPath.slice(ROOT.length)}`);
}

function readFlags() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: {
        json: { type: 'boolean', default: false },
        duration: { type: 'string' },
        repeats: { type: 'string' },
        runtime: { type: 'string', default: 'all' },
        quick: { type: 'boolean', default: false },
        handler: { type: 'string', default: DEFAULT_HANDLER },
      },
    }).values;
  } catch (error) {
    // parseArgs explains an unknown flag or a missing value in its message.
    return fail(error instanceof Error ? error.message : String(error));
  }
}

function selectRuntimes(name: string): Runtime[] {
  if (name === 'all') return [...RUNTIMES];
  if ((RUNTIMES as readonly string[]).includes(name)) return [name as Runtime];
  return fail(`--runtime must be node, bun, deno or all, got "${name}".`);
}

function readSettings(): BenchSettings {
  const quick = values.quick;
  const durationSeconds = readNumber('--duration', values.duration, quick ? 1 : 5);
  const repeats = readNumber('--repeats', values.repeats, quick ? 1 : 3);
  if (!Number.isInteger(repeats)) fail('--repeats must be a whole number.');
  return {
    durationSeconds,
    repeats,
    warmupSeconds: quick ? 0 : 1,
    connections: 10,
    fixedRatePerSecond: 2000,
    fixedRateConnections: 4,
    rejectedRequests: quick ? 20 : 50,
    handlerScript: values.handler,
    quick,
    logDir: mkdtempSync(join(tmpdir(), 'webhook-bench-')),
  };
}

function readNumber(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    fail(`${flag} must be a positive number, got "${raw}".`);
  return value;
}

function fail(message: string): never {
  console.error(`bench: ${message} See the flags at the top of bench/run.ts.`);
  process.exit(2);
}

function describeMachine(loadAverage: number[]): Omit<MachineInfo, 'clientMicrosPerDelivery'> {
  const versions: Record<string, string> = {
    node: process.versions.node,
    autocannon: packageVersion('autocannon'),
  };
  for (const runtime of ['bun', 'deno'] as const) {
    const [command] = runtimeCommand(runtime, '');
    const result = spawnSync(command, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    versions[runtime] = /\d+\.\d+\.\d+/.exec(result.stdout ?? '')?.[0] ?? 'unknown';
  }
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    // Not availableParallelism(): this process is pinned to one core by now.
    cores: cpus().length,
    memoryBytes: totalmem(),
    taskset: HAS_TASKSET,
    versions,
    loadAverageBefore: loadAverage,
    loadAverageAfter: loadavg().map((value) => Number(value.toFixed(2))),
  };
}

function packageVersion(name: string): string {
  const manifest = readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}
