/**
 * The bench for one runtime: handler.ts against the baseline on the receive path (dry run) and
 * end to end (every install posted to a local Slack sink), a fixed-rate latency run, the
 * keep-alive check for refusals, and the verification micro-benchmark.
 */
import { spawnSync } from 'node:child_process';
import { type Runtime, runtimeCommand } from '../simulator/handler-process.ts';
import { BENCH_SECRET, type Delivery } from './deliveries.ts';
import { driveLoad, type LoadResult } from './load.ts';
import { checkKeepAlive, type RejectionResult, rejectionCases } from './rejections.ts';
import { HAS_TASKSET, ROOT, type ServerProcess, startServer } from './server-process.ts';
import { median, type Summary, summarize } from './stats.ts';
import type { VerificationReport } from './verification.ts';

/** The handler's default body limit, which the 413 cases exceed. */
const HANDLER_MAX_BODY_BYTES = 1024 * 1024;
/** A 413 case sends over a megabyte each time; a few of them tell as much as many. */
const OVERSIZED_REQUESTS = 10;
const SERVER_CORE = 0;
const CLIENT_CORE = 1;
const SETTLE_MS = 300;
const VERIFY_TIMEOUT_MS = 120_000;
const BASELINE_SCRIPT = 'bench/baseline.ts';
const SINK_SCRIPT = 'bench/slack-sink.ts';

export interface BenchSettings {
  durationSeconds: number;
  repeats: number;
  warmupSeconds: number;
  connections: number;
  fixedRatePerSecond: number;
  fixedRateConnections: number;
  rejectedRequests: number;
  /** handler.ts, or a copy of it to compare. */
  handlerScript: string;
  quick: boolean;
  /** Where the servers' stdout logs go. */
  logDir: string;
}

/** One server's figures over the repeats of one run. */
export interface ServerSummary {
  requestsPerSecond: Summary;
  p50Ms: number;
  p99Ms: number;
  cpuMicrosPerRequest: Summary;
  serverCpuShare: number;
  clientCpuShare: number;
  otherCpuShare: number;
  idleRssBytes: number;
  afterLoadRssBytes: number;
  requests: number;
  statuses: Record<string, number>;
  errors: number;
  /** The `outcome` of each delivery as the handler logged it (empty for the baseline). */
  outcomes: Record<string, number>;
  /** Messages the Slack sink received during the measured repeats (end-to-end run only). */
  posted?: number;
}

/** The handler beside the baseline in one run. */
export interface Comparison {
  handler: ServerSummary;
  baseline: ServerSummary;
  /** Median handler req/s over median baseline req/s. */
  ratio: number;
  ratioPerRepeat: number[];
  /** Baseline CPU per request over the handler's: the ratio a server-bound run would show. */
  cpuRatio: number;
  /** Handler RSS after load over the baseline's. */
  rssRatio: number;
}

export interface FixedRateResult {
  targetPerSecond: number;
  connections: number;
  handler: LoadResult;
  baseline: LoadResult;
}

export interface RuntimeResult {
  runtime: Runtime;
  /** The receive path's req/s over the baseline's. */
  ratio: number;
  receive: Comparison;
  endToEnd: Comparison;
  fixedRate: FixedRateResult;
  rejections: RejectionResult[];
  verify: VerificationReport;
}

type Progress = (message: string) => void;

interface Pair {
  handler: ServerProcess;
  baseline: ServerProcess;
}

