"""Child process for the kill -9 test: writes keys with 8 concurrent writers and prints
"key revision" for each acknowledged write, until it is killed."""

import asyncio
import sys

from k1s.store import SqliteStore


async def main(path: str) -> None:
    store = SqliteStore(path, compact_interval=None)
    await store.start()
    print("ready", store.current_revision(), flush=True)

    async def writer(w: int) -> None:
        for i in range(1_000_000):
            key = f"/crash/{w}/{i}"
            kv = await store.create(key, key.encode())
            if i % 4 == 0:
                kv = await store.update(key, b"updated " + key.encode(), kv.mod_revision)
            if i % 7 == 0:
                kv = await store.delete(key, kv.mod_revision)
                print(key, kv.mod_revision, "deleted", flush=True)
            else:
                print(key, kv.mod_revision, kv.value.decode(), flush=True)

    await asyncio.gather(*(writer(w) for w in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
