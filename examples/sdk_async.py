"""The asyncio client: the same methods, awaited; run many sandboxes concurrently."""

import asyncio

import isorun


async def square(client: isorun.AsyncIsorun, n: int) -> int:
    async with await client.create("python:3.12-slim") as sb:
        result = await sb.exec(f"python3 -c 'print({n} * {n})'", check=True)
        return int(result.stdout)


async def main() -> None:
    async with isorun.AsyncIsorun(max_concurrency=100) as client:
        squares = await asyncio.gather(*(square(client, n) for n in range(4)))
        print(squares)  # [0, 1, 4, 9]


asyncio.run(main())
