"""Test setup for the core unit tests (test_safetensors, test_image, test_letterbox).

Writes into $VLM_TEST_DATA/core:
  safetensors/all_dtypes.safetensors   every dtype the `safetensors` library writes, random values
  safetensors/manifest.json            {name: {dtype, shape, values}} read back from that file by the library
  safetensors/sharded/                 model.safetensors.index.json + two shards, and model_ref.json
  safetensors/bad/*.safetensors        corrupted variants (the C++ test says what each must raise)
  safetensors/bad_index/*/             broken sharded checkpoints
  images/*                             photos from $VLM_ASSETS/images re-encoded with PIL, broken files,
                                       and <name>.rgb reference pixels (PIL's decode, H x W x 3 uint8)
  images/manifest.json                 {file: {width, height, reference, format}}
  letterbox.json                       ultralytics' LetterBox geometry for odd sizes (found from its output)
  letterbox_photo.rgb                  photo.png through ultralytics' LetterBox to 640x640
Everything is derived from fixed seeds and the shared photos; nothing is downloaded.
"""

import io
import json
import os
import random
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors import safe_open
from safetensors.torch import save_file

ASSETS = Path(os.environ.get("VLM_ASSETS", Path(__file__).resolve().parents[2] / ".." / "shared" / "assets"))
OUT = Path(os.environ.get("VLM_TEST_DATA", "build/test-data")) / "core"

DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "U16": torch.uint16,
    "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32, "U32": torch.uint32,
    "F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U64": torch.uint64,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2, "C64": torch.complex64,
}


def random_tensor(dtype, shape, gen):
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    if dtype == torch.complex64:
        return torch.complex(torch.randn(shape, generator=gen), torch.randn(shape, generator=gen))
    if dtype.is_floating_point:
        # Scaled so that float8 keeps several distinct values; no inf/nan (JSON cannot carry them).
        return (torch.randn(shape, generator=gen, dtype=torch.float64) * 8).to(dtype)
    info = torch.iinfo(dtype)
    # The full range, extremes included, so that sign and byte order mistakes show.
    raw = torch.randint(-(2**63), 2**63 - 1, shape, generator=gen, dtype=torch.int64)
    if dtype in (torch.int64,):
        values = raw
    elif dtype == torch.uint64:
        return torch.from_numpy(raw.numpy().view(np.uint64).copy())
    else:
        span = info.max - info.min + 1
        values = (raw % span) + info.min
    flat = values.flatten()
    if flat.numel() >= 2:
        flat[0], flat[1] = info.min, info.max
    return flat.reshape(shape).to(dtype)


def json_values(tensor):
    if tensor.dtype == torch.complex64:
        return [[float(v.real), float(v.imag)] for v in tensor.flatten().tolist()]
    if tensor.dtype == torch.uint64:
        return [int(v) for v in tensor.numpy().flatten()]
    if tensor.dtype.is_floating_point:
        return [float(v) for v in tensor.to(torch.float64).flatten().tolist()]
    return [int(v) for v in tensor.to(torch.int64).flatten().tolist()]


