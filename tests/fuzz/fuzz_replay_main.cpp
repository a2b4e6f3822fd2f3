// Runs a libFuzzer target without libFuzzer (g++ builds): the built-in seeds, any corpus files or
// folders given, and a fixed number of deterministic mutations of the seeds.
//   fuzz_transcript_replay [--write-seeds DIR] [--mutations N] [PATH...]
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "transcript_seeds.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

// Byte flips, deletions, duplications and tag insertions: the edits that reach parser branches.
std::string mutate(std::string input, std::mt19937_64& rng) {
  static const std::vector<std::string> kTokens = {
      "<final>", "</final>", "<think-observe>", "</think-observe>", "<think-read>", "</think-check>", "&lt;", "&", "<",
      ">",       "\n"};
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const std::size_t pos = input.empty() ? 0 : rng() % (input.size() + 1);
    switch (rng() % 4) {
      case 0:
        if (!input.empty()) input[pos % input.size()] = static_cast<char>(rng() & 0xFF);
        break;
      case 1:
        if (!input.empty()) input.erase(pos % input.size(), 1 + rng() % 8);
        break;
      case 2: input.insert(pos, kTokens[rng() % kTokens.size()]); break;
      default:
        if (!input.empty()) {
          const std::size_t from = rng() % input.size();
          input.insert(pos, input.substr(from, 1 + rng() % 16));
        }
    }
  }
  return input;
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 20000;
  std::vector<std::filesystem::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--write-seeds" && i + 1 < argc) {
      const std::filesystem::path dir = argv[++i];
      std::filesystem::create_directories(dir);
      int n = 0;
      for (auto seed : vlm::think::fuzz::kTranscriptSeeds) {
        std::ofstream(dir / ("seed-" + std::to_string(n++)), std::ios::binary) << seed;
      }
      std::cout << "wrote " << n << " seeds to " << dir << "\n";
      return 0;
    }
    if (arg == "--mutations" && i + 1 < argc) {
      mutations = std::stol(argv[++i]);
      continue;
    }
    paths.emplace_back(arg);
  }
  long inputs = 0;
  for (auto seed : vlm::think::fuzz::kTranscriptSeeds) {
    run(std::string(seed));
    ++inputs;
  }
  for (const auto& path : paths) {
    if (std::filesystem::is_directory(path)) {
      for (const auto& item : std::filesystem::directory_iterator(path)) {
        run(slurp(item.path()));
        ++inputs;
      }
    } else {
      run(slurp(path));
      ++inputs;
    }
  }
  std::mt19937_64 rng(0x7e57);
  constexpr std::size_t kSeedCount = std::size(vlm::think::fuzz::kTranscriptSeeds);
  for (long i = 0; i < mutations; ++i) {
    run(mutate(std::string(vlm::think::fuzz::kTranscriptSeeds[rng() % kSeedCount]), rng));
    ++inputs;
  }
  std::cout << "replayed " << inputs << " inputs, all properties held\n";
  return 0;
}
