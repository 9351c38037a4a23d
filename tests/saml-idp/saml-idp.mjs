// A real SAML 2.0 identity provider for Gatehouse's black-box tests: saml-idp (pinned in
// package.json, with samlp 8.0.0 forced by `overrides`) started through its programmatic API.
// Test-only: no passwords; whoever posts the sign-in form gets an assertion for that profile.
//
//   node saml-idp.mjs --cert cert.pem --key key.pem --port 0 \
//        [--issuer urn:...] [--acs-url URL] [--audience URI] [--host 127.0.0.1] \
//        [--assertion-only] [--keep-alive]
//
// The certificate and key are PEM files the caller generated (this script generates nothing),
// e.g. openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=test-idp -days 2 -keyout key.pem -out cert.pem
//
// Prints one JSON line on stdout once listening:
//   {"port":P,"sso_url":"http://127.0.0.1:P/saml/sso","entity_id":"...","metadata_url":"http://127.0.0.1:P/metadata",...}
// Everything saml-idp itself logs goes to stderr. Exits when its stdin closes (so it never
// outlives the process that spawned it) unless --keep-alive is given.
//
// saml-idp's routes (see README.md):
//   GET|POST /saml/sso?SAMLRequest=..&RelayState=..  parses the AuthnRequest (HTTP-Redirect or
//                                                    HTTP-POST) and shows the profile form
//   POST /signin                                     signs the posted profile; answers an HTML
//                                                    page that auto-posts SAMLResponse and
//                                                    RelayState to the ACS URL
//   GET  /metadata                                   IdP metadata (EntityDescriptor)
//   POST /settings                                   changes any IdP option (global!), e.g.
//                                                    audience=..., acsUrl=..., signResponse=false

import http from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);

const { values: args } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    issuer: { type: 'string', default: 'urn:gatehouse:test:saml-idp' },
    // Only a fallback: saml-idp takes the ACS URL from the AuthnRequest's
    // AssertionConsumerServiceURL when there is one.
    'acs-url': { type: 'string', default: 'http://127.0.0.1:1/no-acs-url-configured' },
    // The one global audience (AudienceRestriction); POST /settings audience=... changes it.
    audience: { type: 'string', default: 'urn:gatehouse:test:no-audience-configured' },
    // Sign the Assertion only (default: the Response and the Assertion).
    'assertion-only': { type: 'boolean', default: false },
    'keep-alive': { type: 'boolean', default: false },
  },
});

function fail(message) {
  process.stderr.write(`saml-idp.mjs: ${message}\n`);
  process.exit(2);
}

if (!args.cert || !args.key) {
  fail('--cert CERT.pem and --key KEY.pem are required (PEM files; this script generates none)');
}

// saml-idp prints banners and every message it signs with console.log, and its request log
// (morgan) writes to process.stdout: send all of that to stderr, stdout is for the ready line.
const writeStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
console.log = (...parts) => console.error(...parts);
// saml-idp prefers $HOST/$PORT over its options.
delete process.env.PORT;
delete process.env.HOST;

// saml-idp's runServer() does not hand back its server; catch it as it is created so that
// --port 0 can report the port it got.
let server;
const createServer = http.createServer;
http.createServer = function patchedCreateServer(...rest) {
  server = createServer.apply(this, rest);
  http.createServer = createServer;
  return server;
};

const { runServer } = require('saml-idp');

runServer({
  host: args.host,
  port: Number(args.port),
  cert: args.cert,
  key: args.key,
  issuer: args.issuer,
  acsUrl: args['acs-url'],
  audience: args.audience,
  signResponse: !args['assertion-only'],
  https: false,
});

if (!server) {
  fail('saml-idp did not create an HTTP server');
}

function ready() {
  const { port } = server.address();
  const base = `http://${args.host}:${port}`;
  writeStdout(`${JSON.stringify({
    port,
    sso_url: `${base}/saml/sso`,
    entity_id: args.issuer,
    metadata_url: `${base}/metadata`,
    signin_url: `${base}/signin`,
    settings_url: `${base}/settings`,
  })}\n`);
}

if (server.listening) {
  ready();
} else {
  server.once('listening', ready);
}
server.once('error', (err) => fail(`cannot listen on ${args.host}:${args.port}: ${err.message}`));

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
