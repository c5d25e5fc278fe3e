"""The synchronous client: create, exec, timers, info, listing and accounting."""

import isorun

client = isorun.Isorun(timeout=60, max_retries=2)  # key and URL from the environment
client.connect()  # optional: open and warm the connection pool

sb = client.create("python:3.12-slim", vcpus=1, mem_mib=512, disk_mib=2048, timeout=300)
print(sb.id, sb.image, f"booted in {sb.create_ms} ms")

result = sb.exec("echo out; echo err >&2; exit 3")
print(result.exit_code, result.ok)  # 3 False: a non-zero exit is data
print(repr(result.stdout), repr(result.stderr))  # 'out\n' 'err\n'

print(sb.exec("uname -s", check=True).stdout.strip())  # check=True raises on failure

sb.set_timeout(120)  # auto-destroy two minutes from now (0 disables the timer)
print(sb.info().status)  # running
print([s.id for s in client.list()])  # live sandboxes, ours included

again = client.get(sb.id)  # a new handle on an existing sandbox (None if gone)
assert again is not None and again.id == sb.id

final = sb.destroy()
print(f"up {final.uptime_ms} ms, cpu {final.cpu_ms} ms, cost {final.cost_cents:.4f} cents")
print(client.get(sb.id))  # None: destroyed
print(client.usage().total_cost_cents >= 0, len(client.history()) >= 1)
client.close()
