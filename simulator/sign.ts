import { createHmac, KeyObject } from 'node:crypto';
import { SimulatorError } from './simulator-error.ts';

/** The header that carries the Platform's signature of the raw request body. */
export const SIGNATURE_HEADER = 'X-Platform-Signature';

/** Signs exact body bytes (a string is signed as its UTF-8 bytes) and resolves to lowercase hex. */
export type Signer = (body: Uint8Array<ArrayBuffer> | string) => Promise<string>;

const encoder = new TextEncoder();

/** Creates a signer for one secret: HMAC-SHA256 keyed with the secret's UTF-8 bytes. */
export function createSigner(secret: string): Signer {
  if (secret.length === 0) {
    throw new SimulatorError(
      'invalid_option',
      'Cannot sign: the signing secret is empty. Set PLATFORM_SIGNING_SECRET or pass --secret.',
    );
  }

  // Import once; every signature made by this signer reuses the same CryptoKey.
  const key = crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );

  // node:crypto signs a small body in a few µs; crypto.subtle.sign spends some 50 µs of call
  // overhead and a trip to the thread pool (npm run bench:simulator). WebCrypto stays the
  // fallback for a runtime whose node:crypto cannot take a CryptoKey.
  const nodeKey = key.then(toKeyObject);

  return async function sign(body) {
    const bytes = typeof body === 'string' ? encoder.encode(body) : body;
    const keyObject = await nodeKey;
    if (keyObject !== null) return createHmac('sha256', keyObject).update(bytes).digest('hex');

    const mac = await crypto.subtle.sign('HMAC', await key, bytes);
    return toHex(new Uint8Array(mac));
  };
}

function toKeyObject(key: CryptoKey): KeyObject | null {
  try {
    return KeyObject.from(key);
  } catch {
    return null;
  }
}

function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
