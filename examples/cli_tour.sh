#!/usr/bin/env bash
# The client commands against the configured endpoint (ISORUN_API_KEY/URL or a local runner).
set -euo pipefail

id=$(isorun create python:3.12-slim --timeout 600)     # prints the new sandbox's id
isorun exec "$id" -- python3 -c 'print(6 * 7)'          # 42
isorun exec "$id" -- sh -c 'exit 3' || echo "exit $?"   # exit 3: the status passes through
isorun exec "$id" 'ls / | wc -l'                        # one word: run as a shell line

echo "hello" > /tmp/hello.txt
isorun cp /tmp/hello.txt "$id:/root/"                   # upload (the name is kept)
isorun cp "$id:/root/hello.txt" -                       # download to stdout
isorun ls
isorun info "$id" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])'

snap=$(isorun snapshot "$id")
copy=$(isorun restore "$snap")
kids=$(isorun fork "$id" --count 2)                     # one id per line
isorun hibernate "$id" && isorun resume "$id"
isorun url "$id" 8000 /index.html                       # the proxy URL of guest port 8000
isorun audit "$id" --verify                             # exit 1 if the HMAC chain is broken

isorun rm "$id" "$copy" $kids                           # prints each one's final accounting
isorun usage
isorun history
