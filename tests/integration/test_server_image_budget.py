"""Decoder resource bombs against a real `vlmserve serve`: a TIFF whose repeated size tags hid its
real size from the pixel limit, a progressive JPEG with thousands of scans, several large images in
one request, an animated WebP, and OpenCV's own decoder cap (OPENCV_IO_MAX_IMAGE_PIXELS). Every
file is made here with PIL (and a few patched bytes).

One server: --max-pixels 4,000,000 per image, --max-request-pixels 6,000,000 per request, and a
decoder cap twice --max-pixels, which it warns about at start-up.
"""

import io
import struct
import time
import unittest

from PIL import Image

from server_harness import Server, image_bytes, run_tests

SERVER = None
MAX_PIXELS = 4_000_000
MAX_REQUEST_PIXELS = 6_000_000
LOOSE_CAP = 2 * MAX_PIXELS


def setUpModule():
    global SERVER
    SERVER = Server("--max-pixels", str(MAX_PIXELS), "--max-request-pixels", str(MAX_REQUEST_PIXELS),
                    "--max-body-mb", "16", "--timeout-s", "60", env={"OPENCV_IO_MAX_IMAGE_PIXELS": str(LOOSE_CAP)})


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


def jpeg_segments(data):
    """[(marker, start, end)] of a JPEG; a scan's segment runs through its entropy-coded data."""
    out, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        if marker == 0xD9:
            out.append((marker, at, at + 2))
            break
        length = struct.unpack_from(">H", data, at + 2)[0]
        end = at + 2 + length
        if marker == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        out.append((marker, at, end))
        at = end
    return out


def scan_bomb(scans):
    """bus.jpg as a progressive JPEG with its smallest scan repeated until the file has `scans` scans."""
    data = encoded(Image.open(io.BytesIO(image_bytes("bus.jpg"))), "JPEG", progressive=True, quality=90)
    segments = jpeg_segments(data)
    sos = [s for s in segments if s[0] == 0xDA]
    _, start, end = min(sos, key=lambda s: s[2] - s[1])
    repeat = data[start:end]
    return data[:end] + repeat * (scans - len(sos)) + data[end:]


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


class JpegScans(unittest.TestCase):
    def test_scan_bomb_is_refused_before_decoding(self):
        data = scan_bomb(2000)
        self.assertEqual(data.count(b"\xff\xda"), 2000)
        start = time.monotonic()
        r = post_image(data, "image/jpeg")
        elapsed = time.monotonic() - start
        self.assertEqual(r.status_code, 415, r.text)
        self.assertEqual(r.json()["error"]["code"], "unsupported_image")
        self.assertIn("more than 100 scans", r.json()["error"]["message"])
        self.assertLess(elapsed, 2.0)

    def test_scans_at_the_limit_are_decoded(self):
        r = post_image(scan_bomb(100), "image/jpeg")
        self.assertEqual(r.status_code, 200, r.text)
        r = post_image(scan_bomb(101), "image/jpeg")
        self.assertEqual(r.status_code, 415, r.text)

    def test_ordinary_progressive_jpeg_is_served(self):
        data = encoded(Image.open(io.BytesIO(image_bytes("bus.jpg"))), "JPEG", progressive=True, quality=90)
        r = post_image(data, "image/jpeg")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.json()["detections"])


class RequestPixelBudget(unittest.TestCase):
    def big_png(self, shade):
        return encoded(Image.new("RGB", (2000, 2000), (shade, shade, shade)), "PNG")

    def test_images_over_the_request_budget_are_refused_before_decoding(self):
        # Each 4 Mpx image is within --max-pixels; two of them are over the request's 6 Mpx.
        files = [("image", (f"{i}.png", self.big_png(40 * i), "image/png")) for i in range(2)]
        r = SERVER.post("/detect", files=files)
        self.assertEqual(r.status_code, 413, r.text)
        self.assertEqual(r.json()["error"]["code"], "too_many_pixels")
        self.assertIn("8000000", r.json()["error"]["message"])
        self.assertIn(str(MAX_REQUEST_PIXELS), r.json()["error"]["message"])

    def test_images_within_the_budget_are_served(self):
        files = [("image", ("a.png", self.big_png(10), "image/png")),
                 ("image", ("b.jpg", image_bytes("bus.jpg"), "image/jpeg"))]
        r = SERVER.post("/detect", files=files)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(len(r.json()["results"]), 2)


class AnimatedWebp(unittest.TestCase):
    def test_animated_webp_is_unsupported_not_corrupt(self):
        frames = [Image.new("RGB", (64, 48), (60 * i, 90, 30)) for i in range(3)]
        data = encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
        r = post_image(data, "image/webp")
        self.assertEqual(r.status_code, 415, r.text)
        self.assertEqual(r.json()["error"]["code"], "unsupported_image")
        self.assertIn("animated WebP is not supported", r.json()["error"]["message"])

    def test_still_webp_is_served(self):
        photo = Image.open(io.BytesIO(image_bytes("bus.jpg")))
        r = post_image(encoded(photo, "WEBP", quality=90), "image/webp")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.json()["detections"])


class DecoderCap(unittest.TestCase):
    def test_a_cap_looser_than_max_pixels_is_logged_at_startup(self):
        line = SERVER.wait_for_log("OPENCV_IO_MAX_IMAGE_PIXELS")
        self.assertIsNotNone(line, "no start-up line about the decoder cap")
        self.assertIn(f"OPENCV_IO_MAX_IMAGE_PIXELS={LOOSE_CAP} is looser than --max-pixels {MAX_PIXELS}", line)
        self.assertIn("warn", line)

    def test_an_image_the_probe_allows_over_the_decoder_cap_is_refused_413(self):
        # The cap as a deployment's environment sets it, below --max-pixels here so that only the
        # decoder can refuse the image: a clean 413, not a crash or a 422.
        server = Server("--max-pixels", str(MAX_PIXELS), "--warmup", "0",
                        env={"OPENCV_IO_MAX_IMAGE_PIXELS": "1000000"})
        try:
            over = encoded(Image.new("RGB", (1001, 1000), (90, 120, 200)), "PNG")
            r = server.post("/detect", data=over, headers={"Content-Type": "image/png"})
            self.assertEqual(r.status_code, 413, r.text)
            self.assertEqual(r.json()["error"]["code"], "image_too_large")
            self.assertIn("OPENCV_IO_MAX_IMAGE_PIXELS=1000000", r.json()["error"]["message"])
            at_cap = encoded(Image.new("RGB", (1000, 1000), (90, 120, 200)), "PNG")
            self.assertEqual(server.post("/detect", data=at_cap, headers={"Content-Type": "image/png"}).status_code, 200)
            self.assertFalse([line for line in server.logs() if "OPENCV_IO_MAX_IMAGE_PIXELS" in line])
        finally:
            server.stop()


if __name__ == "__main__":
    run_tests()
