#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "vlm/image.h"

namespace cv {
class VideoCapture;
class VideoWriter;
}  // namespace cv

namespace vlm::cli {

// One decoded video frame, RGB as every model consumes it.
struct VideoFrame {
  Image image;
  long index = 0;            // 0-based position in the video
  double timestamp_s = 0.0;  // presentation time
};

// Reads every `stride`th frame (0, stride, 2*stride, ...) of a video file through OpenCV's FFmpeg
// backend (forced, so every machine decodes with the same library).
class VideoReader {
 public:
  // Throws kEmptyInput for a file of zero bytes, kUnreadableVideo when FFmpeg opens no video stream,
  // kImageTooLarge when a frame has more than options.max_pixels pixels.
  VideoReader(const std::filesystem::path& path, int stride, const ImageLoadOptions& options);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  // The next frame to process; nullopt at the end of the video.
  std::optional<VideoFrame> next();
  double fps() const { return fps_; }
  // Frames this reader will return, from the container's frame count (an estimate for some formats).
  long expected_frames() const;

 private:
  std::unique_ptr<cv::VideoCapture> capture_;
  int stride_;
  long position_ = 0;  // index of the next frame in the file
  long frame_count_ = 0;
  double fps_ = 0.0;
};

// An annotated copy of a video: MPEG-4 Part 2 in an .mp4 (the encoder Debian's FFmpeg and every
// player have), at fps / stride so it lasts as long as the source.
class VideoAnnotationWriter {
 public:
  VideoAnnotationWriter(const std::filesystem::path& path, double fps, int width, int height);
  ~VideoAnnotationWriter();
  VideoAnnotationWriter(const VideoAnnotationWriter&) = delete;
  VideoAnnotationWriter& operator=(const VideoAnnotationWriter&) = delete;

  bool is_open() const;
  // `rgb` must have the size given at construction.
  void write(const cv::Mat& rgb);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::unique_ptr<cv::VideoWriter> writer_;
};

}  // namespace vlm::cli
