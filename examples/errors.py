"""Errors: every failure is an isorun.IsorunError; a failed command is data until checked."""

import isorun

with isorun.Isorun() as client:
    with client.create("python:3.12-slim") as sb:
        result = sb.exec("ls /nonexistent")
        if not result.ok:
            print("ls failed with", result.exit_code)

        try:
            sb.exec("false", check=True)  # like subprocess.run(check=True)
        except isorun.CommandFailedError as exc:
            print("raised:", exc.exit_code)

        try:
            sb.read_file("/no/such/file")
        except isorun.NotFoundError as exc:
            print("not found:", exc.status)  # 404

    print(client.get("sb-does-not-exist"))  # None, not an exception

try:
    isorun.Isorun(api_key="k", api_url="http://127.0.0.1:1", max_retries=0).list()
except isorun.APIConnectionError as exc:
    print("connection error:", type(exc).__name__)
except isorun.IsorunError as exc:  # the root of everything the SDK raises
    print("other error:", exc)
