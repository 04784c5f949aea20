/**
 * JWT endpoints as simplejwt serves them for the reference: obtain a token
 * pair, refresh an access token (no rotation), verify any token. Error bodies copy simplejwt's, so
 * the python and TS clients react to them as they do to the reference.
 */
import type { FastifyInstance } from 'fastify';
import { UfdlError } from '../../protocol/errors.js';
import { hashPassword, verifyPassword, type TokenClaims } from '../auth.js';
import { tokenUser } from '../identity.js';
import { LoginThrottle } from '../login-throttle.js';
import { fieldError, requireObjectBody, stringField, type FieldErrors } from '../field-errors.js';
import { getUserByName, touchLastLogin } from '../store/users.js';

const NO_ACCOUNT = 'No active account found with the given credentials';

function invalidToken(): UfdlError {
  return new UfdlError('UFDL_ERR_AUTH_BAD_TOKEN', 'Token is invalid or expired', { extra: { code: 'token_not_valid' } });
}

/** Read the named required string fields of a body, or throw the 400 listing every bad one. */
function requireStrings<K extends string>(body: unknown, names: readonly K[]): Record<K, string> {
  const object = requireObjectBody(body);
  const errors: FieldErrors = {};
  const values = {} as Record<K, string>;
  for (const name of names) {
    const result = stringField(object[name]);
    if (Array.isArray(result)) errors[name] = result;
    else values[name] = result;
  }
  if (Object.keys(errors).length > 0) throw fieldError(errors);
  return values;
}

export async function authRoutes(app: FastifyInstance): Promise<void> {
  const { db, tokens } = app.ufdl;
  // Unknown users are checked against this hash too, so a login takes as long whether or not the
  // name exists (no user enumeration by timing).
  let dummyHash: Promise<string> | undefined;

  const throttle = new LoginThrottle({ allowed: app.ufdl.options.loginFailuresAllowed });

  app.post('/v1/auth/obtain', async (request, reply) => {
    const { username, password } = requireStrings(request.body, ['username', 'password'] as const);
    try {
      throttle.attempt(username, request.ip);
    } catch (err) {
      if (err instanceof UfdlError && typeof err.extra?.retry_after === 'number') void reply.header('retry-after', String(err.extra.retry_after));
      throw err;
    }
    const user = getUserByName(db, username);
    const ok = await verifyPassword(password, user?.password_hash ?? (await (dummyHash ??= hashPassword('not-a-password'))));
    if (!user || !ok || !user.is_active) {
      // Counted as a failure already (throttle.attempt).
      throw new UfdlError('UFDL_ERR_AUTH_BAD_CREDENTIALS', NO_ACCOUNT);
    }
    throttle.succeeded(username, request.ip);
    touchLastLogin(db, user.pk);
    const generation = user.token_generation;
    return { refresh: await tokens.issue(user.pk, 'refresh', generation), access: await tokens.issue(user.pk, 'access', generation) };
  });

  app.post('/v1/auth/refresh', async (request) => {
    const { refresh } = requireStrings(request.body, ['refresh'] as const);
    const claims = await tokens.verify(refresh, 'refresh');
    // A refresh token must not outlive its user's deactivation, deletion or password change.
    const user = validUser(claims);
    return { access: await tokens.issue(user.pk, 'access', user.token_generation) };
  });

  app.post('/v1/auth/verify', async (request) => {
    const { token } = requireStrings(request.body, ['token'] as const);
    // simplejwt's verify accepts a valid token of either type; a revoked one is not valid.
    for (const type of ['access', 'refresh'] as const) {
      let claims;
      try {
        claims = await tokens.verify(token, type);
      } catch {
        continue; // try the other type
      }
      validUser(claims);
      return {};
    }
    throw invalidToken();
  });

  /** The token's user, active and of the token's generation; else simplejwt's invalid-token 401. */
  function validUser(claims: TokenClaims) {
    try {
      return tokenUser(db, claims);
    } catch {
      throw invalidToken();
    }
  }
}
