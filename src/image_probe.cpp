// Reads an image's format and declared size from its header, so that the pixel limit is enforced
// before a decoder allocates anything (a 100000x100000 PNG is 40 bytes long).
#include <algorithm>
#include <cstring>
#include <string>

#include "vlm/error.h"
#include "vlm/image.h"

namespace vlm {
namespace {

using Bytes = std::span<const std::uint8_t>;

std::uint32_t be16(Bytes b, std::size_t at) { return (b[at] << 8) | b[at + 1]; }
std::uint32_t le16(Bytes b, std::size_t at) { return b[at] | (b[at + 1] << 8); }
std::uint32_t be32(Bytes b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
}
std::uint32_t le32(Bytes b, std::size_t at) {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (std::uint32_t{b[at + 3]} << 24);
}
bool starts_with(Bytes b, std::string_view magic, std::size_t at = 0) {
  return b.size() >= at + magic.size() && std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}
ImageHeader sized(ImageFormat format, std::uint32_t width, std::uint32_t height) {
  ImageHeader header;
  header.format = format;
  header.width = width;
  header.height = height;
  return header;
}
[[noreturn]] void corrupt(ImageFormat format, const std::string& what) {
  throw Error(ErrorCode::kImageCorrupt,
              std::string(image_format_name(format)) + " image is truncated or corrupt: " + what);
}
void need(Bytes b, std::size_t size, ImageFormat format) {
  if (b.size() < size) corrupt(format, "header ends after " + std::to_string(b.size()) + " bytes");
}

// Start-of-scan markers from `at` (just past the frame header) to the end-of-image marker. Each
// progressive scan makes the decoder walk every coefficient again, so thousands of tiny scans cost
// minutes of CPU. Where the structure cannot be followed, counting stops and the decoder judges.
std::size_t count_jpeg_scans(Bytes b, std::size_t at) {
  std::size_t scans = 0;
  while (at + 4 <= b.size() && scans <= kMaxJpegScans) {
    if (b[at] != 0xFF) return scans;
    const std::uint8_t marker = b[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    at += 2;
    if (marker == 0xD9) return scans;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    const std::uint32_t length = be16(b, at);
    if (length < 2) return scans;
    at += length;
    if (marker != 0xDA) continue;
    ++scans;
    // Entropy-coded data runs to the next 0xFF that is neither a stuffed FF 00 nor a restart marker.
    while (at + 1 < b.size()) {
      const void* found = std::memchr(b.data() + at, 0xFF, b.size() - at - 1);
      if (found == nullptr) return scans;
      at = static_cast<std::size_t>(static_cast<const std::uint8_t*>(found) - b.data());
      const std::uint8_t next = b[at + 1];
      if (next != 0x00 && !(next >= 0xD0 && next <= 0xD7)) break;
      at += 2;
    }
  }
  return scans;
}

// The orientation tag of an APP1 segment's payload ("Exif\0\0" + a TIFF header and IFD0), 1 when
// the segment is not Exif or ends early.
int exif_orientation(Bytes payload) {
  if (!starts_with(payload, std::string_view("Exif\0\0", 6))) return 1;
  const Bytes tiff = payload.subspan(6);
  if (tiff.size() < 8) return 1;
  const bool little = starts_with(tiff, "II");
  if (!little && !starts_with(tiff, "MM")) return 1;
  auto u16 = [&](std::size_t at) { return little ? le16(tiff, at) : be16(tiff, at); };
  auto u32 = [&](std::size_t at) { return little ? le32(tiff, at) : be32(tiff, at); };
  const std::size_t ifd = u32(4);
  if (ifd > tiff.size() || tiff.size() - ifd < 2) return 1;
  const std::size_t entries = u16(ifd);
  for (std::size_t i = 0; i < entries; ++i) {
    const std::size_t entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.size()) return 1;
    constexpr std::uint32_t kOrientationTag = 0x0112;
    constexpr std::uint32_t kShort = 3;
    if (u16(entry) != kOrientationTag) continue;
    if (u16(entry + 2) != kShort) return 1;
    const std::uint32_t value = u16(entry + 8);
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

ImageHeader probe_jpeg(Bytes b) {
  std::size_t at = 2;
  int orientation = 1;
  bool seen_exif = false;
  while (true) {
    need(b, at + 2, ImageFormat::kJpeg);
    if (b[at] != 0xFF) corrupt(ImageFormat::kJpeg, "expected a marker at byte " + std::to_string(at));
    std::uint8_t marker = b[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    at += 2;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no payload
    if (marker == 0xD9 || marker == 0xDA) corrupt(ImageFormat::kJpeg, "no frame header before scan data");
    need(b, at + 2, ImageFormat::kJpeg);
    std::uint32_t length = be16(b, at);
    if (length < 2) corrupt(ImageFormat::kJpeg, "segment length " + std::to_string(length));
    constexpr std::uint8_t kApp1 = 0xE1;
    if (marker == kApp1 && !seen_exif && at + length <= b.size()) {
      const Bytes payload = b.subspan(at + 2, length - 2);
      if (starts_with(payload, std::string_view("Exif\0\0", 6))) {
        seen_exif = true;
        orientation = exif_orientation(payload);
      }
    }
    bool is_frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (is_frame) {
      need(b, at + 8, ImageFormat::kJpeg);
      ImageHeader header = sized(ImageFormat::kJpeg, be16(b, at + 5), be16(b, at + 3));
      header.jpeg_frame_marker = marker;
      header.jpeg_components = b[at + 7];
      header.exif_orientation = orientation;
      header.jpeg_scans = count_jpeg_scans(b, at + length);
      // Entropy-coded data escapes 0xFF, so an FF D9 after the frame header can only be the end marker.
      static constexpr std::uint8_t kEnd[] = {0xFF, 0xD9};
      if (std::search(b.begin() + static_cast<std::ptrdiff_t>(at), b.end(), std::begin(kEnd), std::end(kEnd)) ==
          b.end()) {
        header.truncation = "no end-of-image marker";
      }
      return header;
    }
    at += length;
  }
}

ImageHeader probe_png(Bytes b) {
  need(b, 24, ImageFormat::kPng);
  if (!starts_with(b, "IHDR", 12)) corrupt(ImageFormat::kPng, "first chunk is not IHDR");
  ImageHeader header = sized(ImageFormat::kPng, be32(b, 16), be32(b, 20));
  static constexpr std::string_view kEnd = "IEND";
  if (std::search(b.begin() + 24, b.end(), kEnd.begin(), kEnd.end()) == b.end()) header.truncation = "no IEND chunk";
  return header;
}

ImageHeader probe_bmp(Bytes b) {
  need(b, 26, ImageFormat::kBmp);
  std::uint32_t dib_size = le32(b, 14);
  if (dib_size == 12) return sized(ImageFormat::kBmp, le16(b, 18), le16(b, 20));
  if (dib_size < 40) corrupt(ImageFormat::kBmp, "DIB header size " + std::to_string(dib_size));
  auto width = static_cast<std::int32_t>(le32(b, 18));
  auto height = static_cast<std::int32_t>(le32(b, 22));  // negative: stored top-down
  if (width <= 0 || height == 0 || height == INT32_MIN) corrupt(ImageFormat::kBmp, "bad dimensions");
  return sized(ImageFormat::kBmp, static_cast<std::uint32_t>(width), static_cast<std::uint32_t>(std::abs(height)));
}

ImageHeader probe_webp(Bytes b) {
  need(b, 30, ImageFormat::kWebp);
  if (starts_with(b, "VP8 ", 12)) {
    if (b[23] != 0x9D || b[24] != 0x01 || b[25] != 0x2A) corrupt(ImageFormat::kWebp, "bad VP8 start code");
    return sized(ImageFormat::kWebp, le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF);
  }
  if (starts_with(b, "VP8L", 12)) {
    if (b[20] != 0x2F) corrupt(ImageFormat::kWebp, "bad VP8L signature");
    std::uint32_t bits = le32(b, 21);
    return sized(ImageFormat::kWebp, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
  }
  if (starts_with(b, "VP8X", 12)) {
    // The decoder reads still images only; an animation is a format we do not take, not damage.
    if ((b[20] & 0x02U) != 0) {
      throw Error(ErrorCode::kUnsupportedImage, "animated WebP is not supported; send a still image");
    }
    auto le24 = [&](std::size_t at) { return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16); };
    return sized(ImageFormat::kWebp, static_cast<std::uint32_t>(le24(24)) + 1,
                 static_cast<std::uint32_t>(le24(27)) + 1);
  }
  corrupt(ImageFormat::kWebp, "unknown chunk after the RIFF header");
}

ImageHeader probe_tiff(Bytes b) {
  need(b, 8, ImageFormat::kTiff);
  bool little = b[0] == 'I';
  auto u16 = [&](std::size_t at) { return little ? le16(b, at) : be16(b, at); };
  auto u32 = [&](std::size_t at) { return little ? le32(b, at) : be32(b, at); };
  std::size_t ifd = u32(4);
  need(b, ifd + 2, ImageFormat::kTiff);
  std::uint32_t count = u16(ifd);
  need(b, ifd + 2 + std::size_t{count} * 12, ImageFormat::kTiff);
  ImageHeader header = sized(ImageFormat::kTiff, 0, 0);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::size_t entry = ifd + 2 + std::size_t{i} * 12;
    std::uint32_t tag = u16(entry);
    if (tag != 256 && tag != 257) continue;
    const char* name = tag == 256 ? "ImageWidth" : "ImageLength";
    std::uint32_t& slot = tag == 256 ? header.width : header.height;
    // libtiff keeps the first of repeated tags; a probe that kept another would check a size the
    // decoder never uses, so a repeat is refused outright.
    if (slot != 0) corrupt(ImageFormat::kTiff, std::string("repeated ") + name + " tag");
    std::uint32_t type = u16(entry + 2);
    if ((type != 3 && type != 4) || u32(entry + 4) != 1) {
      corrupt(ImageFormat::kTiff,
              std::string(name) + " tag is not one SHORT or LONG (type " + std::to_string(type) + ")");
    }
    slot = type == 3 ? u16(entry + 8) : u32(entry + 8);
    if (slot == 0) corrupt(ImageFormat::kTiff, std::string(name) + " is 0");
  }
  if (header.width == 0 || header.height == 0) corrupt(ImageFormat::kTiff, "no image width/length tags");
  return header;
}

}  // namespace

std::string_view image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kTiff: return "TIFF";
  }
  return "image";
}

ImageHeader probe_image(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) throw Error(ErrorCode::kEmptyInput, "image is empty (0 bytes)");
  ImageHeader header;
  if (starts_with(bytes, "\xFF\xD8\xFF")) {
    header = probe_jpeg(bytes);
  } else if (starts_with(bytes, "\x89PNG\r\n\x1A\n")) {
    header = probe_png(bytes);
  } else if (starts_with(bytes, "BM")) {
    header = probe_bmp(bytes);
  } else if (starts_with(bytes, "RIFF") && starts_with(bytes, "WEBP", 8)) {
    header = probe_webp(bytes);
  } else if (starts_with(bytes, std::string_view("II*\0", 4)) || starts_with(bytes, std::string_view("MM\0*", 4))) {
    header = probe_tiff(bytes);
  } else if (starts_with(bytes, "GIF8") || starts_with(bytes, std::string_view("II+\0", 4)) ||
             starts_with(bytes, std::string_view("\0\0\0\x0C"
                                                 "jP  ",
                                                 8)) ||
             starts_with(bytes, "ftypavif", 4) || starts_with(bytes, "ftypheic", 4)) {
    throw Error(ErrorCode::kUnsupportedImage, "image format is not supported (supported: JPEG, PNG, BMP, WebP, TIFF)");
  } else {
    throw Error(ErrorCode::kNotAnImage, "data is not an image (" + std::to_string(bytes.size()) +
                                            " bytes; supported: JPEG, PNG, BMP, WebP, TIFF)");
  }
  if (header.width == 0 || header.height == 0) {
    corrupt(header.format, "declared size " + std::to_string(header.width) + "x" + std::to_string(header.height));
  }
  return header;
}

}  // namespace vlm
