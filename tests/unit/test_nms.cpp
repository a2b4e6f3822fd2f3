// vlm::ops::nms on CPU against a plain-loop reference written from the definition of greedy NMS,
// plus torchvision TestNMS-style threshold edges, ties, and argument errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "vlm/error.h"
#include "vlm/ops/nms.h"

namespace vlm {
namespace {

struct Box {
  double x1, y1, x2, y2;
};

double iou(const Box& a, const Box& b) {
  double w = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  double h = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  double inter = w * h;
  return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter);
}

// Visit boxes from the highest score down (input order among equal scores); keep a box unless it
// overlaps an already kept box by more than the threshold.
std::vector<std::int64_t> reference_nms(const std::vector<Box>& boxes, const std::vector<float>& scores,
                                        double threshold) {
  std::vector<std::int64_t> order(boxes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] > scores[b]; });
  std::vector<std::int64_t> kept;
  for (std::int64_t i : order) {
    bool keep = std::none_of(kept.begin(), kept.end(), [&](auto k) { return iou(boxes[k], boxes[i]) > threshold; });
    if (keep) kept.push_back(i);
  }
  return kept;
}

at::Tensor to_tensor(const std::vector<Box>& boxes) {
  at::Tensor t = at::empty({static_cast<std::int64_t>(boxes.size()), 4}, at::kFloat);
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    auto row = static_cast<std::int64_t>(i);
    t[row][0] = boxes[i].x1;
    t[row][1] = boxes[i].y1;
    t[row][2] = boxes[i].x2;
    t[row][3] = boxes[i].y2;
  }
  return t;
}

std::vector<std::int64_t> run_nms(const std::vector<Box>& boxes, const std::vector<float>& scores, double threshold) {
  at::Tensor scores_t = at::tensor(scores.empty() ? std::vector<float>{} : scores, at::kFloat);
  at::Tensor keep = ops::nms(to_tensor(boxes), scores_t.reshape({static_cast<std::int64_t>(scores.size())}), threshold);
  EXPECT_EQ(keep.scalar_type(), at::kLong);
  EXPECT_EQ(keep.dim(), 1);
  EXPECT_TRUE(keep.device().is_cpu());
  return {keep.data_ptr<std::int64_t>(), keep.data_ptr<std::int64_t>() + keep.numel()};
}

// Boxes with float-representable coordinates, clustered so that many of them overlap.
void random_boxes(std::size_t n, std::mt19937& rng, std::vector<Box>& boxes, std::vector<float>& scores) {
  std::uniform_real_distribution<float> centre(0.0F, 120.0F);
  std::uniform_real_distribution<float> size(2.0F, 40.0F);
  std::uniform_real_distribution<float> score(0.0F, 1.0F);
  boxes.clear();
  scores.clear();
  for (std::size_t i = 0; i < n; ++i) {
    float cx = centre(rng);
    float cy = centre(rng);
    float w = size(rng);
    float h = size(rng);
    boxes.push_back({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2});
    scores.push_back(score(rng));
  }
}

TEST(Nms, MatchesTheReferenceOnRandomBoxes) {
  std::mt19937 rng(1234);
  std::vector<Box> boxes;
  std::vector<float> scores;
  for (std::size_t n : {0, 1, 2, 127, 1000}) {
    for (double threshold : {0.0, 0.3, 0.5, 0.7, 1.0}) {
      random_boxes(n, rng, boxes, scores);
      std::vector<std::int64_t> want = reference_nms(boxes, scores, threshold);
      EXPECT_EQ(run_nms(boxes, scores, threshold), want) << "n=" << n << " iou=" << threshold;
      if (n >= 127 && threshold > 0.0 && threshold < 1.0) {
        // Non-trivial: something is suppressed and something survives.
        EXPECT_LT(want.size(), n);
        EXPECT_GT(want.size(), 1U);
      }
    }
  }
}

TEST(Nms, KeptIndicesComeInDescendingScoreOrder) {
  std::mt19937 rng(7);
  std::vector<Box> boxes;
  std::vector<float> scores;
  random_boxes(300, rng, boxes, scores);
  std::vector<std::int64_t> kept = run_nms(boxes, scores, 0.5);
  for (std::size_t i = 1; i < kept.size(); ++i) EXPECT_GE(scores[kept[i - 1]], scores[kept[i]]);
}

