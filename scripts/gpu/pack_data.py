"""Pack FER2013 and ImageNet MobileNetV2 features small enough to travel to a GPU machine.

A GPU machine lent for a few minutes gets the repository and at most 64 MiB beside it, with no
network. FER2013's 32,298 JPEG files (60 MB) all begin with the same 328 bytes (quantisation and
Huffman tables), so they travel as that header once plus each file's remaining bytes (49 MB), and
are rebuilt byte for byte there: the same files, so the same dataset cache key. The ImageNet
MobileNetV2 backbone travels as its ``features.*`` tensors in half precision (4.5 MB instead of
14 MB with the unused ImageNet classifier); rounding to fp16 moves each weight by at most 2^-11 of
itself, far below what fine-tuning changes.

Usage:
  python pack_data.py pack FER2013_DIR mobilenet_v2-b0353104.pth PACK_DIR
  python pack_data.py unpack PACK_DIR FER2013_OUT IMAGENET_OUT.pth
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path

DATA_FILE = "fer2013.pack"
WEIGHTS_FILE = "imagenet_mobilenet_v2_features_fp16.safetensors"


def pack(dataset: Path, weights: Path, dest: Path) -> None:
    import torch
    from safetensors.torch import save_file

    files = sorted(p for p in dataset.rglob("*.jpg") if p.is_file())
    blobs = [p.read_bytes() for p in files]
    # The longest prefix every file shares (byte by byte: these are file contents, not paths).
    header = os.path.commonprefix(blobs)  # noqa: RUF071
    index = [
        [str(p.relative_to(dataset)), len(blob) - len(header)]
        for p, blob in zip(files, blobs, strict=True)
    ]
    meta = zlib.compress(json.dumps({"header": header.hex(), "files": index}).encode(), 9)
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / DATA_FILE).open("wb") as out:
        out.write(len(meta).to_bytes(8, "little"))
        out.write(meta)
        for blob in blobs:
            out.write(blob[len(header) :])
    state = torch.load(weights, map_location="cpu", weights_only=True)
    features = {k: v.half().contiguous() for k, v in state.items() if k.startswith("features.")}
    save_file(features, str(dest / WEIGHTS_FILE))
    print(f"{len(files)} files, shared header {len(header)} bytes -> {dest}")


def unpack(source: Path, dataset: Path, weights: Path) -> None:
    import torch
    from safetensors.torch import load_file

    with (source / DATA_FILE).open("rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        meta = json.loads(zlib.decompress(handle.read(size)))
        header = bytes.fromhex(meta["header"])
        for name, length in meta["files"]:
            path = dataset / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(header + handle.read(length))
    state = {k: v.float() for k, v in load_file(str(source / WEIGHTS_FILE)).items()}
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, weights)
    print(f"{len(meta['files'])} files -> {dataset}; ImageNet features -> {weights}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "pack":
        pack(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "unpack":
        unpack(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
