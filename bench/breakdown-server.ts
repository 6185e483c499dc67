/**
 * The handler with one stage of the receive path swapped out, for `npm run bench:breakdown`.
 * Only what handler.ts exports is used, so what is measured is handler.ts itself:
 *
 *   full         what `npm start` runs in dry run: memory ledger, one JSON log line each
 *   no-log       the log line is dropped
 *   no-ledger    a ledger that remembers nothing (every id is new, nothing is recorded)
 *   two-secrets  a second, wrong secret first: every delivery pays one more HMAC check
 *
 * BREAKDOWN_VARIANT picks one.
 */
import {
  createLineWriter,
  createMemoryLedger,
  createWebhookHandler,
  type DeliveryLedger,
  type HandlerOptions,
} from '../handler.ts';
import { BENCH_SECRET } from './deliveries.ts';
import { HOST, serveOnLoopback } from './serve.ts';

const VARIANTS = ['full', 'no-log', 'no-ledger', 'two-secrets'] as const;
type Variant = (typeof VARIANTS)[number];

const variant = process.env.BREAKDOWN_VARIANT as Variant;
if (!VARIANTS.includes(variant)) {
  console.error(`breakdown-server: BREAKDOWN_VARIANT must be one of ${VARIANTS.join(', ')}.`);
  process.exit(1);
}

const forgetful: DeliveryLedger = {
  has: async () => false,
  add: async () => {},
  close: async () => {},
};
// The same line writer as npm start, so the log line costs here what it costs there.
const logLines = createLineWriter();
const options: HandlerOptions = {
  signingSecrets:
    variant === 'two-secrets' ? ['not-the-bench-secret', BENCH_SECRET] : [BENCH_SECRET],
  ledger: variant === 'no-ledger' ? forgetful : createMemoryLedger(),
  log: variant === 'no-log' ? () => {} : (line) => logLines.write(JSON.stringify(line)),
};
const handler = createWebhookHandler(options);
const port = await serveOnLoopback(handler.fetch);
console.log(`breakdown ${variant}: listening on http://${HOST}:${port}/webhooks/platform`);
