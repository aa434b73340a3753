#!/usr/bin/env bash
# The fresh-install stage: what a new user gets from `pip install loopsink`, checked in new
# virtual environments before the test suite runs.
#
#   bash scripts/fresh-install.sh [PYTHON]      (default: python3)
#
# 1. `pip install .` with NO extras: `import loopsink`, an asyncio program through install()
#    into a FileHandler, a sync program through start_in_thread, `loopsink --help`,
#    `--version`, and `listen --backend trio` failing with a message that names loopsink[trio].
# 2. Each extra alone, in a venv of its own, with its feature used for real:
#    [trio] under trio.run, [smtp] a mail to a local aiosmtpd server (aiosmtpd is installed as
#    a test tool), [http] a POST to a local HTTP server, [aiofiles] a stream, [fastapi] the lifespan under uvicorn, [aiohttp] the
#    cleanup context. The checks live in scripts/fresh_install_checks.py.
# pip's cache and the local package index are reused, so this takes seconds per venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-python3}"
ROOT="$(pwd)"
CHECKS="$ROOT/scripts/fresh_install_checks.py"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/loopsink-fresh.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
say() { echo "fresh-install [$version]: $*"; }
started=$SECONDS

new_venv() {  # new_venv NAME -> prints the venv's python
    # without its own pip (ensurepip takes seconds): the interpreter's pip installs into it
    "$PYTHON" -m venv --without-pip "$WORK/$1"
    echo "$WORK/$1/bin/python"
}

pip_quiet() {  # pip_quiet VENV_PYTHON ARGS...: pip's output only when it fails
    local py="$1"; shift
    if ! "$PYTHON" -m pip --python "$py" --disable-pip-version-check "$@" >"$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        say "pip $* failed"
        exit 1
    fi
}

# -- 1. no extras: `pip install .` exactly as the README says ---------------------------------
py="$(new_venv bare)"
t=$SECONDS
pip_quiet "$py" install "$ROOT"
say "pip install . (no extras) took $((SECONDS - t)) s"
pip_quiet "$py" check
(cd "$WORK" && "$py" "$CHECKS" bare "$WORK/out-bare")
bin="$WORK/bare/bin"
(cd "$WORK" && "$bin/loopsink" --help) | grep -q "^usage: loopsink" || { say "loopsink --help failed"; exit 1; }
want="loopsink $("$py" -c 'import loopsink; print(loopsink.__version__)')"
got="$(cd "$WORK" && "$bin/loopsink" --version)"
[ "$got" = "$want" ] || { say "loopsink --version printed '$got', expected '$want'"; exit 1; }
set +e
err="$(cd "$WORK" && "$bin/loopsink" listen --tcp 127.0.0.1:0 --backend trio 2>&1 >/dev/null)"
status=$?
set -e
expected="loopsink listen: --backend trio needs the 'trio' package, which is not installed: pip install 'loopsink[trio]'"
if [ "$status" -ne 1 ] || [ "$err" != "$expected" ]; then
    say "listen --backend trio without trio: status $status, stderr: $err"
    exit 1
fi
say "CLI ok (--help, --version, listen --backend trio names loopsink[trio])"

# The other venvs install the wheel that `pip install .` built, with one extra each.
pip_quiet "$py" wheel --no-deps -w "$WORK/dist" "$ROOT"
wheel="$(ls "$WORK"/dist/loopsink-*.whl)"

# -- 2. each extra alone -----------------------------------------------------------------------
for extra in trio smtp http aiofiles fastapi aiohttp; do
    py="$(new_venv "$extra")"
    tools=()
    [ "$extra" = smtp ] && tools=(aiosmtpd)
    t=$SECONDS
    pip_quiet "$py" install "loopsink[$extra] @ file://$wheel" "${tools[@]}"
    say "pip install 'loopsink[$extra]'${tools[*]:+ ${tools[*]}} took $((SECONDS - t)) s"
    pip_quiet "$py" check
    (cd "$WORK" && "$py" "$CHECKS" "$extra" "$WORK/out-$extra")
done
say "all checks passed in $((SECONDS - started)) s"
