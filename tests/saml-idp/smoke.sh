#!/usr/bin/env bash
# Checks the test SAML IdP with curl (and python3 for DEFLATE/base64) alone: start it with a
# fresh certificate, send an AuthnRequest over HTTP-Redirect, sign in, decode the answer, and
# verify its signature with xmlsec1 when installed.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/saml-idp ] || npm ci --no-audit --no-fund
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=smoke-idp \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkfifo "$work/in"
node saml-idp.mjs --cert "$work/cert.pem" --key "$work/key.pem" --port 0 \
  <"$work/in" >"$work/ready" 2>"$work/log" &
pid=$!
exec 3>"$work/in"   # keeps its stdin open until this script exits
for _ in $(seq 50); do [ -s "$work/ready" ] && break; sleep 0.1; done
cat "$work/ready"
base=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(r["sso_url"].rsplit("/saml/sso",1)[0])' "$work/ready")

acs=http://127.0.0.1:9/acme/sso/s1/acs
sp=http://127.0.0.1:9/acme/sso/s1/metadata
req=$(python3 - "$acs" "$sp" <<'PY'
import base64, sys, urllib.parse, zlib
acs, sp = sys.argv[1:]
xml = ('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
       'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_smoke1" Version="2.0" '
       f'IssueInstant="2026-01-01T00:00:00Z" AssertionConsumerServiceURL="{acs}">'
       f'<saml:Issuer>{sp}</saml:Issuer></samlp:AuthnRequest>')
c = zlib.compressobj(9, zlib.DEFLATED, -15)
print(urllib.parse.quote(base64.b64encode(c.compress(xml.encode()) + c.flush()).decode(), safe=''))
PY
)
curl -sf -c "$work/jar" -b "$work/jar" "$base/saml/sso?SAMLRequest=$req&RelayState=smoke-rs" >"$work/form.html"
authn=$(grep -o "name=\"_authnRequest\" type='hidden' value='[^']*'" "$work/form.html" \
  | sed "s/.*value='//; s/'\$//; s/&#x3D;/=/g")
curl -sf -o /dev/null "$base/settings" --data-urlencode "audience=$sp"
curl -sf -c "$work/jar" -b "$work/jar" "$base/signin" \
  --data-urlencode userName=alice@good.test --data-urlencode email=alice@good.test \
  --data-urlencode firstName=Alice --data-urlencode lastName=Example \
  --data-urlencode "displayName=Alice Example" --data-urlencode groups=Everyone \
  --data-urlencode "nameIdFormat=urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" \
  --data-urlencode "_authnRequest=$authn" >"$work/post.html"
grep -q "action=\"$acs\"" "$work/post.html" || { echo "FAIL: does not post to $acs"; exit 1; }
grep -q 'name="RelayState" value="smoke-rs"' "$work/post.html" || { echo "FAIL: RelayState"; exit 1; }
python3 - "$work/post.html" >"$work/response.xml" <<'PY'
import base64, html, re, sys
page = open(sys.argv[1]).read()
value = re.search(r'name="SAMLResponse"\s+value="([^"]*)"', page).group(1)
sys.stdout.write(base64.b64decode(html.unescape(value)).decode())
PY
for want in 'InResponseTo="_smoke1"' "Destination=\"$acs\"" "Recipient=\"$acs\"" \
    "<saml:Audience>$sp</saml:Audience>" '>alice@good.test</saml:NameID>'; do
  grep -qF "$want" "$work/response.xml" || { echo "FAIL: response lacks $want"; exit 1; }
done
if command -v xmlsec1 >/dev/null; then
  xmlsec1 --verify --pubkey-cert-pem "$work/cert.pem" \
    --id-attr:ID urn:oasis:names:tc:SAML:2.0:protocol:Response "$work/response.xml" 2>&1 | grep -q '^OK' \
    || { echo "FAIL: xmlsec1 rejects the signature"; exit 1; }
fi
echo "OK: SAML IdP at $base answered the AuthnRequest with a signed response for $acs"
