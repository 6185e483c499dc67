/**
 * Turns bench results into the Markdown report and the JSON document, and checks each figure
 * against its target. Targets are reported, never asserted: a miss is a finding, not a failure.
 */
import type { LoadResult } from './load.ts';
import type { RejectionResult } from './rejections.ts';
import { round } from './stats.ts';
import type { BenchSettings, Comparison, RuntimeResult, ServerSummary } from './suite.ts';
import type { SizeReport } from './verification.ts';

/** One target: the figure measured, the bound, and whether the figure is within it. */
export interface TargetCheck {
  value: number;
  bound: string;
  met: boolean;
}

/**
 * The receive-path ratio. When the load generator ran out of CPU in either run, req/s shows
 * the client's limit rather than the server's, so the target is judged by CPU per delivery.
 */
export interface ReceiveRatioCheck extends TargetCheck {
  clientBound: boolean;
  cpuRatio: number;
}

export interface Targets {
  receiveRatio: ReceiveRatioCheck;
  verifySmallRatio: TargetCheck;
  verifyLargeRatio: TargetCheck;
  rssRatio: TargetCheck;
  refusalsKeepAlive: { met: boolean; cases: Record<string, boolean> };
}

/** What the machine and its runtimes were. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryBytes: number;
  taskset: boolean;
  versions: Record<string, string>;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  /** Client CPU to build and sign one delivery, in µs: spent equally on both servers. */
  clientMicrosPerDelivery: number;
}

const SMALL_BYTES = 1024;
// A load generator busy this much of its core is the bottleneck of the run.
const CLIENT_BOUND_SHARE = 0.9;
const MEBIBYTE = 1024 * 1024;

/** Checks one runtime's figures against the issue's targets. */
export function checkTargets(result: RuntimeResult): Targets {
  const sizes = result.verify.sizes;
  const small = sizes.find((size) => size.bytes === SMALL_BYTES);
  const largest = Math.max(
    ...sizes.filter((size) => size.bytes > SMALL_BYTES).map((size) => size.ratioToSha256),
  );
  const cases = Object.fromEntries(result.rejections.map((r) => [r.name, r.keptAlive]));
  return {
    receiveRatio: receiveRatio(result, 0.85),
    verifySmallRatio: atMost(small?.ratioToFastestNative ?? Number.NaN, 1.5),
    verifyLargeRatio: atMost(largest, 1.2),
    rssRatio: atMost(result.receive.rssRatio, 1.3),
    refusalsKeepAlive: { met: Object.values(cases).every(Boolean), cases },
  };
}

function receiveRatio(result: RuntimeResult, bound: number): ReceiveRatioCheck {
  const { handler, baseline, ratio, cpuRatio } = result.receive;
  const clientBound =
    Math.max(handler.clientCpuShare, baseline.clientCpuShare) >= CLIENT_BOUND_SHARE;
  return {
    value: round(ratio),
    bound: `>= ${bound}`,
    met: (clientBound ? cpuRatio : ratio) >= bound,
    clientBound,
    cpuRatio: round(cpuRatio),
  };
}

function atMost(value: number, bound: number): TargetCheck {
  return { value: round(value), bound: `<= ${bound}`, met: value <= bound };
}

/** The JSON document: `{ runtimes: { node: { ratio, ... } }, machine, settings }`. */
export function toJson(
  results: RuntimeResult[],
  machine: MachineInfo,
  settings: BenchSettings,
): string {
  const runtimes = Object.fromEntries(
    results.map((result) => [result.runtime, { ...result, targets: checkTargets(result) }]),
  );
  const { logDir: _logDir, ...shown } = settings;
  // Three significant digits are all a bench on a shared 2-core machine can stand behind.
  return JSON.stringify({ runtimes, machine, settings: shown }, (_key, value) =>
    typeof value === 'number' && !Number.isInteger(value) ? round(value, 4) : value,
  );
}

