"""Write the pause image as a docker-archive tar for ``ctr images import``.

Usage: python3 pause_image.py PAUSE_BINARY REF OUT.tar

No pause image can be pulled here and nothing else is needed to make one:
a single layer holding /pause (static, tests/cluster/realnode/pause.c),
run as 65535. The archive is reproducible (fixed times and owners), so the
image's digest changes only when the binary does.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path


def _tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    return info, data


def main(binary: str, ref: str, out: str) -> None:
    layer = _tar_bytes([_file("pause", Path(binary).read_bytes(), 0o755)])
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
    ).encode()
    archive = _tar_bytes(
        [_file(config_name, config), _file(layer_name, layer), _file("manifest.json", manifest)]
    )
    Path(out).write_bytes(archive)


if __name__ == "__main__":
    main(*sys.argv[1:4])