// As torchvision's TestNMS: the last box is the first one widened so that their IoU is the threshold
// plus 1e-5, so it must be suppressed whenever the first box is kept.
TEST(Nms, IouJustAboveTheThresholdSuppresses) {
  std::mt19937 rng(99);
  for (double threshold : {0.2, 0.5, 0.8}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<Box> boxes;
      std::vector<float> scores;
      random_boxes(50, rng, boxes, scores);
      Box last = boxes.front();
      double above = threshold + 1e-5;
      last.x2 += (last.x2 - last.x1) * (1 - above) / above;
      boxes.back() = last;
      ASSERT_GT(iou(boxes.front(), boxes.back()), threshold);
      EXPECT_EQ(run_nms(boxes, scores, threshold), reference_nms(boxes, scores, threshold))
          << "threshold " << threshold << " trial " << trial;
    }
  }
}

TEST(Nms, IouExactlyAtTheThresholdIsKept) {
  // Areas 4 and 8, overlap 4: IoU exactly 0.5 in binary floating point.
  std::vector<Box> boxes = {{0, 0, 4, 1}, {0, 0, 8, 1}};
  std::vector<float> scores = {0.9F, 0.8F};
  ASSERT_EQ(iou(boxes[0], boxes[1]), 0.5);
  EXPECT_EQ(run_nms(boxes, scores, 0.5), (std::vector<std::int64_t>{0, 1}));  // at: kept (strictly greater suppresses)
  EXPECT_EQ(run_nms(boxes, scores, 0.4999), (std::vector<std::int64_t>{0}));  // just below the IoU: suppressed
  EXPECT_EQ(run_nms(boxes, scores, 0.5001), (std::vector<std::int64_t>{0, 1}));  // just above the IoU: kept
  // IoU 0.25, lower score first in the input.
  boxes = {{0, 0, 1, 1}, {0, 0, 4, 1}};
  scores = {0.1F, 0.2F};
  EXPECT_EQ(run_nms(boxes, scores, 0.25), (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(run_nms(boxes, scores, 0.2499), (std::vector<std::int64_t>{1}));
}

TEST(Nms, IdenticalBoxesKeepOnlyTheBestScore) {
  std::vector<Box> boxes(6, Box{10, 20, 30, 60});
  std::vector<float> scores = {0.1F, 0.5F, 0.3F, 0.9F, 0.2F, 0.4F};
  EXPECT_EQ(run_nms(boxes, scores, 0.99), (std::vector<std::int64_t>{3}));
  // At threshold 1 nothing is over it: every box stays, by descending score.
  EXPECT_EQ(run_nms(boxes, scores, 1.0), (std::vector<std::int64_t>{3, 1, 5, 2, 4, 0}));
}

TEST(Nms, EqualScoresKeepInputOrder) {
  // Disjoint boxes, all scores equal: kept in input order (stable sort).
  std::vector<Box> boxes;
  for (int i = 0; i < 40; ++i) boxes.push_back({i * 10.0, 0, i * 10.0 + 5, 5});
  std::vector<float> scores(boxes.size(), 0.5F);
  std::vector<std::int64_t> all(boxes.size());
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(run_nms(boxes, scores, 0.5), all);
  // Identical boxes with equal scores: the first in the input wins.
  boxes = {{0, 0, 10, 10}, {50, 50, 60, 60}, {0, 0, 10, 10}, {50, 50, 60, 60}};
  scores = {0.7F, 0.7F, 0.7F, 0.7F};
  EXPECT_EQ(run_nms(boxes, scores, 0.5), (std::vector<std::int64_t>{0, 1}));
}

TEST(Nms, HalfAndNonContiguousInputsGiveTheSameAnswer) {
  std::mt19937 rng(5);
  std::vector<Box> boxes;
  std::vector<float> scores;
  random_boxes(200, rng, boxes, scores);
  // Round coordinates to fp16 first so that both runs see the same boxes.
  at::Tensor boxes_half = to_tensor(boxes).to(at::kHalf);
  at::Tensor scores_half = at::tensor(scores).to(at::kHalf);
  at::Tensor from_float = ops::nms(boxes_half.to(at::kFloat), scores_half.to(at::kFloat), 0.45);
  at::Tensor from_half = ops::nms(boxes_half, scores_half, 0.45);
  EXPECT_TRUE(at::equal(from_float, from_half));
  at::Tensor strided = boxes_half.to(at::kFloat).t().contiguous().t();  // same values, column-major
  ASSERT_FALSE(strided.is_contiguous());
  EXPECT_TRUE(at::equal(ops::nms(strided, scores_half.to(at::kFloat), 0.45), from_float));
}

// batched_nms over images whose candidates are pre-sorted and followed by junk rows past each count:
// every image's kept indices are the reference's, cut to max_kept, then -1.
TEST(BatchedNms, EachImageMatchesTheReferenceCutToMaxKept) {
  std::mt19937 rng(2024);
  const std::vector<std::int64_t> counts = {0, 1, 300, 57, 300};
  const std::int64_t k = 300;
  for (double threshold : {0.3, 0.5, 0.7}) {
    for (std::int64_t max_kept : {1, 5, 40, 300}) {
      at::Tensor boxes = at::zeros({static_cast<std::int64_t>(counts.size()), k, 4});
      std::vector<std::vector<std::int64_t>> want;
      for (std::size_t image = 0; image < counts.size(); ++image) {
        std::vector<Box> raw;
        std::vector<float> scores;
        random_boxes(static_cast<std::size_t>(k), rng, raw, scores);
        // Sort by score as the caller does; rows past the count stay as junk that must be ignored.
        std::vector<std::int64_t> order(raw.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] > scores[b]; });
        std::vector<Box> sorted;
        for (auto i : order) sorted.push_back(raw[i]);
        boxes[static_cast<std::int64_t>(image)].copy_(to_tensor(sorted));
        std::vector<Box> real(sorted.begin(), sorted.begin() + counts[image]);
        std::vector<float> descending(real.size());
        for (std::size_t i = 0; i < real.size(); ++i) descending[i] = 1.0F - static_cast<float>(i) / k;
        std::vector<std::int64_t> kept = reference_nms(real, descending, threshold);
        if (static_cast<std::int64_t>(kept.size()) > max_kept) kept.resize(static_cast<std::size_t>(max_kept));
        kept.resize(static_cast<std::size_t>(max_kept), -1);
        want.push_back(kept);
      }
      at::Tensor keep = ops::batched_nms(boxes, at::tensor(counts, at::kLong), threshold, max_kept);
      ASSERT_EQ(keep.sizes(), (at::IntArrayRef{static_cast<std::int64_t>(counts.size()), max_kept}));
      for (std::size_t image = 0; image < counts.size(); ++image) {
        at::Tensor row = keep[static_cast<std::int64_t>(image)].contiguous();
        std::vector<std::int64_t> got(row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + max_kept);
        EXPECT_EQ(got, want[image]) << "image " << image << " iou " << threshold << " max_kept " << max_kept;
      }
    }
  }
}

