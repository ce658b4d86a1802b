#!/usr/bin/env bash
# The oldest Node.js of each line package.json's `engines` admits (^20.19.0 gives 20.19.0)
# loads what a user's first commands load: the CLI, and the peer's web UI, which the daemon
# starts by default. CI tests the newest of each line (scripts/with-node.sh); the oldest
# differ in what matters here: @fastify/static require()s content-disposition, an ES module,
# which Node supports from 20.19 and 22.12 only (before, the daemon failed with
# ERR_REQUIRE_ESM). Each Node is fetched alone from the npm registry (with-node.sh --bin),
# with no copy of the project: run it after `npm run build`, in the project. The last release
# before each floor must be refused by bin/coterie.js with UNSUPPORTED_NODE.
#
#   bash scripts/engines-floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/peer/ui/index.js ] || { echo "engines-floor: no dist/: run npm run build first" >&2; exit 1; }

floors=$(node -e '
  const semver = require("semver");
  const range = require("./package.json").engines.node;
  console.log(range.split("||").map((part) => semver.minVersion(part.trim()).version).join(" "));
')
status=0
# Runs node $version ($node_bin) with the arguments after `what`, and says how it went.
check() {
  local what=$1; shift
  if out=$("$node_bin" "$@" 2>&1); then
    echo "engines-floor: node $version: $what: ok"
  else
    echo "engines-floor: node $version: $what: FAILED" >&2
    printf '%s\n' "$out" | grep -v '^\s*at ' | head -8 >&2
    status=1
  fi
}
for version in $floors; do
  node_bin=$(bash scripts/with-node.sh --bin "$version")
  check "coterie --version" bin/coterie.js --version
  check "the web UI's modules" --input-type=module -e "await import('./dist/peer/ui/index.js')"

  # The newest release of the minor before a floor (20.18.x before 20.19.0) is refused by
  # bin/coterie.js with a sentence and a code, not left to fail on ERR_REQUIRE_ESM later.
  IFS=. read -r major minor _ <<<"$version"
  [ "$minor" -gt 0 ] || continue
  below_bin=$(bash scripts/with-node.sh --bin "$major.$((minor - 1))")
  below=$("$below_bin" -p 'process.versions.node')
  if out=$("$below_bin" bin/coterie.js --version 2>&1); then
    echo "engines-floor: node $below: coterie ran, but engines refuses $below" >&2
    status=1
  elif [[ $out == *"[UNSUPPORTED_NODE]"* ]]; then
    echo "engines-floor: node $below: refused with UNSUPPORTED_NODE: ok"
  else
    echo "engines-floor: node $below: failed without saying why:" >&2
    printf '%s\n' "$out" | head -8 >&2
    status=1
  fi
done
exit "$status"
