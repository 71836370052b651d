#!/usr/bin/env bash
# add.sh: print the sum of the integers given as arguments.
#   bash src/add.sh 2 3 4   ->  9
set -eu
nums=("$@")
sum=0
i=0
while [ "$i" -lt $(( ${#nums[@]} - 1 )) ]; do
  sum=$(( sum + nums[i] ))
  i=$(( i + 1 ))
done
echo "$sum"
