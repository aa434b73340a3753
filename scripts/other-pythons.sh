#!/usr/bin/env bash
# CI on the other supported interpreters: for each version given (default 3.10 and 3.13),
# the fresh-install stage, then the core and file-sink tests in a venv of that interpreter;
# a version written VERSION:full runs the whole suite instead.
#
#   bash scripts/other-pythons.sh [VERSION[:full] ...]   e.g. 3.10.13 3.12.1 3.13.0:full
#
# The interpreters come from pyenv ($PYENV_ROOT/versions/VERSION) or from PATH (python3.X).
# The default interpreter runs the full suite (`make test`); the subset shows that the
# package installs and its core works everywhere, with the rotation arithmetic that must be
# CPython 3.13's on every Python (#20). CI runs the whole suite on 3.13 as well, the version
# whose behaviour loopsink follows (its real daemons need `make system-deps` first).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- 3.10.13 3.13.0
SUBSET=(
    tests/test_public_api.py tests/test_queue.py tests/test_bridge.py tests/test_handler.py
    tests/test_config.py tests/test_cli.py tests/test_platforms.py tests/test_pytest_plugin.py
    tests/test_testing.py tests/handlers/test_stream_and_file.py tests/handlers/test_rotating.py
    tests/handlers/test_watched.py tests/handlers/test_timed_rotating.py tests/test_fork.py
)

find_python() {
    local version="$1" short="${1%.*}"
    local pyenv_python="${PYENV_ROOT:-$HOME/.pyenv}/versions/$version/bin/python3"
    if [ -x "$pyenv_python" ]; then
        echo "$pyenv_python"
    elif command -v "python$short" >/dev/null 2>&1; then
        command -v "python$short"
    else
        echo "other-pythons: Python $version not found (pyenv install $version)" >&2
        return 1
    fi
}

for wanted_run in "$@"; do
    version="${wanted_run%:full}"
    python="$(find_python "$version")"
    started=$SECONDS
    bash scripts/fresh-install.sh "$python"
    venv=".venv-$version"
    stamp="$venv/.installed"
    wanted="$(sha256sum pyproject.toml)"  # reinstall whenever pyproject.toml changed
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]' \
            >"$venv.pip.log" 2>&1 || { cat "$venv.pip.log" >&2; exit 1; }
        echo "$wanted" >"$stamp"
    fi
    if [ "$wanted_run" != "$version" ]; then
        echo "other-pythons [$version]: the whole suite"
        "$venv/bin/python" -m pytest -q -p no:cacheprovider
    else
        existing=()
        for path in "${SUBSET[@]}"; do [ -e "$path" ] && existing+=("$path"); done
        echo "other-pythons [$version]: core and file-sink tests"
        "$venv/bin/python" -m pytest -q -p no:cacheprovider "${existing[@]}"
    fi
    echo "other-pythons [$version]: done in $((SECONDS - started)) s"
done
