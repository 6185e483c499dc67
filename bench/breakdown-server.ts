/**
 * The handler with one stage of the receive path swapped out, for `npm run bench:breakdown`.
 * Only createWebhookHandler's public options are used, so what is measured is handler.ts:
 *
 *   full         what `npm start` runs in dry run: memory ledger, one JSON log line each
 *   no-log       the log line is dropped
 *   no-ledger    a ledger that remembers nothing (every id is new, nothing is recorded)
 *   two-secrets  a second, wrong secret first: every delivery pays one more HMAC check
 *
 * BREAKDOWN_VARIANT picks one; HANDLER_FILE picks the handler (default ../handler.ts).
 */
import type { DeliveryLedger, HandlerOptions } from '../handler.ts';
import { BENCH_SECRET } from './deliveries.ts';

const HOST = '127.0.0.1';
const VARIANTS = ['full', 'no-log', 'no-ledger', 'two-secrets'] as const;
type Variant = (typeof VARIANTS)[number];

type Fetch = (request: Request) => Response | Promise<Response>;
interface RuntimeGlobals {
  Bun?: { serve(options: { port: number; hostname: string; fetch: Fetch }): { port: number } };
  Deno?: {
    serve(
      options: { port: number; hostname: string; onListen?: () => void },
      fetch: Fetch,
    ): { addr: { port: number } };
  };
}
const runtime = globalThis as typeof globalThis & RuntimeGlobals;

const variant = process.env.BREAKDOWN_VARIANT as Variant;
if (!VARIANTS.includes(variant)) {
  console.error(`breakdown-server: BREAKDOWN_VARIANT must be one of ${VARIANTS.join(', ')}.`);
  process.exit(1);
}
const handlerUrl = new URL(process.env.HANDLER_FILE ?? '../handler.ts', import.meta.url);
const { createMemoryLedger, createWebhookHandler } = (await import(
  handlerUrl.href
)) as typeof import('../handler.ts');

const forgetful: DeliveryLedger = {
  has: async () => false,
  add: async () => {},
  close: async () => {},
};
const options: HandlerOptions = {
  signingSecrets:
    variant === 'two-secrets' ? ['not-the-bench-secret', BENCH_SECRET] : [BENCH_SECRET],
  ledger: variant === 'no-ledger' ? forgetful : createMemoryLedger(),
  log: variant === 'no-log' ? () => {} : batchedLineWriter(),
};
const handler = createWebhookHandler(options);
const port = await serve(handler.fetch);
console.log(`breakdown ${variant}: listening on http://${HOST}:${port}/webhooks/platform`);

/** One write per turn of the event loop, as handler.ts's own start() does. */
function batchedLineWriter(): NonNullable<HandlerOptions['log']> {
  let pending: string[] = [];
  const flush = () => {
    const text = `${pending.join('\n')}\n`;
    pending = [];
    process.stdout.write(text);
  };
  return (line) => {
    if (pending.push(JSON.stringify(line)) === 1) setTimeout(flush, 0);
  };
}

async function serve(fetch: Fetch): Promise<number> {
  if (runtime.Bun) return runtime.Bun.serve({ port: 0, hostname: HOST, fetch }).port;
  if (runtime.Deno) {
    return runtime.Deno.serve({ port: 0, hostname: HOST, onListen: () => {} }, fetch).addr.port;
  }
  const { serve: serveNode } = await import('@hono/node-server');
  return new Promise((resolve) => {
    serveNode({ fetch, port: 0, hostname: HOST }, (info) => resolve(info.port));
  });
}
