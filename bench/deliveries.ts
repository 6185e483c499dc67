/**
 * Makes the bench's deliveries: ~1 KB signed install.created events, each with a fresh id, so
 * the handler's dedupe never short-cuts the receive path. Signing happens per request in the
 * load generator, with node:crypto (about 4 µs of client CPU each on the bench machine).
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const BENCH_SECRET = 'whsec_bench_0123456789abcdef';
export const BODY_BYTES = 1024;

const ID_DIGITS = 10;
const ID_PLACEHOLDER = `evt_bench_${'0'.repeat(ID_DIGITS)}`;

/** One request's body and its X-Platform-Signature value. */
export interface Delivery {
  body: Buffer;
  signature: string;
}

/** Returns a function that makes the next delivery, every one with an id not used before. */
export function createDeliveries(secret = BENCH_SECRET): () => Delivery {
  const [head, tail] = bodyTemplate().split(ID_PLACEHOLDER) as [string, string];
  // A prefix per process keeps ids apart even if a server outlived an earlier bench run.
  const prefix = `evt_${Date.now().toString(36)}_`;
  let count = 0;

  return function nextDelivery() {
    count++;
    const id = `${prefix}${String(count).padStart(ID_PLACEHOLDER.length - prefix.length, '0')}`;
    const body = Buffer.from(`${head}${id}${tail}`);
    return { body, signature: createHmac('sha256', secret).update(body).digest('hex') };
  };
}

/** The client CPU one delivery costs (build and sign), in µs, over `count` after as many more. */
export function measureDeliveryMicros(nextDelivery: () => Delivery, count = 5_000): number {
  for (let i = 0; i < count; i++) nextDelivery();
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) nextDelivery();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

/** The fixture, padded with a pack summary to BODY_BYTES, with a placeholder for the id. */
function bodyTemplate(): string {
  const fixture = JSON.parse(
    readFileSync(new URL('../fixtures/install.created.json', import.meta.url), 'utf8'),
  );
  const event = { ...fixture, id: ID_PLACEHOLDER };
  const unpadded = JSON.stringify(withSummary(event, '')).length;
  return JSON.stringify(withSummary(event, 'x'.repeat(Math.max(0, BODY_BYTES - unpadded))));
}

function withSummary(event: { data: { pack: object } }, summary: string): object {
  return { ...event, data: { ...event.data, pack: { ...event.data.pack, summary } } };
}
