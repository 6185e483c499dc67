/**
 * Times signature verification alone: the handler's `createVerifier` against the runtime's own
 * HMAC-SHA256 primitives, at 1 KiB, 64 KiB and 1 MiB, and the raw SHA-256 speed that bounds
 * them. Runs unchanged on Node, Bun and Deno, which all offer WebCrypto and node:crypto.
 */
import { Buffer } from 'node:buffer';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SignatureVerifier } from '../handler.ts';

export const VERIFY_SIZES_BYTES = [1024, 64 * 1024, 1024 * 1024] as const;
const SHA256_BYTES = 1024 * 1024;
const SECRET = 'whsec_bench_0123456789abcdef';
/** About how long one timed batch of a case lasts. */
const BATCH_MS = 1;

/** How long to spend on each case: warm-up first, then `batches` timed slices of it. */
export interface TimingBudget {
  warmupMs: number;
  batchMs: number;
  batches: number;
}

export const FULL_BUDGET: TimingBudget = { warmupMs: 100, batchMs: 50, batches: 10 };
export const QUICK_BUDGET: TimingBudget = { warmupMs: 15, batchMs: 25, batches: 3 };

/** One way to verify, timed at one size, in microseconds per verification (fastest batch). */
export interface VerifyTiming {
  method: 'handler' | 'webcrypto' | 'node:crypto' | 'Bun.CryptoHasher';
  micros: number;
  megabytesPerSecond: number;
}

export interface SizeReport {
  bytes: number;
  timings: VerifyTiming[];
  /** The fastest of the runtime's own primitives at this size. */
  fastestNative: VerifyTiming['method'];
  /** The handler's time over the fastest native one's; the target is at most 1.5 at 1 KiB. */
  ratioToFastestNative: number;
  /** The handler's time over one SHA-256 pass of the body; the target is at most 1.2. */
  ratioToSha256: number;
}

export interface VerificationReport {
  runtime: 'node' | 'bun' | 'deno';
  version: string;
  /** node:crypto createHash('sha256') over 1 MiB, in MB/s (10^6 bytes). */
  sha256MegabytesPerSecond: number;
  sizes: SizeReport[];
}

interface BunHasher {
  update(data: Uint8Array): BunHasher;
  digest(): Uint8Array;
}

interface RuntimeGlobals {
  Bun?: { version: string; CryptoHasher: new (algorithm: string, key: string) => BunHasher };
  Deno?: { version: { deno: string } };
}

const runtimeGlobals = globalThis as typeof globalThis & RuntimeGlobals;

/** Measures every method at every size with `createVerifier` from the handler given. */
export async function measureVerification(
  createVerifier: (secrets: readonly string[]) => SignatureVerifier,
  budget: TimingBudget,
): Promise<VerificationReport> {
  const shaBody = randomBytes(SHA256_BYTES);
  const [shaMicros = Number.NaN] = await timeCases(
    [() => createHash('sha256').update(shaBody).digest()],
    budget,
  );
  const sha256MegabytesPerSecond = SHA256_BYTES / shaMicros;

  const verify = createVerifier([SECRET]);
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(SECRET),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  );
  const sizes: SizeReport[] = [];
  for (const bytes of VERIFY_SIZES_BYTES) {
    const body = new Uint8Array(randomBytes(bytes));
    const header = createHmac('sha256', SECRET).update(body).digest('hex');
    const signature = new Uint8Array(Buffer.from(header, 'hex'));
    const methods: [VerifyTiming['method'], () => unknown][] = [
      ['handler', () => verify(body, header)],
      ['webcrypto', () => crypto.subtle.verify('HMAC', key, signature, body)],
      ['node:crypto', () => matches(createHmac('sha256', SECRET).update(body).digest(), header)],
    ];
    const Bun = runtimeGlobals.Bun;
    if (Bun) {
      const hmac = () => new Bun.CryptoHasher('sha256', SECRET).update(body).digest();
      methods.push(['Bun.CryptoHasher', () => matches(hmac(), header)]);
    }
    const times = await timeCases(
      methods.map(([, run]) => run),
      budget,
    );
    const timings = methods.map(([method], i): VerifyTiming => {
      const micros = times[i] ?? Number.NaN;
      return { method, micros, megabytesPerSecond: bytes / micros };
    });
    sizes.push(compare(bytes, timings, sha256MegabytesPerSecond));
  }
  return { ...describeRuntime(), sha256MegabytesPerSecond, sizes };
}

function compare(bytes: number, timings: VerifyTiming[], shaMegabytesPerSecond: number) {
  const handler = timings.find((timing) => timing.method === 'handler');
  const natives = timings.filter((timing) => timing.method !== 'handler');
  const fastest = natives.reduce((best, timing) => (timing.micros < best.micros ? timing : best));
  const handlerMicros = handler?.micros ?? Number.NaN;
  return {
    bytes,
    timings,
    fastestNative: fastest.method,
    ratioToFastestNative: handlerMicros / fastest.micros,
    ratioToSha256: handlerMicros / (bytes / shaMegabytesPerSecond),
  };
}

/** Decodes the hex header per call, as a receiver must, and compares in constant time. */
function matches(mac: Uint8Array, header: string): boolean {
  const expected = Buffer.from(header, 'hex');
  return expected.byteLength === mac.byteLength && timingSafeEqual(mac, expected);
}

/**
 * Times each of `runs`, awaiting a call when it returns a promise, and returns microseconds
 * per call. The cases take turns, one batch each per round, so a burst of load from another
 * process falls on all of them; each keeps its fastest batch, since interference only ever
 * adds time. Calls are grouped so that reading the clock costs little against the call.
 */
async function timeCases(runs: (() => unknown)[], budget: TimingBudget): Promise<number[]> {
  const callsPerCheck = [];
  for (const run of runs) callsPerCheck.push(await calibrate(run, budget.warmupMs));

  const fastest = runs.map(() => Number.POSITIVE_INFINITY);
  for (let round = 0; round < budget.batches; round++) {
    for (const [i, run] of runs.entries()) {
      const calls = callsPerCheck[i] ?? 1;
      const start = performance.now();
      let done = 0;
      while (performance.now() - start < budget.batchMs) {
        await callTimes(run, calls);
        done += calls;
      }
      const micros = ((performance.now() - start) * 1000) / done;
      fastest[i] = Math.min(fastest[i] ?? micros, micros);
    }
  }
  return fastest;
}

/** Warms `run` up for `warmupMs` and returns how many calls take about BATCH_MS. */
async function calibrate(run: () => unknown, warmupMs: number): Promise<number> {
  const start = performance.now();
  let calls = 0;
  for (let group = 1; performance.now() - start < warmupMs; group = Math.min(group * 2, 64)) {
    await callTimes(run, group);
    calls += group;
  }
  const microsPerCall = ((performance.now() - start) * 1000) / Math.max(1, calls);
  return Math.max(1, Math.round((BATCH_MS * 1000) / microsPerCall));
}

async function callTimes(run: () => unknown, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const result = run();
    if (result instanceof Promise) await result;
  }
}

function describeRuntime(): Pick<VerificationReport, 'runtime' | 'version'> {
  if (runtimeGlobals.Bun) return { runtime: 'bun', version: runtimeGlobals.Bun.version };
  if (runtimeGlobals.Deno) return { runtime: 'deno', version: runtimeGlobals.Deno.version.deno };
  return { runtime: 'node', version: process.versions.node };
}
