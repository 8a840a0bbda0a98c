#!/bin/sh
# Fails when the symbols libnotecenter.so exports drift from the list in
# libnotecenter.sym (added, removed or leaked).
# Usage: check-exports.sh LIBRARY SYMFILE
set -eu
lib=$1
sym=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort -u > "$tmp/exported"
sed -n 's/^[[:space:]]*\(nc_[A-Za-z0-9_]*\);.*/\1/p' "$sym" | sort -u > "$tmp/listed"
if ! diff -u "$tmp/listed" "$tmp/exported"; then
  echo "exports of $lib differ from $sym (- listed only, + exported only)" >&2
  exit 1
fi
echo "ok: $(wc -l < "$tmp/exported") symbols"
