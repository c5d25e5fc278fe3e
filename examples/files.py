"""Files: write text or bytes, read them back, list directories."""

import isorun

with isorun.Isorun() as client, client.create("python:3.12-slim") as sb:
    sb.write_file("/work/data.csv", "name,score\nada,3\nlin,5\n")  # parents are created
    sb.write_file("/work/blob.bin", bytes(range(256)))

    print(sb.read_file("/work/data.csv").splitlines()[0])  # name,score (UTF-8 text)
    print(len(sb.read_bytes("/work/blob.bin")))  # 256
    print(sorted(sb.readdir("/work")))  # ['blob.bin', 'data.csv']

    # Files and commands share one filesystem.
    script = (
        "import csv; print(sum(int(r['score']) for r in csv.DictReader(open('/work/data.csv'))))"
    )
    sb.write_file("/work/total.py", script)
    print(sb.exec("python3 /work/total.py", check=True).stdout.strip())  # 8