def write_safetensors():
    folder = OUT / "safetensors"
    gen = torch.Generator().manual_seed(2)
    tensors = {}
    for name, dtype in DTYPES.items():
        tensors[f"t.{name.lower()}"] = random_tensor(dtype, (3, 7), gen)
    tensors["scalar.f32"] = torch.tensor(1.5, dtype=torch.float32)
    tensors["empty.f16"] = torch.zeros((0, 4), dtype=torch.float16)
    tensors["big.f32"] = random_tensor(torch.float32, (4, 1, 33), gen)
    save_file(tensors, folder / "all_dtypes.safetensors", metadata={"format": "pt", "note": "core fixtures"})

    # The expected values come from the library reading its own file back.
    manifest = {}
    with safe_open(folder / "all_dtypes.safetensors", framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            dtype = next(k for k, v in DTYPES.items() if v == t.dtype)
            manifest[name] = {"dtype": dtype, "shape": list(t.shape), "values": json_values(t)}
    (folder / "manifest.json").write_text(json.dumps(manifest))

    sharded = folder / "sharded"
    sharded.mkdir(exist_ok=True)
    shard_a = {"model.embed.weight": random_tensor(torch.float32, (5, 3), gen),
               "model.layer.0.bias": random_tensor(torch.bfloat16, (6,), gen)}
    shard_b = {"model.layer.1.weight": random_tensor(torch.float16, (2, 2, 3), gen),
               "model.head.index": random_tensor(torch.int64, (4,), gen)}
    write_sharded(sharded, shard_a, shard_b)
    ref = {name: json_values(t) for name, t in {**shard_a, **shard_b}.items()}
    (sharded / "model_ref.json").write_text(json.dumps(ref))
    write_bad_safetensors(folder / "bad", tensors)
    write_bad_indexes(folder / "bad_index", shard_a, shard_b)


def write_sharded(folder, shard_a, shard_b, weight_map=None):
    names = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    save_file(shard_a, folder / names[0], metadata={"format": "pt"})
    save_file(shard_b, folder / names[1], metadata={"format": "pt"})
    if weight_map is None:
        weight_map = {**{k: names[0] for k in shard_a}, **{k: names[1] for k in shard_b}}
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in {**shard_a, **shard_b}.values())},
             "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def raw_file(header, data, header_length=None, align=False):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    if align:  # as the library does: the data section starts 8-byte aligned
        text += b" " * (-len(text) % 8)
    length = len(text) if header_length is None else header_length
    return struct.pack("<Q", length) + text + data


