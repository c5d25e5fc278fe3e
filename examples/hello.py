"""The smallest program: boot a sandbox, run Python in it, destroy it."""

import isorun

# Key and URL from ISORUN_API_KEY / ISORUN_API_URL, or a local runner's client.json.
# The sandbox is destroyed when the block ends, also on errors.
with isorun.Isorun() as client, client.create("python:3.12-slim") as sb:
    result = sb.exec("python3 -c 'print(6 * 7)'")
    print(result.exit_code, result.stdout.strip())  # 0 42
