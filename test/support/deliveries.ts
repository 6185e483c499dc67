/**
 * Builds valid signed deliveries so each test can break exactly one thing.
 * Signing here uses node:crypto on purpose: an implementation independent of the handler's.
 */
import { createHmac } from 'node:crypto';
import type { PlatformEvent } from '../../handler.ts';

export const TEST_SECRET = 'whsec_test_0123456789abcdef';
export const SLACK_URL = 'https://hooks.slack.com/services/T000/B000/testtoken';

/** The hex HMAC-SHA256 of `body` under `secret`. */
export function sign(body: Uint8Array | string, secret = TEST_SECRET): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** A valid install event; `overrides` replace top-level fields. */
export function installEvent(overrides: Partial<PlatformEvent> = {}): PlatformEvent {
  return {
    id: 'evt_test_0001',
    type: 'install.created',
    created_at: '2026-12-01T09:30:00Z',
    data: {
      buyer: { email: 'ada@example.com' },
      pack: { name: 'Support Triage Pack' },
    },
    ...overrides,
  };
}

export interface DeliveryOptions {
  secret?: string;
  signature?: string | null;
  headers?: Record<string, string>;
}

/** A POST to the webhook route carrying `body` (an event, or raw text/bytes) and its signature. */
export function delivery(
  body: PlatformEvent | string | Uint8Array,
  options: DeliveryOptions = {},
): Request {
  const bytes =
    typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  const signature =
    options.signature === undefined ? sign(bytes, options.secret) : options.signature;
  const headers = new Headers({ 'content-type': 'application/json', ...options.headers });
  if (signature !== null) headers.set('x-platform-signature', signature);
  return new Request('http://handler.test/webhooks/platform', {
    method: 'POST',
    headers,
    body: bytes as BodyInit,
  });
}
