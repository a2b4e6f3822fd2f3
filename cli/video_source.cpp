#include "video_source.h"

#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "vlm/error.h"

namespace vlm::cli {

VideoReader::VideoReader(const std::filesystem::path& path, int stride, const ImageLoadOptions& options)
    : capture_(std::make_unique<cv::VideoCapture>()), stride_(stride) {
  std::error_code ec;
  if (std::filesystem::file_size(path, ec) == 0 && !ec) {
    throw Error(ErrorCode::kEmptyInput, "video " + path.string() + " is empty (0 bytes)");
  }
  bool opened = false;
  try {
    opened = capture_->open(path.string(), cv::CAP_FFMPEG);
  } catch (const cv::Exception& e) {
    throw Error(ErrorCode::kUnreadableVideo, "cannot read video " + path.string() + ": " + e.what());
  }
  if (!opened) {
    throw Error(ErrorCode::kUnreadableVideo,
                "cannot read video " + path.string() + ": FFmpeg finds no decodable video stream in it");
  }
  fps_ = capture_->get(cv::CAP_PROP_FPS);
  frame_count_ = static_cast<long>(capture_->get(cv::CAP_PROP_FRAME_COUNT));
  auto width = static_cast<std::uint64_t>(capture_->get(cv::CAP_PROP_FRAME_WIDTH));
  auto height = static_cast<std::uint64_t>(capture_->get(cv::CAP_PROP_FRAME_HEIGHT));
  if (width * height > options.max_pixels) {
    throw Error(ErrorCode::kImageTooLarge, "video " + path.string() + " has " + std::to_string(width) + "x" +
                                               std::to_string(height) + " frames, over --max-pixels (" +
                                               std::to_string(options.max_pixels) + ")");
  }
}

VideoReader::~VideoReader() = default;

long VideoReader::expected_frames() const { return frame_count_ <= 0 ? 0 : (frame_count_ + stride_ - 1) / stride_; }

std::optional<VideoFrame> VideoReader::next() {
  // grab() without retrieve() skips a frame without converting it to BGR.
  while (position_ % stride_ != 0) {
    if (!capture_->grab()) return std::nullopt;
    ++position_;
  }
  cv::Mat bgr;
  if (!capture_->read(bgr) || bgr.empty()) return std::nullopt;
  VideoFrame frame;
  frame.index = position_++;
  // The frame's own presentation time where the container has one; the nominal rate otherwise.
  double msec = capture_->get(cv::CAP_PROP_POS_MSEC);
  frame.timestamp_s = (std::isfinite(msec) && (msec > 0 || frame.index == 0)) ? msec / 1000.0
                      : fps_ > 0                                              ? frame.index / fps_
                                                                              : 0.0;
  cv::cvtColor(bgr, frame.image.rgb, cv::COLOR_BGR2RGB);
  return frame;
}

VideoAnnotationWriter::VideoAnnotationWriter(const std::filesystem::path& path, double fps, int width, int height)
    : path_(path), writer_(std::make_unique<cv::VideoWriter>()) {
  try {
    writer_->open(path.string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), fps > 0 ? fps : 30.0,
                  cv::Size(width, height));
  } catch (const cv::Exception&) {
    writer_->release();
  }
}

VideoAnnotationWriter::~VideoAnnotationWriter() = default;

bool VideoAnnotationWriter::is_open() const { return writer_->isOpened(); }

void VideoAnnotationWriter::write(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  writer_->write(bgr);
}

}  // namespace vlm::cli
