#!/usr/bin/env bash
# Rebuild static/vendor/ from the exact npm versions pinned in package-lock.json.
# The output is committed, so the app itself never needs Node; run this only to
# upgrade xterm.js (edit package.json, `npm install --package-lock-only`, rerun).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
vendor="$here/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm ci in a throwaway folder: exact lockfile install, no scripts, nothing left in the repo.
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# file in vendor/ <- package, path inside the package. The .mjs files are
# self-contained ES module bundles (the clipboard addon inlines js-base64).
files=(
  "xterm.mjs                @xterm/xterm             lib/xterm.mjs"
  "xterm.css                @xterm/xterm             css/xterm.css"
  "addon-fit.mjs            @xterm/addon-fit         lib/addon-fit.mjs"
  "addon-web-links.mjs      @xterm/addon-web-links   lib/addon-web-links.mjs"
  "addon-search.mjs         @xterm/addon-search      lib/addon-search.mjs"
  "addon-unicode11.mjs      @xterm/addon-unicode11   lib/addon-unicode11.mjs"
  "addon-clipboard.mjs      @xterm/addon-clipboard   lib/addon-clipboard.mjs"
  "addon-webgl.mjs          @xterm/addon-webgl       lib/addon-webgl.mjs"
)
licenses=(@xterm/xterm @xterm/addon-fit @xterm/addon-web-links @xterm/addon-search
          @xterm/addon-unicode11 @xterm/addon-clipboard @xterm/addon-webgl js-base64)

version() { node -p "require('$work/node_modules/$1/package.json').version"; }

rm -rf "$vendor"
mkdir -p "$vendor/licenses"
rows=""
for line in "${files[@]}"; do
  read -r out pkg path <<<"$line"
  cp "$work/node_modules/$pkg/$path" "$vendor/$out"
  rows+="| \`$out\` | \`$pkg@$(version "$pkg")\` | \`$path\` |"$'\n'
done
for pkg in "${licenses[@]}"; do
  src="$(ls "$work/node_modules/$pkg"/LICENSE* | head -n1)"
  cp "$src" "$vendor/licenses/${pkg#@xterm/}.LICENSE"
  rows+="| \`licenses/${pkg#@xterm/}.LICENSE\` | \`$pkg@$(version "$pkg")\` | \`$(basename "$src")\` |"$'\n'
done

cat >"$vendor/README.md" <<MD
# Vendored xterm.js (generated, do not edit)

Copied unchanged from npm packages by \`components/terminal/build_assets.sh\`,
at the exact versions in \`components/terminal/package-lock.json\`.
Committed so the app runs without Node. The browser loads these files from
\`/component/components.terminal.vendor/...\` (see \`components/terminal/__init__.py\`).

| file | package | path inside the package |
| --- | --- | --- |
${rows}
\`licenses/js-base64.LICENSE\`: js-base64 is bundled inside \`addon-clipboard.mjs\`.
Source maps are not copied (the \`sourceMappingURL\` comments then 404 only in devtools).

Rebuild (needs Node/npm and the npm registry):

    bash components/terminal/build_assets.sh

To upgrade: change the versions in \`package.json\`, run
\`npm install --package-lock-only --ignore-scripts\` in \`components/terminal/\`, then rebuild.
MD
echo "vendor assets written to $vendor"
