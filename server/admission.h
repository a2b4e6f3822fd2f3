#pragma once

#include <atomic>
#include <memory>

namespace vlm::server {

// Bounds the inference requests the server works on at once, from the moment their headers are
// accepted until their response is written. Beyond the bound a request is refused before its body
// is read, so overload costs a header parse, not a decode, a queue slot or a connection worker.
class Admission {
 public:
  explicit Admission(int limit) : limit_(limit) {}

  // A slot held until the returned token is destroyed; null when `limit` requests already hold one.
  std::shared_ptr<void> try_admit();
  int admitted() const { return admitted_.load(); }
  int limit() const { return limit_; }

 private:
  void release();

  const int limit_;
  std::atomic<int> admitted_{0};
  std::atomic<bool> burst_{false};  // two or more admitted at once since the last trim
};

}  // namespace vlm::server
