// A plain OAuth 2.0 provider shaped like Facebook, for Gatehouse's black-box tests, built on
// oauth2-mock-server. Test-only: any client id, no login page, profiles settable over HTTP.
//
//   node oauth2-idp.mjs --port 0            # 0 = pick a free port
//   node oauth2-idp.mjs --port 9500 --keep-alive
//
// Prints one JSON line {"base_url":"http://127.0.0.1:PORT","port":PORT} on stdout once
// listening. Exits when its stdin closes (so it never outlives the test process that spawned
// it), unless --keep-alive is given.
//
// Endpoints (Facebook's paths; OpenID discovery and JWKS are switched off):
//   GET  /dialog/oauth           approves at once: 302 to redirect_uri?code=..&state=..
//   POST /oauth/access_token     {"access_token","token_type":"bearer","expires_in"}, no ID token
//   GET  /me                     the profile of the person the bearer token was issued for
// Test routes:
//   POST /test/accounts          {"login":"alice","profile":{...}} sets what /me returns for the
//                                authorization requests that carry login_hint=alice
//   GET  /test/accounts/<login>  that profile
//   GET  /test/requests          the token requests seen so far (client auth method, PKCE)

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'keep-alive': { type: 'boolean', default: false },
  },
});

const ENDPOINTS = {
  authorize: '/dialog/oauth',
  token: '/oauth/access_token',
  userinfo: '/me',
  // Not Facebook's; answered with 404 below so nothing can rely on them.
  wellKnownDocument: '/.disabled/openid-configuration',
  jwks: '/.disabled/jwks',
};
const DISABLED = new Set([
  ENDPOINTS.wellKnownDocument,
  ENDPOINTS.jwks,
  '/.well-known/openid-configuration',
  '/jwks',
  '/token',
  '/authorize',
  '/userinfo',
  '/revoke',
  '/endsession',
  '/introspect',
]);

// Profiles set by the tests, by login hint. A hint that is not in the table gets defaults; a
// request without a hint is "anonymous".
const accounts = new Map();
// code -> {profile, client_id, redirect_uri}: single use, like a real provider's codes.
const codes = new Map();
// access token -> profile.
const tokens = new Map();
// What the token endpoint saw, newest last (no secrets: only which method was used).
const tokenRequests = [];

function profileFor(login) {
  const set = accounts.get(login);
  if (set) {
    return set;
  }
  return { id: `${login}-id`, name: login, email: `${login}@good.test` };
}

function clientAuth(req) {
  const header = req.headers.authorization ?? '';
  if (header.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return {
      method: 'client_secret_basic',
      client_id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
    };
  }
  if (req.body?.client_secret !== undefined) {
    return { method: 'client_secret_post', client_id: req.body.client_id };
  }
  return { method: 'none', client_id: req.body?.client_id };
}

const issuer = new OAuth2Issuer();
await issuer.keys.generate('RS256');
const service = new OAuth2Service(issuer, ENDPOINTS);

// The authorization request approves at once; remember whom the code is for.
service.on('beforeAuthorizeRedirect', (redirect, req) => {
  const code = redirect.url.searchParams.get('code');
  if (!code) {
    return;
  }
  const login = typeof req.query.login_hint === 'string' ? req.query.login_hint : 'anonymous';
  codes.set(code, {
    profile: profileFor(login),
    client_id: req.query.client_id,
    redirect_uri: req.query.redirect_uri,
  });
});

// The code exchange: check what oauth2-mock-server does not (single use, same client and
// redirect URI as the authorization request), then answer like Facebook.
service.on('beforeResponse', (response, req) => {
  const body = req.body ?? {};
  const auth = clientAuth(req);
  tokenRequests.push({
    grant_type: body.grant_type,
    auth_method: auth.method,
    client_id: auth.client_id,
    code_verifier: body.code_verifier !== undefined,
    redirect_uri: body.redirect_uri,
  });
  const grant = codes.get(body.code);
  codes.delete(body.code);
  if (
    body.grant_type !== 'authorization_code' ||
    !grant ||
    grant.client_id !== auth.client_id ||
    grant.redirect_uri !== body.redirect_uri
  ) {
    response.statusCode = 400;
    response.body = { error: 'invalid_grant' };
    return;
  }
  // oauth2-mock-server's tokens are JWTs of the same claims for the same client within one
  // second: two parallel logins could get the same token and read each other's profile. An
  // opaque random token per exchange keeps every login's profile its own.
  const accessToken = randomBytes(32).toString('hex');
  tokens.set(accessToken, grant.profile);
  response.body = {
    access_token: accessToken,
    token_type: 'bearer',
    expires_in: response.body.expires_in,
  };
});

service.on('beforeUserinfo', (response, req) => {
  const header = req.headers.authorization ?? '';
  const profile = header.startsWith('Bearer ') ? tokens.get(header.slice(7)) : undefined;
  if (!profile) {
    response.statusCode = 400;
    response.body = {
      error: { message: 'Invalid OAuth access token.', type: 'OAuthException', code: 190 },
    };
    return;
  }
  response.body = profile;
});

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) {
      throw new Error('body too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function testRoutes(req, res, path) {
  if (req.method === 'POST' && path === '/test/accounts') {
    let input;
    try {
      input = JSON.parse(await readBody(req));
    } catch {
      send(res, 400, { error: 'body must be JSON' });
      return true;
    }
    if (typeof input?.login !== 'string' || typeof input?.profile !== 'object') {
      send(res, 400, { error: 'expected {"login": string, "profile": object}' });
      return true;
    }
    accounts.set(input.login, input.profile);
    send(res, 200, { login: input.login, profile: input.profile });
    return true;
  }
  if (req.method === 'GET' && path.startsWith('/test/accounts/')) {
    const login = decodeURIComponent(path.slice('/test/accounts/'.length));
    send(res, 200, { login, profile: profileFor(login) });
    return true;
  }
  if (req.method === 'GET' && path === '/test/requests') {
    send(res, 200, { token_requests: tokenRequests });
    return true;
  }
  return false;
}

const handler = service.requestHandler;
const server = createServer(async (req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  try {
    if (await testRoutes(req, res, path)) {
      return;
    }
  } catch (error) {
    send(res, 500, { error: String(error) });
    return;
  }
  if (DISABLED.has(path)) {
    send(res, 404, { error: 'not_found' });
    return;
  }
  handler(req, res);
});

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), args.host, resolve);
});
const { port } = server.address();
const baseUrl = `http://${args.host}:${port}`;
issuer.url = baseUrl;
process.stdout.write(`${JSON.stringify({ base_url: baseUrl, port })}\n`);

if (!args['keep-alive']) {
  const shutdown = () => {
    server.close();
    process.exit(0);
  };
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
