"""Writes the JPEG variants tests/gpu/nvjpeg_decode_check.cpp decodes, all from one real photo
($VLM_ASSETS/images/bus.jpg) with Pillow: grayscale, CMYK, EXIF-rotated (orientations 3 and 6),
progressive, and 4:4:4 / 4:2:2 chroma subsampling.
    python3 tests/gpu/make_jpeg_variants.py OUT_DIR
"""

import os
import sys
from pathlib import Path

from PIL import Image

ASSETS = Path(os.environ.get("VLM_ASSETS", Path(__file__).resolve().parents[2] / ".." / "shared" / "assets"))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    # Half size (405x540, odd width): the variants travel to the GPU machine, within its carry limit.
    photo = Image.open(ASSETS / "images" / "bus.jpg").convert("RGB").reduce(2)
    photo.convert("L").save(out / "gray.jpg", quality=90)
    photo.convert("CMYK").save(out / "cmyk.jpg", quality=90)
    for orientation in (3, 6):
        exif = Image.Exif()
        exif[0x0112] = orientation
        photo.save(out / f"exif{orientation}.jpg", quality=90, exif=exif)
    photo.save(out / "progressive.jpg", quality=90, progressive=True)
    photo.save(out / "subsampling444.jpg", quality=90, subsampling=0)
    photo.save(out / "subsampling422.jpg", quality=90, subsampling=1)
    for name in ("cmyk.jpg", "gray.jpg"):
        mode = Image.open(out / name).mode
        assert mode == name.split(".")[0].upper().replace("GRAY", "L"), f"{name} is {mode}"
    print(f"make_jpeg_variants.py: {len(list(out.glob('*.jpg')))} JPEGs in {out}")


if __name__ == "__main__":
    main()
