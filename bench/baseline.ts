/**
 * The bench's baseline receiver: the same Hono, server adapter and runtime as handler.ts,
 * doing the least a receiver must (read the body, parse it as JSON, answer 200) and, with
 * SLACK_WEBHOOK_URL set, the same outbound POST. What the handler costs beyond it is
 * verification, validation, the dedupe ledger and the log line.
 *
 *   node --import tsx bench/baseline.ts | bun run bench/baseline.ts | deno run -A bench/baseline.ts
 */
import { Hono } from 'hono';

const WEBHOOK_PATH = '/webhooks/platform';
const HOST = '127.0.0.1';

interface RuntimeGlobals {
  Bun?: {
    serve(options: { port: number; hostname: string; fetch: App['fetch'] }): { port: number };
  };
  Deno?: {
    serve(
      options: { port: number; hostname: string; onListen?: () => void },
      fetch: App['fetch'],
    ): { addr: { port: number } };
  };
}

type App = { fetch: (request: Request) => Response | Promise<Response> };

const runtime = globalThis as typeof globalThis & RuntimeGlobals;
const slackWebhookUrl = process.env.SLACK_WEBHOOK_URL?.trim() || undefined;
const decoder = new TextDecoder();

const app = new Hono();
app.post(WEBHOOK_PATH, async (c) => {
  const event = JSON.parse(decoder.decode(await c.req.arrayBuffer()));
  if (slackWebhookUrl) {
    const text = `${event.data.buyer.email} just installed ${event.data.pack.name}`;
    const response = await fetch(slackWebhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text, mrkdwn: false }),
    });
    await response.text();
  }
  return c.json({ ok: true, outcome: slackWebhookUrl ? 'posted' : 'not_sent' }, 200);
});

const fetchApp: App['fetch'] = (request) => app.fetch(request);
const requestedPort = Number(process.env.PORT || 0);
const port = await serve(requestedPort);
const name = runtime.Bun ? 'bun' : runtime.Deno ? 'deno' : 'node';
console.log(`baseline: listening on http://${HOST}:${port}${WEBHOOK_PATH} (${name})`);

async function serve(requested: number): Promise<number> {
  if (runtime.Bun)
    return runtime.Bun.serve({ port: requested, hostname: HOST, fetch: fetchApp }).port;
  if (runtime.Deno) {
    const options = { port: requested, hostname: HOST, onListen: () => {} };
    return runtime.Deno.serve(options, fetchApp).addr.port;
  }
  const { serve: serveNode } = await import('@hono/node-server');
  return new Promise((resolve) => {
    serveNode({ fetch: fetchApp, port: requested, hostname: HOST }, (info) => resolve(info.port));
  });
}
