import { encodeEvent, type SendOptions, send } from './deliver.ts';
import type { PlatformEvent } from './events.ts';

/** The outcome of one wrongly signed send; `rejected` holds only for a 401 answer. */
export type TamperResult = {
  event: PlatformEvent;
  status: number | null;
  error: string | null;
  rejected: boolean;
  duration_ms: number;
};

/** Spoils a hex signature by changing its last digit, so it is well-formed but wrong. */
export function tamperSignature(signature: string): string {
  const last = signature.at(-1) === '0' ? '1' : '0';
  return `${signature.slice(0, -1)}${last}`;
}

/** Sends an event once, without retry, under a spoiled signature; the target should answer 401. */
export async function sendTampered(
  event: PlatformEvent,
  options: SendOptions,
): Promise<TamperResult> {
  const body = encodeEvent(event);
  const signature = tamperSignature(await options.sign(body));
  const answer = await send(body, signature, options);

  return {
    event,
    status: answer.status,
    error: answer.error,
    rejected: answer.status === 401,
    duration_ms: answer.duration_ms,
  };
}
