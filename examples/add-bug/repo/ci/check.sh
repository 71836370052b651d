#!/usr/bin/env bash
# The CI check of this repository: a few sums that must come out right.
set -u
status=0
expect() {
  local want=$1; shift
  local got
  got=$(bash src/add.sh "$@")
  if [ "$got" = "$want" ]; then
    echo "ok: add.sh $* = $got"
  else
    echo "FAILED: add.sh $* printed $got, expected $want"
    status=1
  fi
}
expect 0
expect 5 2 3
expect 10 1 2 3 4
exit $status
