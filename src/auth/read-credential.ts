/** Request headers as Node's HTTP layer hands them over (repeated headers may arrive as arrays). */
export type CredentialHeaders = {
  authorization?: string | string[] | undefined;
  "x-api-key"?: string | string[] | undefined;
};

/**
 * A credential is one run of visible ASCII without a comma: JWTs and generated tokens fit, while
 * whitespace, control characters and the comma that joins repeated header lines do not.
 */
const TOKEN = /^[\x21-\x2B\x2D-\x7E]+$/;
const BEARER = /^Bearer ([^ ]+)$/i;

/**
 * Reads the caller's bearer token: `Authorization: Bearer <token>` (scheme case-insensitive,
 * exactly one space, one token), or, when `allowXApiKey` is set (gateway routes, because the
 * Anthropic SDK sends its key there), `x-api-key: <token>`. Anything ambiguous gives `undefined`:
 * repeated headers, an `Authorization` header that is not a well-formed bearer credential, or
 * both headers carrying different tokens.
 */
export function readBearerToken(headers: CredentialHeaders, options: { allowXApiKey: boolean }): string | undefined {
  const authorization = headers.authorization;
  const apiKey = options.allowXApiKey ? headers["x-api-key"] : undefined;
  if (Array.isArray(authorization) || Array.isArray(apiKey)) return undefined;

  let fromAuthorization: string | undefined;
  if (authorization !== undefined) {
    const token = BEARER.exec(authorization)?.[1];
    if (token === undefined || !TOKEN.test(token)) return undefined;
    fromAuthorization = token;
  }

  let fromApiKey: string | undefined;
  if (apiKey !== undefined) {
    if (!TOKEN.test(apiKey)) return undefined;
    fromApiKey = apiKey;
  }

  if (fromAuthorization !== undefined && fromApiKey !== undefined && fromAuthorization !== fromApiKey) return undefined;
  return fromAuthorization ?? fromApiKey;
}
