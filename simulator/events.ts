import { readFile } from 'node:fs/promises';
import { SimulatorError } from './simulator-error.ts';

/** The seven event types the Platform sends, one fixture each in `fixtures/<type>.json`. */
export const EVENT_TYPES = [
  'install.created',
  'install.canceled',
  'review.posted',
  'skill.error',
  'usage.metered.daily',
  'payout.released',
  'payout.paid',
] as const;

/** One of the Platform's event types. */
export type EventType = (typeof EVENT_TYPES)[number];

/** The Platform's event envelope; `data` differs per type. */
export type PlatformEvent = {
  id: string;
  type: string;
  created_at: string;
  data: Record<string, unknown>;
};

/** Options for {@link createDelivery}; `now` and `randomUUID` are injectable for tests. */
export type DeliveryCopyOptions = {
  /** Keep the source id, to resend the same event (the receiver should deduplicate it). */
  keepId?: boolean;
  /** Give a copy with `data.buyer.email` its own address, e.g. `ada+1a2b3c4d@example.com`. */
  uniqueBuyer?: boolean;
  now?: () => number;
  randomUUID?: () => string;
};

const FIXTURES_URL = new URL('../fixtures/', import.meta.url);

/** Tells whether a string names one of the seven event types. */
export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** Loads the bundled fixture for an event type. */
export async function loadFixture(type: string): Promise<PlatformEvent> {
  if (!isEventType(type)) {
    throw new SimulatorError(
      'unknown_event_type',
      `Unknown event type "${type}". Use one of: ${EVENT_TYPES.join(', ')}.`,
    );
  }

  return loadFixtureFile(new URL(`${type}.json`, FIXTURES_URL));
}

/** Loads one event from a JSON file and checks it has the envelope's four fields. */
export async function loadFixtureFile(path: string | URL): Promise<PlatformEvent> {
  const name = path instanceof URL ? path.pathname : path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SimulatorError(
      'fixture_unreadable',
      `Cannot read fixture ${name}: ${(error as Error).message}. Check the path.`,
      { cause: error },
    );
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SimulatorError(
      'fixture_invalid',
      `Fixture ${name} is not valid JSON: ${(error as Error).message}.`,
      { cause: error },
    );
  }

  if (!isPlatformEvent(value)) {
    throw new SimulatorError(
      'fixture_invalid',
      `Fixture ${name} is not an event: it needs string id, type and created_at, and object data.`,
    );
  }

  return value;
}

/** Tells whether a parsed value has the event envelope's shape. */
export function isPlatformEvent(value: unknown): value is PlatformEvent {
  if (!isRecord(value)) return false;

  return (
    typeof value.id === 'string' &&
    typeof value.type === 'string' &&
    typeof value.created_at === 'string' &&
    isRecord(value.data)
  );
}

/** Makes the copy that one send carries: a fresh id and `created_at` unless `keepId` is set. */
export function createDelivery(
  event: PlatformEvent,
  options: DeliveryCopyOptions = {},
): PlatformEvent {
  const now = options.now ?? Date.now;
  const randomUUID = options.randomUUID ?? (() => crypto.randomUUID());
  const copy = structuredClone(event);

  if (!options.keepId) {
    copy.id = `evt_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
    // Fixtures carry whole seconds, so copies do too.
    copy.created_at = new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  if (options.uniqueBuyer) tagBuyerEmail(copy);

  return copy;
}

// Ties a Slack message back to its event: the address carries the end of the event id.
function tagBuyerEmail(event: PlatformEvent): void {
  const buyer = event.data.buyer;
  if (!isRecord(buyer) || typeof buyer.email !== 'string') return;

  const at = buyer.email.lastIndexOf('@');
  if (at <= 0) return;

  const tag = event.id.slice(-8);
  buyer.email = `${buyer.email.slice(0, at)}+${tag}${buyer.email.slice(at)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