/** Runs every part of the bench on `runtime`; servers are stopped before it returns. */
export async function benchRuntime(
  runtime: Runtime,
  settings: BenchSettings,
  nextDelivery: () => Delivery,
  progress: Progress,
): Promise<RuntimeResult> {
  const started: ServerProcess[] = [];
  const start = async (name: string, script: string, env: Record<string, string>) => {
    // The sink runs on Node and shares the load generator's core: the server core is for the
    // server under test alone.
    const isSink = script === SINK_SCRIPT;
    const server = await startServer({
      name: `${name} on ${runtime}`,
      runtime: isSink ? 'node' : runtime,
      script,
      env,
      core: isSink ? CLIENT_CORE : SERVER_CORE,
      logDir: settings.logDir,
    });
    started.push(server);
    return server;
  };

  try {
    progress(`${runtime}: starting the servers`);
    const sink = await start('slack sink', SINK_SCRIPT, {});
    const slack = { SLACK_WEBHOOK_URL: `${sink.origin}/services/T000/B000/bench` };
    const secret = { PLATFORM_SIGNING_SECRET: BENCH_SECRET };
    const starting = [
      start('handler', settings.handlerScript, secret),
      start('baseline', BASELINE_SCRIPT, {}),
      start('handler e2e', settings.handlerScript, { ...secret, ...slack }),
      start('baseline e2e', BASELINE_SCRIPT, slack),
    ] as const;
    // Every start ends, in success or failure, before one failure can stop the others.
    await Promise.allSettled(starting);
    const [handler, baseline, handlerEndToEnd, baselineEndToEnd] = await Promise.all(starting);
    const dryRun = { handler, baseline };
    const endToEndPair = { handler: handlerEndToEnd, baseline: baselineEndToEnd };
    await sleep(SETTLE_MS);
    const idle = new Map(started.map((server) => [server, server.rssBytes()]));

    progress(`${runtime}: receive path (dry run)`);
    const receive = await compare(dryRun, idle, settings, nextDelivery, progress);

    progress(`${runtime}: fixed rate of ${settings.fixedRatePerSecond} req/s`);
    const fixedRate = await runFixedRate(dryRun, settings, nextDelivery);

    progress(`${runtime}: keep-alive after refusals`);
    const rejections: RejectionResult[] = [];
    for (const rejection of rejectionCases(HANDLER_MAX_BODY_BYTES)) {
      const count =
        rejection.expectedStatus === 413 ? OVERSIZED_REQUESTS : settings.rejectedRequests;
      rejections.push(await checkKeepAlive(handler.origin, rejection, count));
    }
    await Promise.all([handler.stop(), baseline.stop()]);

    progress(`${runtime}: end to end (Slack sink)`);
    const countPosts = async () => {
      const response = await fetch(`${sink.origin}/count`);
      return ((await response.json()) as { posts: number }).posts;
    };
    const endToEnd = await compare(
      endToEndPair,
      idle,
      settings,
      nextDelivery,
      progress,
      countPosts,
    );
    await Promise.all(started.map((server) => server.stop()));

    progress(`${runtime}: verification micro-benchmark`);
    const verify = runVerifyBench(runtime, settings);
    return { runtime, ratio: receive.ratio, receive, endToEnd, fixedRate, rejections, verify };
  } finally {
    await Promise.all(started.map((server) => server.stop()));
  }
}

/**
 * Warms both servers up, then measures them in turn, swapping which goes first on every
 * repeat so that drift in the machine's speed falls on both alike.
 */
async function compare(
  pair: Pair,
  idleRss: Map<ServerProcess, number>,
  settings: BenchSettings,
  nextDelivery: () => Delivery,
  progress: Progress,
  countPosts?: () => Promise<number>,
): Promise<Comparison> {
  const load = { durationSeconds: settings.durationSeconds, connections: settings.connections };
  for (const server of [pair.handler, pair.baseline]) {
    if (settings.warmupSeconds > 0) {
      await driveLoad(server, { ...load, durationSeconds: settings.warmupSeconds, nextDelivery });
    }
    server.readNewOutput();
  }

  const runs = new Map<ServerProcess, LoadResult[]>([
    [pair.handler, []],
    [pair.baseline, []],
  ]);
  const posted = new Map<ServerProcess, number>([
    [pair.handler, 0],
    [pair.baseline, 0],
  ]);
  const outcomes: Record<string, number> = {};
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    const order = repeat % 2 === 0 ? [pair.handler, pair.baseline] : [pair.baseline, pair.handler];
    for (const server of order) {
      const postsBefore = countPosts ? await countPosts() : 0;
      const result = await driveLoad(server, { ...load, nextDelivery });
      // Requests still in flight when the client stopped finish during the pause.
      await sleep(SETTLE_MS);
      if (countPosts) {
        posted.set(server, (posted.get(server) ?? 0) + (await countPosts()) - postsBefore);
      }
      if (server === pair.handler) countOutcomes(server.readNewOutput(), outcomes);
      runs.get(server)?.push(result);
      progress(
        `  ${server.name}, repeat ${repeat + 1}/${settings.repeats}: ` +
          `${Math.round(result.requestsPerSecond)} req/s, ` +
          `${Math.round(result.serverCpuMicrosPerRequest)} µs CPU/req`,
      );
    }
  }

  const summarizeServer = (server: ServerProcess): ServerSummary => ({
    ...summarizeRuns(runs.get(server) ?? []),
    idleRssBytes: idleRss.get(server) ?? Number.NaN,
    afterLoadRssBytes: server.rssBytes(),
    outcomes: server === pair.handler ? outcomes : {},
    ...(countPosts ? { posted: posted.get(server) ?? 0 } : {}),
  });
  const handler = summarizeServer(pair.handler);
  const baseline = summarizeServer(pair.baseline);
  const handlerRuns = runs.get(pair.handler) ?? [];
  const baselineRuns = runs.get(pair.baseline) ?? [];

  return {
    handler,
    baseline,
    ratio: handler.requestsPerSecond.median / baseline.requestsPerSecond.median,
    ratioPerRepeat: handlerRuns.map(
      (run, i) => run.requestsPerSecond / (baselineRuns[i]?.requestsPerSecond ?? Number.NaN),
    ),
    cpuRatio: baseline.cpuMicrosPerRequest.median / handler.cpuMicrosPerRequest.median,
    rssRatio: handler.afterLoadRssBytes / baseline.afterLoadRssBytes,
  };
}

