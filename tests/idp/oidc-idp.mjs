// A real OpenID Connect provider for Gatehouse's black-box tests, built on oidc-provider.
// Test-only: open dynamic client registration, any password, claims settable over HTTP.
//
//   node oidc-idp.mjs --port 0            # 0 = pick a free port
//   node oidc-idp.mjs --port 9400 --keep-alive
//   node oidc-idp.mjs --port 0 --issuer http://127.0.0.1:9401   # behind a proxy at that URL
//
// Prints one JSON line {"issuer":"http://127.0.0.1:PORT","port":PORT} on stdout once listening.
// Exits when its stdin closes (so it never outlives the test process that spawned it), unless
// --keep-alive is given.
//
// Routes added on top of oidc-provider's:
//   POST /test/accounts               {"login":"alice","claims":{...}} sets the claims of a login id
//   GET  /test/accounts/<login>       the claims that login id currently gets
//   POST /interaction/<uid>/login     form login=..&password=.. (any password) finishes the login
// oidc-provider's own dev interactions stay on:
//   GET  /interaction/<uid>           the login form
//   POST /interaction/<uid>           form prompt=login&login=..&password=..
//   GET  /interaction/<uid>/abort     ends the request with error=access_denied at the client

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'keep-alive': { type: 'boolean', default: false },
    // The public URL when a reverse proxy fronts the provider (tests/conformance puts its
    // fault-injecting proxy there). Endpoint URLs follow the Host header the proxy forwards.
    issuer: { type: 'string' },
  },
});

// Per-login-id claims set by the tests. A login id that is not in the table gets defaults.
// The account id oidc-provider keeps (and puts in `sub`) is the claims' sub; subjects maps it back.
const accounts = new Map();
const subjects = new Map();

function claimsFor(login) {
  const set = accounts.get(login);
  if (set) {
    return { sub: login, ...set };
  }
  return {
    sub: login,
    email: `${login}@good.test`,
    email_verified: true,
    name: login,
  };
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `test-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

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

function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(body);
}

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), args.host, resolve);
});
const { port } = server.address();
const issuer = args.issuer ?? `http://${args.host}:${port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: true },
    // Open registration: every test registers its own client with its own redirect_uris.
    registration: { enabled: true, initialAccessToken: false },
  },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // `id` is a login id (straight from a login form) or a subject (from a session or a code).
  async findAccount(_ctx, id) {
    const login = accounts.has(id) ? id : (subjects.get(id) ?? id);
    const claims = claimsFor(login);
    return {
      accountId: String(claims.sub),
      async claims() {
        return claimsFor(login);
      },
    };
  },
  // Consent is granted at once for the OpenID scopes, so the login is one form post.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) {
        return grant;
      }
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><title>IdP error</title><pre id="error">${
      String(out.error).replace(/[<&>]/g, '')}: ${
      String(out.error_description ?? '').replace(/[<&>]/g, '')}</pre>`;
  },
});

provider.use(async (ctx, next) => {
  const { method, path } = ctx;

  if (method === 'POST' && path === '/test/accounts') {
    let input;
    try {
      input = JSON.parse(await readBody(ctx.req));
    } catch (err) {
      return json(ctx, 400, { error: `invalid JSON: ${err.message}` });
    }
    if (typeof input?.login !== 'string' || !input.login
        || typeof input.claims !== 'object' || input.claims === null) {
      return json(ctx, 400, { error: 'expected {"login": string, "claims": object}' });
    }
    accounts.set(input.login, input.claims);
    subjects.set(String(claimsFor(input.login).sub), input.login);
    return json(ctx, 200, { login: input.login, claims: claimsFor(input.login) });
  }

  const account = path.match(/^\/test\/accounts\/([^/]+)$/);
  if (method === 'GET' && account) {
    const login = decodeURIComponent(account[1]);
    return json(ctx, 200, { login, claims: claimsFor(login) });
  }

  const login = path.match(/^\/interaction\/([^/]+)\/login$/);
  if (method === 'POST' && login) {
    const form = new URLSearchParams(await readBody(ctx.req));
    const accountId = form.get('login');
    if (!accountId) {
      return json(ctx, 400, { error: 'form field "login" is required' });
    }
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== login[1]) {
        return json(ctx, 400, { error: 'interaction uid does not match the interaction cookie' });
      }
      await provider.interactionFinished(ctx.req, ctx.res, {
        login: { accountId: String(claimsFor(accountId).sub) },
      }, { mergeWithLastSubmission: false });
      ctx.respond = false;
    } catch (err) {
      return json(ctx, 400, { error: `${err.name}: ${err.message}` });
    }
    return undefined;
  }

  return next();
});

server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);

function shutdown() {
  server.close();
  process.exit(0);
}

if (!args['keep-alive']) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