TEST(BatchedNms, WrongShapesAreInvalidArguments) {
  EXPECT_THROW(ops::batched_nms(at::zeros({2, 5, 3}), at::zeros({2}, at::kLong), 0.5, 10), Error);
  EXPECT_THROW(ops::batched_nms(at::zeros({2, 5, 4}), at::zeros({3}, at::kLong), 0.5, 10), Error);
  EXPECT_THROW(ops::batched_nms(at::zeros({2, 5, 4}), at::zeros({2}), 0.5, 10), Error);
  EXPECT_THROW(ops::batched_nms(at::zeros({2, 5, 4}), at::zeros({2}, at::kLong), 0.5, 0), Error);
}

void expect_invalid(const at::Tensor& boxes, const at::Tensor& scores, const std::string& fragment) {
  try {
    ops::nms(boxes, scores, 0.5);
    FAIL() << "no error for boxes " << boxes.sizes() << " scores " << scores.sizes();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Nms, WrongShapesAreInvalidArgumentsThatSayWhatTheyGot) {
  expect_invalid(at::zeros({5, 3}), at::zeros({5}), "got [5, 3]");
  expect_invalid(at::zeros({20}), at::zeros({5}), "got [20]");
  expect_invalid(at::zeros({2, 5, 4}), at::zeros({5}), "got [2, 5, 4]");
  expect_invalid(at::zeros({5, 4}), at::zeros({4}), "got [4]");
  expect_invalid(at::zeros({5, 4}), at::zeros({5, 1}), "got [5, 1]");
}

}  // namespace
}  // namespace vlm