function summarizeRuns(runs: LoadResult[]) {
  const statuses: Record<string, number> = {};
  for (const run of runs) {
    for (const [status, count] of Object.entries(run.statuses)) {
      statuses[status] = (statuses[status] ?? 0) + count;
    }
  }
  return {
    requestsPerSecond: summarize(runs.map((run) => run.requestsPerSecond)),
    p50Ms: median(runs.map((run) => run.p50Ms)),
    p99Ms: median(runs.map((run) => run.p99Ms)),
    cpuMicrosPerRequest: summarize(runs.map((run) => run.serverCpuMicrosPerRequest)),
    serverCpuShare: median(runs.map((run) => run.serverCpuShare)),
    clientCpuShare: median(runs.map((run) => run.clientCpuShare)),
    otherCpuShare: median(runs.map((run) => run.otherCpuShare)),
    requests: runs.reduce((sum, run) => sum + run.requests, 0),
    statuses,
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
  };
}

async function runFixedRate(
  pair: Pair,
  settings: BenchSettings,
  nextDelivery: () => Delivery,
): Promise<FixedRateResult> {
  const load = {
    durationSeconds: settings.durationSeconds,
    connections: settings.fixedRateConnections,
    overallRate: settings.fixedRatePerSecond,
    nextDelivery,
  };
  const handler = await driveLoad(pair.handler, load);
  pair.handler.readNewOutput();
  await sleep(SETTLE_MS);
  const baseline = await driveLoad(pair.baseline, load);
  return {
    targetPerSecond: settings.fixedRatePerSecond,
    connections: settings.fixedRateConnections,
    handler,
    baseline,
  };
}

/** Runs bench/verify.ts on `runtime`, pinned to the server core, and parses its JSON. */
function runVerifyBench(runtime: Runtime, settings: BenchSettings): VerificationReport {
  const [command, args] = verifyCommand(runtime, settings);
  const result = spawnSync(command, args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: VERIFY_TIMEOUT_MS,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT },
  });
  if (result.status !== 0) {
    throw new Error(`bench/verify.ts on ${runtime} failed: ${result.error ?? result.stderr}`);
  }
  return JSON.parse(result.stdout) as VerificationReport;
}

function verifyCommand(runtime: Runtime, settings: BenchSettings): [string, string[]] {
  const flags = ['--json', '--handler', settings.handlerScript];
  if (settings.quick) flags.push('--quick');
  const [command, args] = runtimeCommand(runtime, 'bench/verify.ts');
  const full = [...args, ...flags];
  return HAS_TASKSET ? ['taskset', ['-c', String(SERVER_CORE), command, ...full]] : [command, full];
}

function countOutcomes(log: string, into: Record<string, number>): void {
  for (const match of log.matchAll(/"outcome":"(\w+)"/g)) {
    const outcome = match[1] ?? 'unknown';
    into[outcome] = (into[outcome] ?? 0) + 1;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
