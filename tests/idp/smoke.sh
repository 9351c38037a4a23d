#!/usr/bin/env bash
# Manual check of the test IdP with curl alone: start it, register a client, set an account,
# run /auth -> interaction -> login -> redirect, exchange the code, and print the ID token claims.
# Also checks the abort route. Needs node, npm, curl, python3.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund

work=$(mktemp -d)
trap 'exec 3>&-; wait 2>/dev/null; rm -rf "$work"' EXIT

# stdin stays open as long as fd 3 is open; closing it stops the IdP.
mkfifo "$work/stdin"
node oidc-idp.mjs --port 0 <"$work/stdin" >"$work/stdout" 2>"$work/stderr" &
exec 3>"$work/stdin"
for _ in $(seq 50); do [ -s "$work/stdout" ] && break; sleep 0.1; done
issuer=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["issuer"])' <"$work/stdout")
echo "issuer: $issuer"

redirect=http://127.0.0.1:1/cb
reg=$(curl -sf -H 'content-type: application/json' "$issuer/reg" \
  -d "{\"redirect_uris\":[\"$redirect\"],\"token_endpoint_auth_method\":\"client_secret_basic\"}")
client_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$reg")
client_secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$reg")
echo "client: $client_id"

curl -sf -H 'content-type: application/json' "$issuer/test/accounts" \
  -d '{"login":"alice","claims":{"sub":"alice-sub","email":"alice@good.test","email_verified":"true","name":"Alice Example"}}'
echo

verifier=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
challenge=$(printf %s "$verifier" | openssl dgst -binary -sha256 | base64 | tr '+/' '-_' | tr -d '=')
jar="$work/jar"

location() { grep -i '^location:' | head -1 | sed 's/^[Ll]ocation: *//' | tr -d '\r'; }
absolute() { case "$1" in http*) echo "$1" ;; *) echo "$issuer$1" ;; esac; }

auth="$issuer/auth?response_type=code&client_id=$client_id&redirect_uri=$redirect&scope=openid%20profile%20email&state=st123&nonce=n456&code_challenge=$challenge&code_challenge_method=S256"
step1=$(absolute "$(curl -s -o /dev/null -D - -c "$jar" -b "$jar" "$auth" | location)")
echo "1 /auth -> $step1"
uid=${step1##*/interaction/}
step2=$(absolute "$(curl -s -o /dev/null -D - -c "$jar" -b "$jar" -d login=alice -d password=x \
  "$issuer/interaction/$uid/login" | location)")
echo "2 login -> $step2"
step3=$(curl -s -o /dev/null -D - -c "$jar" -b "$jar" "$step2" | location)
echo "3 resume -> $step3"
code=$(python3 -c 'import sys,urllib.parse as u; q=u.parse_qs(u.urlparse(sys.argv[1]).query); print(q["code"][0]); assert q["state"][0]=="st123" and q["iss"][0]==sys.argv[2], q' "$step3" "$issuer")
echo "code: $code"

tokens=$(curl -sf -u "$client_id:$client_secret" "$issuer/token" -d grant_type=authorization_code \
  -d "code=$code" -d "redirect_uri=$redirect" -d "code_verifier=$verifier")
python3 - "$tokens" <<'EOF'
import base64, json, sys
tok = json.loads(sys.argv[1])["id_token"]
part = tok.split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
print("id_token claims:", json.dumps(claims))
assert claims["sub"] == "alice-sub" and claims["email"] == "alice@good.test", claims
assert claims["email_verified"] == "true" and claims["name"] == "Alice Example" and claims["nonce"] == "n456", claims
EOF

# Abort: a fresh browser, /auth, then the abort route: the client gets error=access_denied.
rm -f "$jar"
step1=$(absolute "$(curl -s -o /dev/null -D - -c "$jar" -b "$jar" "${auth/st123/st789}" | location)")
step2=$(absolute "$(curl -s -o /dev/null -D - -c "$jar" -b "$jar" "$step1/abort" | location)")
step3=$(curl -s -o /dev/null -D - -c "$jar" -b "$jar" "$step2" | location)
echo "abort -> $step3"
case "$step3" in "$redirect?error=access_denied"*state=st789*) ;; *) echo "abort did not return access_denied"; exit 1 ;; esac
echo "IdP smoke test passed"
