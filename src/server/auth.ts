/**
 * Passwords (scrypt) and JWTs (HS256, simplejwt's claims as the reference renames them: `jtt` token
 * type, `upk` user pk, `exp`, `iat`, `jti`).
 */
import { createHmac, randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { UfdlError } from '../protocol/errors.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number }) => Promise<Buffer>;

// N=2^14, r=8: ~16 MiB and a few tens of ms per hash; enough against offline guessing of a leaked
// database without making login a bottleneck.
const SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, saltB64, keyB64] = stored.split('$');
  if (scheme !== 'scrypt' || !saltB64 || !keyB64) return false;
  const expected = Buffer.from(keyB64, 'base64');
  const actual = await scrypt(password, Buffer.from(saltB64, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export type TokenType = 'access' | 'refresh';

export interface TokenClaims {
  upk: number;
  jtt: TokenType;
  /** The user's token generation when it was issued; absent in tokens issued before generations (0). */
  gen?: number;
  exp: number;
  iat: number;
  jti: string;
}

export class TokenService {
  readonly #key: Uint8Array;

  constructor(
    secret: string,
    private readonly lifetimes: { accessSeconds: number; refreshSeconds: number },
  ) {
    this.#key = new TextEncoder().encode(secret);
  }

  static generateSecret(): string {
    return randomBytes(48).toString('base64url');
  }

  /**
   * A key for another of the server's signatures (`purpose` names it), derived from the token secret:
   * replicas share the secret through the database, so what one signs the others accept.
   */
  derivedKey(purpose: string): Buffer {
    return createHmac('sha256', this.#key).update(purpose).digest();
  }

  /** A token for user `userPk` of token generation `generation` (see `users.token_generation`). */
  async issue(userPk: number, type: TokenType, generation = 0): Promise<string> {
    const seconds = type === 'access' ? this.lifetimes.accessSeconds : this.lifetimes.refreshSeconds;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jtt: type, upk: userPk, gen: generation })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt(now)
      .setExpirationTime(now + seconds)
      .setJti(randomUUID().replaceAll('-', ''))
      .sign(this.#key);
  }

  /** Verify signature, expiry and type. Throws UFDL_ERR_AUTH_BAD_TOKEN with simplejwt's body fields. */
  async verify(token: string, type: TokenType): Promise<TokenClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'] });
      if (payload.jtt !== type || typeof payload.upk !== 'number') throw new Error(`not an ${type} token`);
      return payload as unknown as TokenClaims;
    } catch (err) {
      const expired = err instanceof joseErrors.JWTExpired;
      throw new UfdlError('UFDL_ERR_AUTH_BAD_TOKEN', type === 'access' ? 'Given token not valid for any token type' : 'Token is invalid or expired', {
        cause: err,
        extra: {
          code: 'token_not_valid',
          ...(type === 'access'
            ? { messages: [{ token_class: 'AccessToken', token_type: 'access', message: expired ? 'Token is expired' : 'Token is invalid or expired' }] }
            : {}),
        },
      });
    }
  }
}