def write_bad_safetensors(folder, tensors):
    folder.mkdir(exist_ok=True)
    good = (folder.parent / "all_dtypes.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(good[: len(good) - 37])
    (folder / "too_short.safetensors").write_bytes(good[:5])
    (folder / "header_too_long.safetensors").write_bytes(raw_file(b'{"a": 1}', b"", header_length=1 << 20))
    (folder / "header_not_json.safetensors").write_bytes(raw_file(b'{"w": {"dtype": "F32", "sha', b"\0" * 16))
    (folder / "header_array.safetensors").write_bytes(raw_file([1, 2, 3], b""))
    f32 = lambda b, e, shape: {"dtype": "F32", "shape": shape, "data_offsets": [b, e]}  # noqa: E731
    (folder / "overlap.safetensors").write_bytes(
        raw_file({"first.w": f32(0, 16, [4]), "second.w": f32(8, 24, [4])}, b"\0" * 24))
    (folder / "out_of_range.safetensors").write_bytes(
        raw_file({"ok.w": f32(0, 8, [2]), "far.w": f32(8, 4008, [1000])}, b"\0" * 16))
    (folder / "size_mismatch.safetensors").write_bytes(raw_file({"odd.w": f32(0, 20, [2, 3])}, b"\0" * 20))
    (folder / "hole.safetensors").write_bytes(
        raw_file({"a.w": f32(0, 8, [2]), "b.w": f32(12, 20, [2])}, b"\0" * 20))
    (folder / "trailing.safetensors").write_bytes(raw_file({"a.w": f32(0, 8, [2])}, b"\0" * 12))
    (folder / "unknown_dtype.safetensors").write_bytes(
        raw_file({"strange.w": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 2))
    (folder / "negative_dim.safetensors").write_bytes(raw_file({"neg.w": f32(0, 8, [-2])}, b"\0" * 8))
    (folder / "missing_field.safetensors").write_bytes(
        raw_file({"nooff.w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8))
    (folder / "reversed_offsets.safetensors").write_bytes(raw_file({"rev.w": f32(8, 0, [2])}, b"\0" * 8))
    # Byte 1 of the data: an F32 there is misaligned and must be copied (and still read right).
    values = np.array([1.25, -2.5, 3.0e7], dtype="<f4").tobytes()
    (folder.parent / "misaligned.safetensors").write_bytes(raw_file(
        {"pad.u8": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
         "odd.f32": {"dtype": "F32", "shape": [3], "data_offsets": [1, 13]}}, b"\x07" + values, align=True))


def write_bad_indexes(folder, shard_a, shard_b):
    cases = {
        "missing_shard": lambda w: {**w, "model.head.index": "model-00003-of-00003.safetensors"},
        "not_in_shard": lambda w: {**w, "model.head.index": "model-00001-of-00002.safetensors"},
        "unlisted": lambda w: {k: v for k, v in w.items() if k != "model.layer.0.bias"},
        "outside": lambda w: {**w, "model.embed.weight": "../model-00001-of-00002.safetensors"},
    }
    names = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    base = {**{k: names[0] for k in shard_a}, **{k: names[1] for k in shard_b}}
    for case, change in cases.items():
        target = folder / case
        target.mkdir(parents=True, exist_ok=True)
        write_sharded(target, shard_a, shard_b, change(dict(base)))
    (folder / "not_json").mkdir(exist_ok=True)
    (folder / "not_json" / "model.safetensors.index.json").write_text('{"weight_map": {')
    (folder / "empty_folder").mkdir(exist_ok=True)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_rgb16(pixels):
    # PIL cannot write 16-bit RGB PNGs; the format is simple enough to write by hand.
    height, width, _ = pixels.shape
    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows)) +
            png_chunk(b"IEND", b""))


def png_declaring(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) +
            png_chunk(b"IEND", b""))


def jpeg_declaring(jpeg, width, height):
    # Rewrites the size in the first SOF0..SOF2 frame header of a real JPEG.
    data = bytearray(jpeg)
    at = 2
    while data[at + 1] not in (0xC0, 0xC1, 0xC2):
        at += 2 + struct.unpack(">H", data[at + 2: at + 4])[0]
    data[at + 5: at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def write_images():
    folder = OUT / "images"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}

    def add(name, data, reference=None, fmt=None):
        (folder / name).write_bytes(data)
        entry = {"format": fmt}
        if reference is not None:
            ref = np.ascontiguousarray(np.asarray(reference.convert("RGB"), dtype=np.uint8))
            (folder / (name + ".rgb")).write_bytes(ref.tobytes())
            entry.update(width=ref.shape[1], height=ref.shape[0], reference=name + ".rgb")
        manifest[name] = entry

    def encode(image, fmt, **kwargs):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        return buffer.getvalue()

    def decoded(data):
        return Image.open(io.BytesIO(data))

    bus = Image.open(ASSETS / "images" / "bus.jpg").convert("RGB")
    # Odd sizes on purpose (row padding in BMP, chroma subsampling in JPEG).
    photo = bus.resize((333, 445), Image.BILINEAR)
    zidane = Image.open(ASSETS / "images" / "zidane.jpg").convert("RGB").resize((397, 223), Image.BILINEAR)

    for name, fmt, kwargs in [("photo.png", "PNG", {}), ("photo.bmp", "BMP", {}),
                              ("photo_lossless.webp", "WEBP", {"lossless": True}),
                              ("photo.tiff", "TIFF", {"compression": "tiff_lzw"}),
                              ("photo.jpg", "JPEG", {"quality": 90}), ("photo_lossy.webp", "WEBP", {"quality": 80})]:
        data = encode(photo, fmt, **kwargs)
        add(name, data, decoded(data), fmt)
    gray = zidane.convert("L")
    add("gray.png", encode(gray, "PNG"), gray, "PNG")
    rgba = zidane.copy()
    alpha = np.tile(np.linspace(0, 255, zidane.width, dtype=np.uint8), (zidane.height, 1))
    rgba.putalpha(Image.fromarray(alpha))
    add("rgba.png", encode(rgba, "PNG"), decoded(encode(rgba, "PNG")), "PNG")

    # 16-bit: the 8-bit image is the high byte of each sample (random low bytes must not leak in).
    rng = np.random.default_rng(16)
    high = np.asarray(zidane, dtype=np.uint16)
    rgb16 = (high << 8) | rng.integers(0, 256, high.shape, dtype=np.uint16)
    add("rgb16.png", png_rgb16(rgb16), Image.fromarray((rgb16 >> 8).astype(np.uint8)), "PNG")
    gray16 = (np.asarray(gray, dtype=np.uint16) << 8) | rng.integers(0, 256, (gray.height, gray.width), dtype=np.uint16)
    gray16_png = encode(Image.fromarray(gray16), "PNG")
    assert decoded(gray16_png).mode.startswith("I"), "PIL did not write a 16-bit PNG"
    add("gray16.png", gray16_png, Image.fromarray((gray16 >> 8).astype(np.uint8)), "PNG")

    # EXIF orientation 6: stored landscape, shown rotated 90 degrees clockwise.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(zidane, "JPEG", quality=92, exif=exif)
    assert decoded(rotated).getexif().get(0x0112) == 6
    add("exif6.jpg", rotated, ImageOps.exif_transpose(decoded(rotated)), "JPEG")

    jpeg = encode(photo, "JPEG", quality=90)
    png = encode(photo, "PNG")
    add("truncated.jpg", jpeg[: len(jpeg) // 2])
    add("truncated.png", png[: len(png) // 2])
    # A PNG whose pixel data was damaged but whose length and chunk layout are intact.
    damaged = bytearray(png)
    idat = damaged.index(b"IDAT")
    damaged[idat + 40: idat + 240] = bytes(200)
    add("damaged.png", bytes(damaged))
    data = random.Random(7).randbytes(4096)
    data = b"\x00" + data[1:]  # no image magic can start with a zero byte
    add("random.bin", data)
    add("empty.jpg", b"")
    add("huge.png", png_declaring(100000, 100000))
    add("8k.png", png_declaring(8000, 8000))  # 64 MP: over the 50 MP default
    add("huge.jpg", jpeg_declaring(jpeg, 60000, 60000))
    add("animation.gif", encode(photo.convert("P"), "GIF"))
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def write_letterbox():
    from ultralytics.data.augment import LetterBox

    def geometry(padded):
        # The content is a constant 255 image: whatever is not the pad colour is the resized image.
        rows = np.where((padded[:, :, 0] != 114).any(axis=1))[0]
        cols = np.where((padded[:, :, 0] != 114).any(axis=0))[0]
        top, left = int(rows[0]), int(cols[0])
        rh, rw = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        return {"resized_width": rw, "resized_height": rh, "left": left, "top": top,
                "right": padded.shape[1] - left - rw, "bottom": padded.shape[0] - top - rh}

    cases = []
    sizes = [(1, 1), (640, 481), (481, 640), (773, 512), (4000, 3000), (640, 1), (1, 640), (3, 1000), (1000, 3),
             (640, 640), (320, 320), (1279, 719), (2, 3), (1081, 1921), (637, 643)]
    for target_w, target_h in [(640, 640), (480, 320), (320, 256)]:
        for w, h in sizes:
            image = np.full((h, w, 3), 255, dtype=np.uint8)
            ultra = LetterBox(new_shape=(target_h, target_w), auto=False)(image=image)
            cases.append({"width": w, "height": h, "target_width": target_w, "target_height": target_h,
                          **geometry(ultra)})
    (OUT / "letterbox.json").write_text(json.dumps(cases, indent=1))

    # Pixels of one photo through ultralytics' letterbox (cv2.resize INTER_LINEAR, pad 114).
    photo = np.asarray(Image.open(OUT / "images" / "photo.png").convert("RGB"))
    padded = LetterBox(new_shape=(640, 640), auto=False)(image=photo)
    (OUT / "letterbox_photo.rgb").write_bytes(np.ascontiguousarray(padded).tobytes())


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "safetensors").mkdir(parents=True)
    write_safetensors()
    write_images()
    write_letterbox()
    print(f"core fixtures written to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
