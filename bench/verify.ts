/**
 * Micro-benchmark of signature verification alone, on whichever runtime runs it:
 *
 *   node --import tsx bench/verify.ts | bun run bench/verify.ts | deno run -A bench/verify.ts
 *
 * Flags: --json (one JSON document on stdout), --quick (a smoke: a few ms per case),
 * --handler FILE (time another copy of handler.ts, such as a candidate change under /tmp).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { createVerifier } from '../handler.ts';
import {
  FULL_BUDGET,
  measureVerification,
  QUICK_BUDGET,
  type VerificationReport,
} from './verification.ts';

const values = readFlags();

const handlerUrl = values.handler
  ? pathToFileURL(resolve(values.handler)).href
  : new URL('../handler.ts', import.meta.url).href;
const handler: { createVerifier: typeof createVerifier } = await import(handlerUrl);
const report = await measureVerification(
  handler.createVerifier,
  values.quick ? QUICK_BUDGET : FULL_BUDGET,
);
console.log(values.json ? JSON.stringify(report) : formatReport(report));

function formatReport(report: VerificationReport): string {
  const lines = [
    `verify on ${report.runtime} ${report.version}: SHA-256 ` +
      `${Math.round(report.sha256MegabytesPerSecond)} MB/s`,
  ];
  for (const size of report.sizes) {
    const timings = size.timings.map((t) => `${t.method} ${t.micros.toFixed(2)} µs`).join(', ');
    const native = `handler/${size.fastestNative} ${size.ratioToFastestNative.toFixed(2)}x`;
    const sha = `handler/SHA-256 ${size.ratioToSha256.toFixed(2)}x`;
    lines.push(`${size.bytes} B: ${timings}; ${native}, ${sha}`);
  }
  return lines.join('\n');
}

function readFlags() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: {
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        handler: { type: 'string' },
      },
    }).values;
  } catch (error) {
    console.error(`verify: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}
