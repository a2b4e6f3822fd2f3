#pragma once

// Per-shape choice among the built flash-attention configurations: the first call of a shape bucket
// times every candidate on the GPU it runs on and caches the fastest for the life of the process.
// Which tile shape wins depends on the GPU (SM count, shared memory, clocks) and on how many blocks a
// shape makes, so a fixed table cannot be right everywhere. Torch- and CUDA-free so the policy is
// unit-tested on machines without a GPU; flash_api.cpp supplies the timing function.

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace vlm::flash {

// Lengths and batch*heads round up to the next power of two: shapes in one bucket make grids of
// similar fullness, so they share a winner, and a server sees only a handful of buckets.
inline int64_t tune_bucket(int64_t n) {
  int64_t bucket = 1;
  while (bucket < n) bucket *= 2;
  return bucket;
}

struct TuneKey {
  int device = 0;
  bool bf16 = false;
  int head_dim = 0;
  bool causal = false;
  bool key_lengths = false;
  int64_t q_bucket = 0;
  int64_t k_bucket = 0;
  int64_t rows_bucket = 0;  // batch * heads

  bool operator<(const TuneKey& other) const {
    auto tie = [](const TuneKey& t) {
      return std::tie(t.device, t.bf16, t.head_dim, t.causal, t.key_lengths, t.q_bucket, t.k_bucket, t.rows_bucket);
    };
    return tie(*this) < tie(other);
  }
};

inline TuneKey make_tune_key(int device, bool bf16, int head_dim, bool causal, bool key_lengths, int64_t seqlen_q,
                             int64_t seqlen_k, int64_t batch_heads) {
  return {device,
          bf16,
          head_dim,
          causal,
          key_lengths,
          tune_bucket(seqlen_q),
          tune_bucket(seqlen_k),
          tune_bucket(batch_heads)};
}

inline std::string describe(const TuneKey& key) {
  return "cuda:" + std::to_string(key.device) + (key.bf16 ? " bf16" : " fp16") + " d" + std::to_string(key.head_dim) +
         " q<=" + std::to_string(key.q_bucket) + " k<=" + std::to_string(key.k_bucket) +
         " b*h<=" + std::to_string(key.rows_bucket) + (key.causal ? " causal" : "") +
         (key.key_lengths ? " key-lengths" : "");
}

struct TuneTiming {
  int config = -1;
  double ms = -1.0;     // < 0 when the candidate failed
  std::string failure;  // why it failed
};

struct TuneDecision {
  TuneKey key;
  int config = -1;
  std::vector<TuneTiming> timings;
};

class FlashAutotuner {
 public:
  // Milliseconds per call of `config` on the shape being tuned; throws when the config cannot run.
  using TimeFn = std::function<double(int config)>;
  using Observer = std::function<void(const TuneDecision&)>;

  // The cached choice for `key`, or, on the first call for it, the fastest of `candidates` by
  // `time_ms` (ties go to the earlier candidate, the table's default order). A candidate that throws
  // is skipped; if all throw, the first failure is rethrown and nothing is cached, so a transient
  // error does not pin a choice.
  int choose(const TuneKey& key, const std::vector<int>& candidates, const TimeFn& time_ms) {
    if (candidates.empty()) throw std::invalid_argument("flash autotune: no candidate configs");
    if (candidates.size() == 1) return candidates.front();
    // Held while timing: concurrent first calls of one bucket must not time each other's kernels.
    std::lock_guard lock(mutex_);
    if (auto it = choices_.find(key); it != choices_.end()) return it->second;
    TuneDecision decision{key, -1, {}};
    double best = std::numeric_limits<double>::infinity();
    std::exception_ptr first_failure;
    for (int config : candidates) {
      TuneTiming timing{config, -1.0, {}};
      try {
        timing.ms = time_ms(config);
        if (timing.ms < best) {
          best = timing.ms;
          decision.config = config;
        }
      } catch (const std::exception& e) {
        timing.failure = e.what();
        if (!first_failure) first_failure = std::current_exception();
      }
      decision.timings.push_back(std::move(timing));
    }
    if (decision.config < 0) std::rethrow_exception(first_failure);
    choices_.emplace(key, decision.config);
    if (observer_) observer_(decision);
    return decision.config;
  }

  // The cached choice for `key`, if any (what choose() returns without timing).
  std::optional<int> find(const TuneKey& key) const {
    std::lock_guard lock(mutex_);
    if (auto it = choices_.find(key); it != choices_.end()) return it->second;
    return std::nullopt;
  }

  // Called once per new decision (under the tuner's lock: keep it short, never call back in).
  void set_observer(Observer observer) {
    std::lock_guard lock(mutex_);
    observer_ = std::move(observer);
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return choices_.size();
  }

  void clear() {
    std::lock_guard lock(mutex_);
    choices_.clear();
  }

 private:
  mutable std::mutex mutex_;
  std::map<TuneKey, int> choices_;
  Observer observer_;
};

}  // namespace vlm::flash