/** The Markdown report: targets first, then each run's table, then how it was measured. */
export function toMarkdown(
  results: RuntimeResult[],
  machine: MachineInfo,
  settings: BenchSettings,
): string {
  const sections = [
    '# Bench results',
    '',
    describeRun(settings, machine),
    '',
    describeMachine(machine),
    '',
    ...busyWarning(results),
    '## Targets (reported, not asserted)',
    '',
    targetsTable(results),
    '',
    '## Receive path (dry run: no SLACK_WEBHOOK_URL)',
    '',
    comparisonTable(results, (result) => result.receive),
    '',
    '## End to end (every install posted to a local node:http Slack sink)',
    '',
    comparisonTable(results, (result) => result.endToEnd),
    '',
    `## Fixed rate (${settings.fixedRatePerSecond} req/s over ` +
      `${settings.fixedRateConnections} connections)`,
    '',
    fixedRateTable(results),
    '',
    '## Refusals on a keep-alive connection',
    '',
    rejectionTable(results),
    '',
    '## Verification alone',
    '',
    verifyTable(results),
    '',
    '## How to read this',
    '',
    METHOD_NOTES,
  ];
  return `${sections.join('\n')}\n`;
}

/** Share of a core used by other processes above which req/s figures are called noisy. */
const BUSY_OTHER_CPU_SHARE = 0.25;

function busyWarning(results: RuntimeResult[]): string[] {
  // Only the receive path: end to end, the sink is another process by design.
  const busiest = Math.max(
    ...results.flatMap((r) => [r.receive.handler.otherCpuShare, r.receive.baseline.otherCpuShare]),
  );
  if (!(busiest > BUSY_OTHER_CPU_SHARE)) return [];
  return [
    `**The machine was busy**: other processes used up to ${Math.round(busiest * 100)}% of a ` +
      'core during the receive-path runs (the "other" CPU column). Their req/s figures are ' +
      'noisy; CPU µs/req and its ratio hold up better. Rerun on a quiet machine to compare.',
    '',
  ];
}

function describeRun(settings: BenchSettings, machine: MachineInfo): string {
  const how = settings.quick ? ' --quick (a smoke, not a measurement)' : '';
  return (
    `Written by \`npm run bench\`${how}. ${settings.durationSeconds} s per measurement, ` +
    `${settings.repeats} repeat(s), ${settings.connections} connections, ~1 KiB signed ` +
    'install.created bodies with a fresh event id on every request (built and signed in ' +
    `the client as sent: ${machine.clientMicrosPerDelivery.toFixed(1)} µs of client CPU each).`
  );
}

