/**
 * The bench's baseline receiver: the same Hono, server adapter and runtime as handler.ts,
 * doing the least a receiver must (read the body, parse it as JSON, answer 200) and, with
 * SLACK_WEBHOOK_URL set, the same outbound POST. What the handler costs beyond it is
 * verification, validation, the dedupe ledger and the log line.
 *
 *   node --import tsx bench/baseline.ts | bun run bench/baseline.ts | deno run -A bench/baseline.ts
 */
import { Hono } from 'hono';
import { HOST, RUNTIME_NAME, serveOnLoopback } from './serve.ts';

const WEBHOOK_PATH = '/webhooks/platform';
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

const port = await serveOnLoopback((request) => app.fetch(request), Number(process.env.PORT || 0));
console.log(`baseline: listening on http://${HOST}:${port}${WEBHOOK_PATH} (${RUNTIME_NAME})`);
