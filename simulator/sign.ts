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

  return async function sign(body) {
    const bytes = typeof body === 'string' ? encoder.encode(body) : body;
    const mac = await crypto.subtle.sign('HMAC', await key, bytes);
    return toHex(new Uint8Array(mac));
  };
}

function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