function describeMachine(machine: MachineInfo): string {
  const versions = Object.entries(machine.versions).map(([name, version]) => `${name} ${version}`);
  const pinning = machine.taskset
    ? 'pinned to core 0, client to core 1'
    : 'not pinned (no taskset)';
  return (
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${gigabytes(machine.memoryBytes)} GB; ` +
    `${versions.join(', ')}; server ${pinning}; load average ` +
    `${machine.loadAverageBefore.join(' ')} before, ${machine.loadAverageAfter.join(' ')} after.`
  );
}

const METHOD_NOTES = [
  '- Each runtime runs handler.ts and bench/baseline.ts (Hono on the same adapter: read the',
  '  body, JSON.parse, answer 200) under the same autocannon client, alternating which goes',
  '  first on each repeat. Figures are medians over repeats; "min-max" is their range.',
  '- Every request carries a fresh event id, so the handler never answers "duplicate"; each',
  '  body is signed in the client with node:crypto as it is sent (a few µs of client CPU),',
  '  and the baseline receives the same requests.',
  '- CPU µs/req is the server\'s utime+stime from /proc/<pid>/stat over the answers. "CPU',
  '  srv/cli/other" is server, load generator and every other process on the machine (noise),',
  '  each over wall time, in cores. A client share near 100% means the run was client-bound:',
  '  then req/s understates that server and the CPU ratio is the better comparison. When',
  '  either receive-path run had a client share of 90% or more, the targets table says',
  '  "client-bound" and judges the 0.85 target by the CPU ratio instead.',
  '- The handler logs one JSON line per delivery to stdout, sent to a file.',
  '- autocannon limits rate as a per-second quota per connection: each connection sends its',
  '  quota back to back from the start of each second, then waits. The fixed-rate p99 is',
  '  therefore that of short bursts at full speed over few connections, not of evenly spaced',
  "  arrivals. Latencies are the client's own timings (autocannon's histogram keeps whole",
  '  milliseconds), without coordinated-omission correction.',
  '- Keep-alive: N refused requests in sequence through one keep-alive socket; "connections"',
  '  counts the sockets the client had to open.',
  "- End to end, the Slack sink (node:http) shares the load generator's core, so its CPU",
  '  shows as "other".',
  '- Verification: one call at a time, awaited when async; the methods take turns in short',
  '  batches and each keeps its fastest batch. The node:crypto and Bun rows include decoding',
  '  the hex header and timingSafeEqual, as a receiver must.',
].join('\n');

function targetsTable(results: RuntimeResult[]): string {
  const rows = results.map((result) => {
    const targets = checkTargets(result);
    const refusals = Object.entries(targets.refusalsKeepAlive.cases)
      .map(([name, kept]) => `${name} ${mark(kept)}`)
      .join(', ');
    const receive = targets.receiveRatio;
    return [
      result.runtime,
      receive.clientBound
        ? `${receive.value} client-bound; by CPU ${receive.cpuRatio} ${mark(receive.met)}`
        : check(receive),
      check(targets.verifySmallRatio),
      check(targets.verifyLargeRatio),
      check(targets.rssRatio),
      refusals,
    ];
  });
  return table(
    [
      'runtime',
      'handler/baseline req/s (>= 0.85)',
      'verify 1 KiB / fastest native HMAC (<= 1.5)',
      'verify 64 KiB-1 MiB / SHA-256 (<= 1.2)',
      'RSS after load handler/baseline (<= 1.3)',
      'refusals keep the connection',
    ],
    rows,
  );
}

function comparisonTable(
  results: RuntimeResult[],
  pick: (result: RuntimeResult) => Comparison,
): string {
  const rows: string[][] = [];
  for (const result of results) {
    const comparison = pick(result);
    rows.push(serverRow(result.runtime, 'handler', comparison.handler));
    rows.push(serverRow(result.runtime, 'baseline', comparison.baseline));
    const perRepeat = comparison.ratioPerRepeat.map((ratio) => ratio.toFixed(2)).join(', ');
    rows.push([
      result.runtime,
      '**handler/baseline**',
      `**${comparison.ratio.toFixed(2)}** (per repeat ${perRepeat})`,
      '',
      '',
      `baseline/handler ${comparison.cpuRatio.toFixed(2)}`,
      '',
      `${comparison.rssRatio.toFixed(2)} after load`,
      '',
    ]);
  }
  return table(
    [
      'runtime',
      'server',
      'req/s (min-max)',
      'p50 ms',
      'p99 ms',
      'CPU µs/req',
      'CPU srv/cli/other',
      'RSS MB idle → after',
      'answers',
    ],
    rows,
  );
}

function serverRow(runtime: string, name: string, server: ServerSummary): string[] {
  const rps = server.requestsPerSecond;
  const answers = Object.keys(server.outcomes).length > 0 ? server.outcomes : server.statuses;
  const posted = server.posted === undefined ? '' : `; sink got ${server.posted}`;
  return [
    runtime,
    name,
    `${whole(rps.median)} (${whole(rps.min)}-${whole(rps.max)})`,
    server.p50Ms.toFixed(2),
    server.p99Ms.toFixed(2),
    whole(server.cpuMicrosPerRequest.median),
    shares(server),
    `${megabytes(server.idleRssBytes)} → ${megabytes(server.afterLoadRssBytes)}`,
    `${counts(answers)}${server.errors ? `; ${server.errors} errors` : ''}${posted}`,
  ];
}

function fixedRateTable(results: RuntimeResult[]): string {
  const rows: string[][] = [];
  for (const result of results) {
    const { handler, baseline } = result.fixedRate;
    for (const [name, run] of [
      ['handler', handler],
      ['baseline', baseline],
    ] as const) {
      rows.push(fixedRateRow(result.runtime, name, run));
    }
  }
  return table(
    ['runtime', 'server', 'achieved req/s', 'p50 ms', 'p99 ms', 'max ms', 'CPU µs/req', 'answers'],
    rows,
  );
}

function fixedRateRow(runtime: string, name: string, run: LoadResult): string[] {
  return [
    runtime,
    name,
    whole(run.requestsPerSecond),
    run.p50Ms.toFixed(2),
    run.p99Ms.toFixed(2),
    run.maxMs.toFixed(1),
    whole(run.serverCpuMicrosPerRequest),
    `${counts(run.statuses)}${run.errors ? `; ${run.errors} errors` : ''}`,
  ];
}

function rejectionTable(results: RuntimeResult[]): string {
  const rows = results.flatMap((result) =>
    result.rejections.map((rejection: RejectionResult) => [
      result.runtime,
      rejection.name,
      String(rejection.requests),
      String(rejection.connections),
      `${counts(rejection.statuses)}${rejection.errors ? `; ${rejection.errors} errors` : ''}`,
      mark(rejection.keptAlive),
    ]),
  );
  return table(
    ['runtime', 'refusal', 'requests', 'connections opened', 'answers', 'kept alive'],
    rows,
  );
}

function verifyTable(results: RuntimeResult[]): string {
  const rows = results.flatMap((result) =>
    result.verify.sizes.map((size: SizeReport) => {
      const micros = (method: string) => {
        const timing = size.timings.find((t) => t.method === method);
        return timing ? timing.micros.toFixed(2) : '-';
      };
      const handler = size.timings.find((t) => t.method === 'handler');
      return [
        result.runtime,
        size.bytes >= MEBIBYTE ? `${size.bytes / MEBIBYTE} MiB` : `${size.bytes / 1024} KiB`,
        micros('handler'),
        micros('webcrypto'),
        micros('node:crypto'),
        micros('Bun.CryptoHasher'),
        whole(handler?.megabytesPerSecond ?? Number.NaN),
        `${size.ratioToFastestNative.toFixed(2)} (${size.fastestNative})`,
        size.ratioToSha256.toFixed(2),
        whole(result.verify.sha256MegabytesPerSecond),
      ];
    }),
  );
  return table(
    [
      'runtime',
      'body',
      'handler µs',
      'WebCrypto µs',
      'node:crypto µs',
      'Bun.CryptoHasher µs',
      'handler MB/s',
      'handler / fastest native',
      'handler / SHA-256',
      'SHA-256 MB/s',
    ],
    rows,
  );
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function check(target: TargetCheck): string {
  return `${target.value} ${mark(target.met)}`;
}

function mark(met: boolean): string {
  return met ? 'yes' : '**no**';
}

function shares(server: ServerSummary): string {
  const percent = (share: number) => `${Math.round(share * 100)}%`;
  return [server.serverCpuShare, server.clientCpuShare, server.otherCpuShare]
    .map(percent)
    .join(' / ');
}

function counts(byKey: Record<string, number>): string {
  return Object.entries(byKey)
    .map(([key, count]) => `${count} ${key}`)
    .join(', ');
}

function whole(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(0);
}

function gigabytes(bytes: number): string {
  return (bytes / 1e9).toFixed(0);
}
